"""Outcome coding, formula and array designs, the design state kept for saving, and
row-aligned weights."""

from . import design, design_state, weights

__all__ = ["design", "design_state", "weights"]
