"""Time and size multilogit's fits on large data: a Parquet dataset and a Dask DataFrame.

Usage::

    python benchmarks/bench_large.py --rows 1e7      # what the committed results ran
    python benchmarks/bench_large.py                 # the goal size, 1e8 rows (~17 GB + spill)
    python benchmarks/bench_large.py --quick         # 4e5 rows: checks the script

The script writes a synthetic multinomial-logit dataset (``--rows`` rows, 20 standard normal
float64 columns, an outcome with 5 levels) as a multi-file Parquet dataset, then measures in
freshly spawned processes, at ``--rows`` and at a quarter of it (the first quarter of the
files): one full read of the files with pyarrow, the streamed Parquet fit
``mnlogit(formula, parquet(files), ref=0).fit()`` with standard errors, the in-memory fit of
the same rows and, on a local Dask cluster of two single-threaded workers, the Dask fit.  See
``benchmarks/README.md`` (section "Large data") for the goals and how to read the output.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import (  # noqa: E402 -- the sibling script, found through the line above
    MB,
    _proc_status_bytes,
    _unique_warnings,
    machine_info,
    peak_rss,
    reset_peak_rss,
    run_in_fresh_process,
    write_json,
)

SEED = 20240607
P = 20
K = 5
DEFAULT_ROWS = 100_000_000
QUICK_ROWS = 400_000
RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: Rows of the warm-up dataset every child fits (untimed) before it measures anything.
WARMUP_ROWS = 50_000
#: The parquet fit may take this many times one full read of the data.
READ_RATIO_GOAL = 6.0
#: Peak RSS of the parquet fit above the child's baseline, in bytes.
PARQUET_PEAK_GOAL = 2e9
#: Peak of the parquet fit at the full size / at a quarter of it ("does not grow with N").
PEAK_GROWTH_GOAL = 1.25
#: The Dask fit may take this many times the in-memory fit of the same rows.
DASK_RATIO_GOAL = 2.0
#: Parquet vs in-memory: same rows, same kernels; only the summation order may differ.
PARQUET_RTOL = 1e-12
#: Dask vs in-memory: partial sums combined in another order.
DASK_RTOL = 1e-10
#: The in-memory fit is skipped when this many times the data's bytes exceed the available
#: memory (the DataFrame, patsy's design matrix and the fit's own buffers: the in-memory fit
#: of 1e7 rows peaked at 5.8 times the DataFrame).
MEMORY_FACTOR = 8


def formula(p: int = P) -> str:
    """``"y ~ x1 + x2 + ... + xp"``."""
    return "y ~ " + " + ".join(f"x{j}" for j in range(1, p + 1))


# -- data ----------------------------------------------------------------------------------------


def true_coefficients(p: int, k: int, seed: int) -> np.ndarray:
    """Coefficients ``(p + 1, k)`` (intercept first), zero for outcome 0 (the reference).

    Normal with scale ``0.5 / sqrt(p + 1)``, so each linear predictor has a standard deviation
    of about 0.5 and every outcome occurs with similar frequency.
    """
    beta = np.random.default_rng(seed).normal(scale=0.5 / math.sqrt(p + 1), size=(p + 1, k))
    beta[:, 0] = 0.0
    return beta


def make_block(rng: np.random.Generator, rows: int, beta: np.ndarray):
    """One block of rows as a pyarrow table: ``x1 .. xp`` standard normal, ``y`` in 0..k-1
    drawn from the softmax probabilities."""
    import pyarrow as pa

    p, k = beta.shape[0] - 1, beta.shape[1]
    X = rng.standard_normal((rows, p))
    eta = X @ beta[1:] + beta[0]
    eta -= eta.max(axis=1, keepdims=True)
    np.exp(eta, out=eta)
    cum = np.cumsum(eta, axis=1)
    y = np.minimum((rng.random(rows)[:, None] * cum[:, -1:] > cum).sum(axis=1), k - 1)
    columns = {f"x{j + 1}": X[:, j] for j in range(p)}
    columns["y"] = y.astype(np.int64)
    return pa.table(columns)


def _file_rows(rows: int, files: int) -> list[int]:
    """Rows of each file of the dataset: as equal as possible, the first ones one more."""
    return [rows // files + (i < rows % files) for i in range(files)]


def write_dataset(
    directory: Path, rows: int, files: int, row_group: int, seed: int, p: int = P, k: int = K
) -> list[str]:
    """Write ``rows`` rows as ``files`` Parquet files of row groups of ``row_group`` rows.

    File ``i`` is generated block by block (one row group at a time, so memory stays small)
    from its own generator seeded with ``(seed, i)``; the rows are the same whatever
    ``row_group`` is only if it is unchanged.  Returns the file paths in order.
    """
    import pyarrow.parquet as pq

    beta = true_coefficients(p, k, seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, n_file in enumerate(_file_rows(rows, files)):
        rng = np.random.default_rng([seed, i])
        path = directory / f"part-{i:03d}.parquet"
        writer = None
        for start in range(0, n_file, row_group):
            table = make_block(rng, min(row_group, n_file - start), beta)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=row_group)
        writer.close()
        paths.append(str(path))
    return paths


# -- child processes -----------------------------------------------------------------------------


def _rel_diff(a, b) -> float:
    """Largest elementwise ``|a - b| / |b|``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def _describe(res) -> dict:
    return {
        "n_iter": int(res.n_iter),
        "converged": bool(res.converged),
        "llf": float(res.llf),
        "params": res.params.to_numpy().ravel().tolist(),
        "bse": res.bse.to_numpy().ravel().tolist(),
    }


def child_read(task: dict) -> dict:
    """Time full reads of ``task["files"]`` with pyarrow, every column to numpy.

    The files are read as a stream of record batches (pyarrow's threaded scanner, with
    read-ahead), each batch's columns converted to numpy and then dropped: a read of data
    larger than memory, as the streamed fit makes it (and faster than ``to_table`` of data that
    fits: at 2e6 rows, 0.15 s against 0.24 s).
    """
    import pyarrow.dataset as ds

    def read(files) -> int:
        nbytes = 0
        for batch in ds.dataset(files, format="parquet").to_batches():
            nbytes += sum(col.to_numpy().nbytes for col in batch.columns)
        return nbytes

    read([task["warmup"]])
    t0 = time.perf_counter()
    read(task["files"])  # untimed: the page cache holds what of the files it can afterwards
    first_s = time.perf_counter() - t0
    times = []
    nbytes = 0
    for _ in range(task["read_repeats"]):
        gc.collect()
        t0 = time.perf_counter()
        nbytes = read(task["files"])
        times.append(time.perf_counter() - t0)
    return {
        "times": times,
        "median": statistics.median(times),
        "untimed_first_s": first_s,
        "array_bytes": nbytes,
    }


def _time_fits(task: dict, build, after_reset=None) -> dict:
    """Fit ``build()`` with standard errors ``task["repeats"]`` times; memory on the first.

    ``build`` returns a model (every pass over the source happens inside it or in the fit);
    ``after_reset`` runs just after the peak-RSS reset (the Dask workers' own reset).
    """
    out: dict = {"times": [], "build_s": [], "peak_bytes": None, "peak_build_bytes": None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for rep in range(task["repeats"]):
            gc.collect()
            base = reset_peak_rss() if rep == 0 else None
            if rep == 0 and after_reset is not None:
                after_reset()
            t0 = time.perf_counter()
            model = build()
            t1 = time.perf_counter()
            if base is not None:
                out["peak_build_bytes"] = max(peak_rss() - base, 0)
            res = model.fit()
            res.bse  # noqa: B018 -- standard errors are part of the timed work
            t2 = time.perf_counter()
            if base is not None:
                out["peak_bytes"] = max(peak_rss() - base, 0)
                out.update(_describe(res))
            out["times"].append(t2 - t0)
            out["build_s"].append(t1 - t0)
            del model, res
    out["median"] = statistics.median(out["times"])
    out["build_median"] = statistics.median(out["build_s"])
    out["warnings"] = _unique_warnings(caught)
    return out


def child_parquet(task: dict) -> dict:
    """The streamed Parquet fit; peak RSS above the RSS after imports and a warm-up fit."""
    import multilogit as ml

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml.mnlogit(task["formula"], ml.parquet(task["warmup"]), ref=0).fit().bse  # noqa: B018
    return _time_fits(task, lambda: ml.mnlogit(task["formula"], ml.parquet(task["files"]), ref=0))


def child_memory(task: dict) -> dict:
    """pandas read, then the in-memory fit.

    The peak RSS is measured from before the read (after imports and a warm-up fit), so it
    includes the DataFrame; the read's own transient peak is excluded.
    """
    import pandas as pd

    import multilogit as ml

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml.mnlogit(task["formula"], pd.read_parquet(task["warmup"]), ref=0).fit().bse  # noqa: B018
    gc.collect()
    rss0 = _proc_status_bytes("VmRSS")
    t0 = time.perf_counter()
    df = pd.read_parquet(task["files"])
    read_s = time.perf_counter() - t0
    rss_df = _proc_status_bytes("VmRSS")
    out = _time_fits(task, lambda: ml.mnlogit(task["formula"], df, ref=0))
    for key in ("peak_bytes", "peak_build_bytes"):
        out[key] += rss_df - rss0
    out.update(pandas_read_s=read_s, frame_bytes=int(df.memory_usage(deep=True).sum()))
    return out


def child_dask(task: dict) -> dict:
    """The Dask fit on a local cluster, from ``dd.read_parquet`` of the files, persisted first.

    Peak RSS: of this (client) process above its RSS after the cluster, the warm-up fit and
    the persisted data; for the workers, the largest worker's peak above its own RSS before
    the fit (the persisted partitions are not counted).
    """
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster, wait

    import multilogit as ml

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=task["dask_workers"],
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
    )
    client = Client(cluster)
    try:
        start_s = time.perf_counter() - t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warm = dd.read_parquet(task["warmup"]).persist()
            ml.mnlogit(task["formula"], warm, ref=0).fit().bse  # noqa: B018
            del warm
        t0 = time.perf_counter()
        ddf = dd.read_parquet(task["files"]).persist()
        wait(ddf)
        persist_s = time.perf_counter() - t0
        worker_base = {}

        def reset_workers():
            worker_base.update(client.run(reset_peak_rss))

        out = _time_fits(task, lambda: ml.mnlogit(task["formula"], ddf, ref=0), reset_workers)
        worker_peak = client.run(peak_rss)
        out["worker_peak_bytes"] = max(
            max(worker_peak[w] - worker_base[w], 0) for w in worker_base
        )
        out.update(cluster_start_s=start_s, persist_s=persist_s, npartitions=ddf.npartitions)
    finally:
        client.close()
        cluster.close()
    return out


CHILDREN = {
    "read": child_read,
    "parquet": child_parquet,
    "memory": child_memory,
    "dask": child_dask,
}


def _child_entry(task: dict) -> dict:
    return CHILDREN[task["kind"]](task)


def run_task(task: dict) -> dict:
    """Run one measurement in a fresh process; an error becomes ``{"error": ...}``."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        out = run_in_fresh_process(_child_entry, task)
    except Exception as exc:  # noqa: BLE001 -- one failing step must not end the benchmark
        out = {"error": f"{type(exc).__name__}: {exc}"}
    out["process_s"] = time.perf_counter() - t0
    out["load_before"] = load
    out["load_after"] = os.getloadavg()[0]
    return out


# -- analysis ------------------------------------------------------------------------------------


def rows_key(n: int) -> str:
    """``10000000`` -> ``"1e7"``, ``2500000`` -> ``"2.5e6"``."""
    exp = int(math.floor(math.log10(n))) if n > 0 else 0
    mant = n / 10**exp
    return f"{mant:g}e{exp}" if exp >= 3 and round(mant, 3) == mant else str(n)


def _ok(res) -> bool:
    return res is not None and "error" not in res


def analyse(results: dict) -> None:
    """Ratios and agreement per size, and for the Dask fit."""
    for entry in results["sizes"].values():
        read, pq, mem = (entry.get(k) for k in ("read", "parquet", "memory"))
        if _ok(pq) and _ok(read):
            pq["ratio"] = pq["median"] / read["median"]
        if _ok(mem) and _ok(read):
            mem["ratio"] = mem["median"] / read["median"]
        if _ok(pq) and _ok(mem):
            entry["agreement"] = {
                "params": _rel_diff(pq["params"], mem["params"]),
                "bse": _rel_diff(pq["bse"], mem["bse"]),
            }
    dask = results.get("dask")
    if dask and _ok(dask.get("fit")):
        mem = results["sizes"].get(dask["size"], {}).get("memory")
        if _ok(mem):
            dask["fit"]["ratio"] = dask["fit"]["median"] / mem["median"]
            dask["agreement"] = {
                "params": _rel_diff(dask["fit"]["params"], mem["params"]),
                "bse": _rel_diff(dask["fit"]["bse"], mem["bse"]),
            }


def _get(results: dict, *path):
    obj = results
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def evaluate_targets(results: dict) -> list[dict]:
    """PASS/MISS of each goal at the full size, or SKIP when it was not measured."""
    full, quarter = results["size_keys"]["full"], results["size_keys"].get("quarter")
    dask_size = _get(results, "dask", "size")
    peak_full = _get(results, "sizes", full, "parquet", "peak_bytes")
    peak_quarter = _get(results, "sizes", quarter, "parquet", "peak_bytes") if quarter else None
    growth = peak_full / peak_quarter if peak_full and peak_quarter else None
    n_full = _get(results, "sizes", full, "rows")
    n_quarter = _get(results, "sizes", quarter, "rows") if quarter else None
    projected = None
    if growth is not None and n_full < DEFAULT_ROWS:  # linear in the rows, through both sizes
        slope = (peak_full - peak_quarter) / (n_full - n_quarter)
        projected = (peak_full + slope * (DEFAULT_ROWS - n_full)) / MB
    agree = _get(results, "sizes", full, "agreement")
    goal_key = rows_key(DEFAULT_ROWS)
    peak_goal_mb = PARQUET_PEAK_GOAL / MB
    rows = [
        (
            f"{full}: parquet fit / one read",
            READ_RATIO_GOAL,
            _get(results, "sizes", full, "parquet", "ratio"),
        ),
        (
            f"{full}: parquet fit peak RSS (MB)",
            PARQUET_PEAK_GOAL / MB,
            None if peak_full is None else peak_full / MB,
        ),
        (f"parquet fit peak RSS {full} / {quarter}", PEAK_GROWTH_GOAL, growth),
        (f"parquet fit peak RSS at {goal_key}, extrapolated (MB)", peak_goal_mb, projected),
        (
            f"{full}: parquet vs in-memory, params and bse",
            PARQUET_RTOL,
            max(agree.values()) if agree else None,
        ),
        (
            f"{dask_size}: Dask fit / in-memory fit",
            DASK_RATIO_GOAL,
            _get(results, "dask", "fit", "ratio"),
        ),
        (
            f"{dask_size}: Dask vs in-memory, params",
            DASK_RTOL,
            _get(results, "dask", "agreement", "params"),
        ),
    ]
    out = []
    for label, limit, value in rows:
        status = "SKIP" if value is None else ("PASS" if value <= limit else "MISS")
        out.append({"target": label, "op": "<=", "limit": limit, "value": value, "status": status})
    return out


# -- output --------------------------------------------------------------------------------------


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _notes(res: dict) -> str:
    notes = []
    if res.get("converged") is False:
        notes.append("NOT CONVERGED")
    if res.get("untimed_first_s") is not None:
        notes.append(f"first read {res['untimed_first_s']:.2f} s (untimed)")
    if res.get("frame_bytes"):
        notes.append(f"DataFrame {res['frame_bytes'] / MB:.0f} MB")
    if "npartitions" in res:
        workers = res["worker_peak_bytes"] / MB
        notes.append(f"{res['npartitions']} partitions; workers' peak {workers:.0f} MB")
    if res.get("warnings"):
        notes.append(f"{len(res['warnings'])} warning(s)")
    if res.get("load_before") is not None:
        notes.append(f"load {res['load_before']:.1f}")
    return ", ".join(notes)


def _row(rows: str, label: str, res: dict | None, agreement: dict | None = None) -> str:
    if res is None:
        return f"{rows:<8} {label:<20} not run"
    if "error" in res:
        return f"{rows:<8} {label:<20} ERROR {res['error'][:200]}"
    reps = len(res["times"])
    peak = res.get("peak_bytes")
    build = res.get("build_median")
    return (
        f"{rows:<8} {label:<20} {reps:>4} {res['median']:>9.2f} {_fmt(build, '.2f'):>7} "
        f"{_fmt(res.get('ratio'), '.2f'):>6} {_fmt(res.get('n_iter'), 'd'):>5} "
        f"{_fmt(None if peak is None else peak / MB, '.0f'):>8} "
        f"{_fmt(agreement and agreement['params'], '.1e'):>9} "
        f"{_fmt(agreement and agreement['bse'], '.1e'):>9}  {_notes(res)}"
    )


def format_table(results: dict) -> str:
    """The per-size table with its legend."""
    head = (
        f"{'rows':<8} {'step':<20} {'reps':>4} {'seconds':>9} {'build s':>7} {'ratio':>6} "
        f"{'iters':>5} {'peak MB':>8} {'params':>9} {'bse':>9}  notes"
    )
    lines = [head, "-" * len(head)]
    for key, entry in results["sizes"].items():
        lines.append(_row(key, "one read (pyarrow)", entry.get("read")))
        lines.append(_row("", "parquet fit + bse", entry.get("parquet"), entry.get("agreement")))
        lines.append(_row("", "in-memory fit + bse", entry.get("memory"), {"params": 0, "bse": 0}))
    dask = results.get("dask")
    if dask:
        lines.append(_row(dask["size"], "dask fit + bse", dask.get("fit"), dask.get("agreement")))
    lines += [
        "",
        "seconds: median of the repeats (reps); one read: pyarrow record batches, every column",
        "  to numpy, page cache warm, after one untimed read in the same process (its time in",
        "  the notes).  Fits: mnlogit(...) through .fit() and .bse.",
        "build s: of which mnlogit(...) itself (the passes that fix the design and write the",
        "  spill; for the in-memory fit, patsy on the DataFrame).",
        "ratio: parquet and in-memory fits / one read of the same rows; dask / in-memory fit.",
        "iters: Newton iterations.  peak MB: peak RSS above the process's RSS before the fit",
        "  (after imports and a warm-up fit; in memory, measured from before the pandas read,",
        "  so it includes the DataFrame; Dask: the client process, workers in the notes).",
        "params, bse: largest |a - b| / |b| against the in-memory fit of the same rows.",
        "load: the machine's 1-minute load average before the step.",
    ]
    return "\n".join(line.rstrip() for line in lines)


def format_targets(results: dict) -> str:
    lines = ["Goals"]
    for row in results["targets"]:
        value = _fmt(row["value"], ".3g", "not measured in this run")
        goal = f"{row['target']} {row['op']} {row['limit']:g}"
        lines.append(f"  {row['status']:<4}  {goal}: {value}")
    warned = [
        (key, step, text)
        for key, entry in results["sizes"].items()
        for step, res in entry.items()
        if isinstance(res, dict)
        for text in res.get("warnings", [])
    ]
    warned += [
        (_get(results, "dask", "size"), "dask", text)
        for text in (_get(results, "dask", "fit", "warnings") or [])
    ]
    if warned:
        lines += ["", "Warnings raised during the timed fits"]
        lines += [f"  {key} {step}: {text}" for key, step, text in warned]
    return "\n".join(lines)


def print_report(results: dict) -> None:
    """Print the header, the table and the goals of a results dictionary."""
    opts, data, machine = results["options"], results.get("data") or {}, results["machine"]
    created = datetime.datetime.fromisoformat(results["created"])
    print(
        f"multilogit large-data benchmark, {created:%Y-%m-%d %H:%M}, {machine['cpu_model']}, "
        f"{machine['cpu_count']} cores; {rows_key(opts['rows'])} rows x {opts['p']} columns, "
        f"K = {opts['k']}, {opts['files']} files; seed {opts['seed']}"
    )
    if data:
        print(
            f"dataset: {data['bytes_on_disk'] / 1e9:.2f} GB on disk, written in "
            f"{data['write_s']:.0f} s"
        )
    print()
    print(format_table(results))
    print()
    print(format_targets(results))


# -- command line --------------------------------------------------------------------------------


def parse_rows(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        message = f"rows must be a number such as 1e7; got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"rows must be a positive integer; got {text!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Time multilogit's Parquet and Dask fits against one read and in-memory fits."
    )
    parser.add_argument(
        "--rows",
        type=parse_rows,
        help=f"rows of the dataset (default {DEFAULT_ROWS:.0e}, the goal size); "
        "the quarter size is also run",
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:.0e} rows, no repeats")
    parser.add_argument(
        "--files", type=int, default=8, help="Parquet files, a multiple of 4 (default 8)"
    )
    parser.add_argument(
        "--row-group", type=parse_rows, default=100_000, help="rows per row group (default 1e5)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="where to write the dataset (a new directory below it, deleted at the end; "
        "default: the system's temporary directory)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the dataset")
    parser.add_argument("--repeats", type=int, default=1, help="timed fits per step (default 1)")
    parser.add_argument("--read-repeats", type=int, default=3, help="timed full reads (default 3)")
    parser.add_argument(
        "--dask-rows",
        type=parse_rows,
        help="rows of the Dask fit, rounded up to whole files (default: the largest size with "
        "an in-memory fit)",
    )
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask fit")
    parser.add_argument(
        "--no-memory-fit", action="store_true", help="skip the in-memory fits (and Dask)"
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"data seed (default {SEED})")
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="print the tables of an earlier results file"
    )
    parser.add_argument(
        "--json", type=Path, help="results file (default results/bench_large-<date>.json)"
    )
    return parser


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _versions() -> dict:
    out = {}
    for name in ("pyarrow", "dask", "distributed"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _log(text: str) -> None:
    print(f"[bench_large] {text}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.report:
        print_report(json.loads(args.report.read_text()))
        return 0
    rows = args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    if args.files < 4 or args.files % 4:
        raise SystemExit("--files must be a positive multiple of 4")
    if rows < 1000 * args.files:
        raise SystemExit("need at least 1000 rows per file")
    started = datetime.datetime.now().astimezone()
    t_start = time.perf_counter()
    data_bytes = rows * (P + 1) * 8
    parent = args.dir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    # The dataset, and the fit's spill of the same size under the temporary directory.
    for place, need in ((parent, data_bytes), (Path(tempfile.gettempdir()), data_bytes)):
        free = shutil.disk_usage(place).free
        if place == Path(tempfile.gettempdir()) and place.resolve() == parent.resolve():
            need = 2 * data_bytes
        if free < 1.1 * need:
            raise SystemExit(f"{place}: {free / 1e9:.1f} GB free, need {need / 1e9:.1f} GB")
    workdir = Path(tempfile.mkdtemp(prefix="multilogit-bench-large-", dir=parent))
    results: dict = {
        "benchmark": "bench_large",
        "created": started.isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "options": {
            "rows": rows,
            "p": P,
            "k": K,
            "files": args.files,
            "row_group": args.row_group,
            "repeats": args.repeats,
            "read_repeats": args.read_repeats,
            "seed": args.seed,
            "formula": formula(),
            "ref": 0,
            "goals": {
                "read_ratio": READ_RATIO_GOAL,
                "parquet_peak_bytes": PARQUET_PEAK_GOAL,
                "peak_growth": PEAK_GROWTH_GOAL,
                "dask_ratio": DASK_RATIO_GOAL,
                "parquet_rtol": PARQUET_RTOL,
                "dask_rtol": DASK_RTOL,
            },
        },
        "machine": {**machine_info(), "versions_large": _versions()},
        "sizes": {},
        "dask": None,
    }
    try:
        _log(f"writing {rows:.3g} rows to {workdir} ...")
        t0 = time.perf_counter()
        files = write_dataset(workdir / "data", rows, args.files, args.row_group, args.seed)
        write_s = time.perf_counter() - t0
        os.sync()  # no write-back of the new files competes with the timed reads
        warmup = write_dataset(workdir / "warmup", WARMUP_ROWS, 1, args.row_group, args.seed + 1)
        per_file = rows // args.files
        results["data"] = {
            "dir": str(workdir),
            "write_s": write_s,
            "bytes_on_disk": sum(os.path.getsize(f) for f in files),
            "rows_per_file": per_file,
        }
        base = {
            "formula": formula(),
            "warmup": warmup[0],
            "repeats": args.repeats,
            "read_repeats": args.read_repeats,
        }
        sizes = [args.files, args.files // 4]  # leading files: the full size, a quarter
        keys = {}
        mem_fits = {}
        for n_files in sizes:
            n = sum(pqrows for pqrows in _file_rows(rows, args.files)[:n_files])
            key = rows_key(n)
            keys[n_files] = key
            entry = {"rows": n, "files": n_files}
            results["sizes"][key] = entry
            task = {**base, "files": files[:n_files]}
            _log(f"{key}: one read ...")
            entry["read"] = run_task({**task, "kind": "read"})
            _log(f"{key}: parquet fit ...")
            entry["parquet"] = run_task({**task, "kind": "parquet"})
            available = _mem_available()
            if args.no_memory_fit:
                entry["memory"] = {"error": "skipped (--no-memory-fit)"}
            elif available is not None and MEMORY_FACTOR * n * (P + 1) * 8 > available:
                entry["memory"] = {
                    "error": f"skipped: needs about {MEMORY_FACTOR * n * (P + 1) * 8 / 1e9:.0f} "
                    f"GB, {available / 1e9:.0f} GB available"
                }
            else:
                _log(f"{key}: in-memory fit ...")
                entry["memory"] = run_task({**task, "kind": "memory"})
                if _ok(entry["memory"]):
                    mem_fits[n_files] = key
        results["size_keys"] = {"full": keys[sizes[0]], "quarter": keys[sizes[1]]}
        if not args.no_dask and not args.no_memory_fit:
            if args.dask_rows:
                n_dask = min(args.files, max(1, math.ceil(args.dask_rows / per_file)))
            else:
                n_dask = max(mem_fits) if mem_fits else None
            if n_dask is not None:
                key = rows_key(sum(_file_rows(rows, args.files)[:n_dask]))
                task = {**base, "files": files[:n_dask], "dask_workers": 2}
                if key not in results["sizes"]:
                    _log(f"{key}: in-memory fit for Dask ...")
                    results["sizes"][key] = {
                        "rows": sum(_file_rows(rows, args.files)[:n_dask]),
                        "files": n_dask,
                        "memory": run_task({**task, "kind": "memory"}),
                    }
                _log(f"{key}: dask fit ...")
                results["dask"] = {
                    "size": key,
                    "workers": 2,
                    "threads_per_worker": 1,
                    "fit": run_task({**task, "kind": "dask"}),
                }
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    analyse(results)
    results["targets"] = evaluate_targets(results)
    results["elapsed_s"] = time.perf_counter() - t_start

    print_report(results)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    path = args.json or RESULTS_DIR / f"bench_large-{stamp}{'-quick' if args.quick else ''}.json"
    written = write_json(results, path, latest=False)
    print()
    print(f"Results: {', '.join(str(p) for p in written)} ({results['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
