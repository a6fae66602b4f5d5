"""Reading and rewriting saved results files entry by entry, as a tamperer could (test-only)."""

import numpy as np

from multilogit.results import persistence


def read_entries(path) -> dict:
    """Every array entry of a saved results file."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_entries(path, entries, resign=False) -> None:
    """Write ``entries`` as a results file; with ``resign`` recompute the (unkeyed) digest."""
    entries = dict(entries)
    if resign:
        meta = entries["metadata"].tobytes()
        arrays = {k: v for k, v in entries.items() if k not in ("metadata", "digest")}
        digest = persistence.digest(meta, arrays, None)
        entries["digest"] = np.frombuffer(digest.encode(), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **entries)
