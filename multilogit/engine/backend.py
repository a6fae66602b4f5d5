"""What every backend hands out: the record of derivatives, and the chunk size of its passes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Derivatives", "default_chunk_rows"]

# Rows per chunk: the chunk of X and its (m, J) blocks stay around 1 MiB, in cache between the
# BLAS products and the Numba loops, while chunks stay long enough that the per-chunk call
# overhead is small.  The information factors of a chunk are at most a few MiB on top.
_CHUNK_BYTES = 1 << 20


def default_chunk_rows(p: int, J: int) -> int:
    """Rows per chunk so that the work buffers of one chunk stay cache-sized."""
    return int(min(max(_CHUNK_BYTES // (8 * (p + 2 * J + 2)), 256), 16384))


@dataclass(frozen=True)
class Derivatives:
    """Log-likelihood, score ``(J, p)`` and information ``(J p, J p)`` (or ``None``)."""

    llf: float
    score: np.ndarray
    info: np.ndarray | None
