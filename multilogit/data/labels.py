"""How outcome levels are printed in headings, test names and tables.

Integer-valued numbers print without a decimal point (``1``, not ``1.0``), as statsmodels prints
a float-coded outcome (its ``anes96`` example codes party identification as floats); anything
else prints as ``str``.  The labels themselves (``params`` columns, ``predict`` columns) keep
their values and types.
"""

from __future__ import annotations

import numpy as np

__all__ = ["level_label", "equation_label"]


def level_label(level) -> str:
    """``level`` as printed: ``1.0`` as ``"1"``, ``"general"`` as ``"general"``."""
    if isinstance(level, float | np.floating) and float(level).is_integer():
        return str(int(level))
    return str(level)


def equation_label(name, level, sep: str = "=") -> str:
    """The heading of one equation, e.g. ``prog=general`` or ``y=1``."""
    return f"{name}{sep}{level_label(level)}"
