"""A one-line progress bar on standard error, in the style of tqdm, for passes over data that
take long (streaming a Parquet source, the preliminary pass over a Dask DataFrame)."""

from __future__ import annotations

import os
import sys
import time

__all__ = ["Progress", "progress_enabled"]

_WIDTH = 24


def progress_enabled(stream=None) -> bool:
    """Whether to show progress: ``MULTILOGIT_PROGRESS=1``/``0`` decides, else only when
    ``stream`` (standard error) is a terminal."""
    env = os.environ.get("MULTILOGIT_PROGRESS", "").strip()
    if env:
        return env not in ("0", "false", "no")
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """``label [#######.........]  3,000,000/8,000,000 rows  12.3 s``, redrawn in place.

    Parameters
    ----------
    label : str
    total : int, optional
        Units expected (the bar needs it; without it only the count is shown).
    unit : str
    stream : file, optional
        Where to write (standard error); nothing is written when not enabled.
    enabled : bool, optional
        Default: :func:`progress_enabled`.
    """

    def __init__(self, label, total=None, unit="rows", stream=None, enabled=None):
        self.label, self.total, self.unit = label, total, unit
        self.stream = sys.stderr if stream is None else stream
        self.enabled = progress_enabled(self.stream) if enabled is None else enabled
        self.count = 0
        self._t0 = time.perf_counter()
        self._last = 0.0

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.perf_counter()
        if self.enabled and now - self._last >= 0.2:
            self._last = now
            self._draw(end="\r")

    def close(self) -> None:
        if self.enabled:
            self._draw(end="\n")

    def _draw(self, end: str) -> None:
        seconds = time.perf_counter() - self._t0
        if self.total:
            done = min(self.count / self.total, 1.0)
            bar = "#" * round(done * _WIDTH) + "." * (_WIDTH - round(done * _WIDTH))
            text = f"{self.label} [{bar}] {self.count:,}/{self.total:,} {self.unit}"
        else:
            text = f"{self.label}: {self.count:,} {self.unit}"
        self.stream.write(f"{text}  {seconds:.1f} s{end}")
        self.stream.flush()
