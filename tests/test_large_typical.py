"""Typical values of rows the process does not hold: marginal effects at the means and medians
and the plots of models on Dask data equal those of the in-memory fit of the same rows, and
the exact-median selection equals NumPy's median (the weighted one: the lower weighted median
of the in-memory code) on adversarial data."""

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.engine.memory import InMemoryBackend
from multilogit.inference import typical
from multilogit.inference.margins import _weighted_median

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Both fits converge to the same optimum; their estimates agree to rounding, and so do effects
# evaluated at typical values that are sums of the same rows in another order.
RTOL = 1e-10
N = 3000  # even: the unweighted median averages the two middle values

MEAN_FORMULA = "mode ~ C(region) + dist + np.log(fare) + age"
MEDIAN_FORMULA = "mode ~ dist + np.log(fare) + age + I(age**2)"
WEIGHTS = {
    "none": {},
    "freq": {"freq_weights": "fw"},
    "sampling": {"weights": "sw"},
}


def _data(n=N, seed=11):
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    # Few distinct values: many ties at the median.
    dist = np.round(rng.gamma(2.0, 3.0, n), 1)
    fare = rng.lognormal(1.0, 0.4, n)
    age = rng.integers(18, 40, n).astype(float)
    eta = np.column_stack(
        [
            0.3 - 0.05 * dist + 0.4 * (region == "north") + 0.01 * age,
            -0.2 + 0.02 * dist - 0.3 * np.log(fare),
        ]
    )
    p = np.exp(np.column_stack([np.zeros(n), eta]))
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    mode = np.array(["car", "bus", "bike"])[(u > np.cumsum(p, axis=1)).sum(axis=1)]
    return pd.DataFrame(
        {
            "mode": mode,
            "region": pd.Categorical(region),
            "dist": dist,
            "fare": fare,
            "age": age,
            "fw": rng.integers(1, 4, n).astype(float),
            "sw": rng.uniform(0.5, 2.0, n),
        }
    )


def _close(a, b, rtol=RTOL):
    # Effects on the K probabilities sum to zero, so some are differences of larger ones:
    # rounding is relative to the largest effect, not to each.
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.max(np.abs(b)))


def _same_effects(res, ref, at):
    me, mr = res.get_margeff(at=at), ref.get_margeff(at=at)
    assert me.margeff.index.tolist() == mr.margeff.index.tolist()
    _close(me.margeff, mr.margeff)
    _close(me.margeff_se, mr.margeff_se)


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def refs(data):
    """In-memory fits: the independent path the Dask fits are compared with."""
    return {
        (formula, w): ml.mnlogit(formula, data, ref="car", **WEIGHTS[w]).fit()
        for formula in (MEAN_FORMULA, MEDIAN_FORMULA)
        for w in WEIGHTS
    }


@pytest.fixture(scope="module")
def cluster(local_cluster):
    with distributed.Client(local_cluster) as client:
        yield client


def test_the_data_exercise_ties_and_an_even_count(data):
    # The checks below mean something only if the median averages two different values and
    # the middle values are tied with many others.
    for name in ("dist", "age"):
        v = np.sort(data[name].to_numpy())
        assert np.sum(v == v[N // 2]) > 10
    v = np.sort(data["fare"].to_numpy())
    assert N % 2 == 0 and v[N // 2 - 1] != v[N // 2]


# -- effects at the means and medians ----------------------------------------------------------


# Each Dask fit costs a second: every weighting and both partitionings, not every pair (the
# cluster test adds frequency weights on 3 partitions).
@pytest.mark.parametrize(
    "nparts,weights", [(1, "none"), (1, "freq"), (3, "none"), (3, "sampling")]
)
def test_effects_at_means_and_medians_threaded(data, refs, nparts, weights):
    with dask.config.set(scheduler="threads"):
        ddf = dd.from_pandas(data, npartitions=nparts)
        for formula, ats in ((MEAN_FORMULA, ["mean"]), (MEDIAN_FORMULA, ["mean", "median"])):
            res = ml.mnlogit(formula, ddf, ref="car", **WEIGHTS[weights]).fit()
            assert not res.model.is_in_memory
            for at in ats:
                _same_effects(res, refs[formula, weights], at)


def test_effects_at_means_and_medians_on_a_local_cluster(cluster, data, refs):
    # One fit (a fit on the cluster takes seconds); the threaded tests cover the rest.
    res = ml.mnlogit(
        MEDIAN_FORMULA, dd.from_pandas(data, npartitions=3), ref="car", freq_weights="fw"
    ).fit()
    ref = refs[MEDIAN_FORMULA, "freq"]
    _same_effects(res, ref, "mean")
    for method in ("dydx", "eyex"):
        me, mr = (r.get_margeff(at="median", method=method) for r in (res, ref))
        _close(me.margeff, mr.margeff)
        _close(me.margeff_se, mr.margeff_se)


def test_the_point_is_the_in_memory_point(data):
    # The representative values themselves, not only the effects they lead to: the medians
    # bit for bit (selection, no arithmetic), the means to rounding.
    with dask.config.set(scheduler="threads"):
        model = ml.mnlogit(MEDIAN_FORMULA, dd.from_pandas(data, npartitions=3), ref="car")
        columns = typical.Columns(["dist", "fare", "age"])
        med = typical.medians(model.backend, columns)
        assert med.tolist() == [float(np.median(data[c])) for c in ("dist", "fare", "age")]
        model = ml.mnlogit(
            MEAN_FORMULA, dd.from_pandas(data, npartitions=3), ref="car", freq_weights="fw"
        )
        summary = typical.moments(
            model.backend,
            typical.Columns(["dist"], [("region", ("east", "north", "south", "west"))]),
        )
    w = data["fw"].to_numpy()
    _close(summary.means, [w @ data["dist"].to_numpy() / w.sum()], rtol=1e-14)
    share = data.groupby("region", observed=False)["fw"].sum().to_numpy()
    _close(summary.shares[0], share / share.sum(), rtol=1e-14)
    assert (summary.lo, summary.hi) == (data["dist"].min(), data["dist"].max())
    assert not summary.equal_weights and summary.rows == N


def test_median_of_categorical_and_discrete_variables_is_refused(data):
    with dask.config.set(scheduler="threads"):
        res = ml.mnlogit(MEAN_FORMULA, dd.from_pandas(data, npartitions=2), ref="car").fit()
        with pytest.raises(ValueError, match="region"):
            res.get_margeff(at="median")


@pytest.mark.usefixtures("_close_figures")
def test_array_model_on_dask_arrays_at_means_and_medians_and_plots(data):
    import dask.array as da

    X = np.column_stack([np.ones(N), data[["dist", "age"]].to_numpy(), np.log(data["fare"])])
    y = data["mode"].to_numpy()
    fw = data["fw"].to_numpy()
    ref = ml.MultinomialLogit(y, X, ref="car", freq_weights=fw).fit()
    with dask.config.set(scheduler="threads"):
        res = ml.MultinomialLogit(
            da.from_array(y, chunks=1100),
            da.from_array(X, chunks=(1100, 4)),
            ref="car",
            freq_weights=da.from_array(fw, chunks=1100),
        ).fit()
        assert not res.model.is_in_memory
        for at in ("mean", "median"):
            _same_effects(res, ref, at)
        # Columns x2 (dist) and x4 (log fare); the others at their means.
        _same_drawing(res.plot_predicted("x2", n_points=9), ref.plot_predicted("x2", n_points=9))
        _same_drawing(
            *(
                ml.plot_decision_regions(r, "x2", "x4", grid_points=20, show_data=False)
                for r in (res, ref)
            )
        )


# -- the exact median by selection -------------------------------------------------------------


def _numpy_median(v, w):
    """Independent of the code under test: NumPy's median for equal weights, else the smallest
    distinct value whose rows weigh at least half the total."""
    if np.all(w == w[0]):
        return np.median(v)
    vals, inverse = np.unique(v, return_inverse=True)
    below = np.cumsum(np.bincount(inverse, weights=w))
    return vals[np.argmax(2.0 * below >= w.sum())]


def _adversarial(rng, n):
    return {
        "ties": rng.integers(0, 3, n).astype(float),
        "all equal": np.full(n, -7.25),
        "extreme": rng.choice([-1e308, -2.5, -0.0, 0.0, 5e-324, 1e-300, 1.0, 1e308], n),
        "spread": rng.standard_cauchy(n) * 1e12,
        "two values": rng.integers(0, 2, n).astype(float),
    }


@pytest.mark.parametrize("n", [1, 2, 7, 400, 401])
@pytest.mark.parametrize("bits,collect", [(1, 1), (3, 4), (10, 1 << 16)])
def test_exact_median_against_numpy(n, bits, collect):
    rng = np.random.default_rng(n * 7 + bits)
    cols = _adversarial(rng, n)
    V = np.column_stack(list(cols.values()))
    backend = InMemoryBackend(V, np.zeros(n, dtype=np.int64), np.ones(n), 1, chunk_rows=37)
    spec = typical.Columns(range(V.shape[1]), design=True)
    with np.errstate(over="ignore"):  # the mean of +-1e308 overflows, in NumPy as here
        got = typical.medians(backend, spec, chunk_rows=None, bits=bits, collect=collect)
        expected = np.median(V, axis=0)
    np.testing.assert_array_equal(got, expected)

    # Integer weights reach exactly half the total often: the lower median must be found.
    for w in (rng.integers(1, 4, n).astype(float), rng.uniform(0.1, 3.0, n)):
        if n > 2:
            w[rng.random(n) < 0.2] = 0.0  # rows of no weight are passed over
            w[0] = 1.5
        backend = InMemoryBackend(V, np.zeros(n, dtype=np.int64), w, 1, chunk_rows=37)
        got = typical.medians(backend, spec, chunk_rows=None, bits=bits, collect=collect)
        expected = [_numpy_median(V[:, c], w) for c in range(V.shape[1])]
        np.testing.assert_array_equal(got, expected)
        assert got.tolist() == [_weighted_median(V[:, c], w) for c in range(V.shape[1])]


def test_weighted_median_hits_half_exactly():
    # Total weight 6, the values up to 2.0 weigh 3: the lower median is 2.0, whatever rounding
    # normalised weights would bring.
    v = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([1.0, 2.0, 1.0, 2.0])
    assert _weighted_median(v, w) == 2.0
    backend = InMemoryBackend(v[:, None], np.zeros(4, dtype=np.int64), w, 1, chunk_rows=1)
    assert typical.medians(backend, typical.Columns([0], design=True)).tolist() == [2.0]


class _Counting:
    """A backend that counts the passes over its rows and the values handed back."""

    def __init__(self, inner):
        self.inner, self.passes, self.largest = inner, 0, 0

    def reduce(self, fn, chunk_rows=None):
        self.passes += 1
        out = self.inner.reduce(fn, chunk_rows)
        sizes = [np.size(a) for part in out for a in _arrays(part)]
        self.largest = max([self.largest, *sizes])
        return out


def _arrays(obj):
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, list | tuple):
        return [a for o in obj for a in _arrays(o)]
    return []


def test_selection_takes_few_passes_and_bounded_memory():
    rng = np.random.default_rng(5)
    n = 50_000
    v = np.concatenate([rng.normal(size=n - 2), [-1e300, 1e300]])
    w = rng.integers(1, 5, n).astype(float)
    inner = InMemoryBackend(v[:, None], np.zeros(n, dtype=np.int64), w, 1)
    backend = _Counting(inner)
    got = typical.medians(
        backend, typical.Columns([0], design=True), chunk_rows=10_000, bits=8, collect=500
    )
    assert got[0] == _numpy_median(v, w)
    # One pass for the moments, then each pass narrows 64-bit patterns by 8 bits at least.
    assert backend.passes <= 1 + 8 + 1
    # No pass hands back more than a chunk's bucket counts or the collected bucket.
    assert backend.largest <= max(1 << 8, 500)


def test_typical_values_from_chunk_frames_of_any_backend(data):
    # A chunked backend whose chunks carry their source rows (as Parquet models will): the same
    # values as the frame in memory.
    n = len(data)
    backend = InMemoryBackend(
        np.ones((n, 1)),
        np.zeros(n, dtype=np.int64),
        data["sw"].to_numpy(),
        1,
        chunk_rows=251,
        frame=data,
    )
    levels = ("east", "north", "south", "west")
    spec = typical.Columns(["dist", "age"], [("region", levels)])
    summary = typical.moments(backend, spec, chunk_rows=None)
    w = data["sw"].to_numpy()
    _close(summary.means, w @ data[["dist", "age"]].to_numpy() / w.sum(), rtol=1e-13)
    assert summary.template.equals(data.iloc[:1])
    got = typical.medians(backend, spec, summary, chunk_rows=None, bits=4, collect=50)
    assert got.tolist() == [_weighted_median(data[c].to_numpy(), w) for c in ("dist", "age")]


def test_chunks_without_source_rows_are_refused():
    backend = InMemoryBackend(np.ones((5, 1)), np.zeros(5, dtype=np.int64), np.ones(5), 1)
    with pytest.raises(ml.DataError, match="source rows"):
        typical.moments(backend, typical.Columns(["x"]))


# -- plots -------------------------------------------------------------------------------------


@pytest.fixture
def _close_figures():
    yield
    plt.close("all")


def _lines(fig):
    """Every line and filled or contoured path on the axes, the title and the x limits."""
    ax = fig.axes[0]
    drawn = [line.get_xydata() for line in ax.get_lines()]
    drawn += [path.vertices for c in ax.collections for path in c.get_paths()]
    return drawn, ax.get_title(), ax.get_xlim()


def _same_drawing(fig, fig_ref):
    (got, title, xlim), (exp, etitle, exlim) = _lines(fig), _lines(fig_ref)
    assert title == etitle and len(got) == len(exp) > 0
    _close(xlim, exlim, rtol=1e-14)
    for a, b in zip(got, exp, strict=True):
        _close(a, b)


@pytest.mark.usefixtures("_close_figures")
def test_plots_of_a_dask_model_equal_the_in_memory_plots(data, refs):
    ref = refs[MEAN_FORMULA, "freq"]
    with dask.config.set(scheduler="threads"):
        res = ml.mnlogit(
            MEAN_FORMULA, dd.from_pandas(data, npartitions=3), ref="car", freq_weights="fw"
        ).fit()
        pairs = [
            (lambda r: r.plot_predicted("dist", n_points=25)),
            (lambda r: r.plot_predicted("age", at={"region": "west"}, ci=False)),
            (
                lambda r: ml.plot_decision_regions(
                    r, "dist", "age", grid_points=30, show_data=False
                )
            ),
        ]
        for draw in pairs:
            _same_drawing(draw(res), draw(ref))
        # The curves run over the observed range of the variable.
        xs = _lines(res.plot_predicted("dist", n_points=25))[0][0][:, 0]
        assert (xs[0], xs[-1]) == (data["dist"].min(), data["dist"].max())
        # Categorical term: points at each level, the other covariates at their means.
        fig_res, fig_ref = res.plot_predicted("region"), ref.plot_predicted("region")
        for a, b in zip(fig_res.axes[0].containers, fig_ref.axes[0].containers, strict=True):
            _close(a.lines[0].get_ydata(), b.lines[0].get_ydata())
        with pytest.raises(ml.DataError, match="show_data=False"):
            ml.plot_decision_regions(res, "dist", "age")


def test_plots_of_a_parquet_model_equal_the_in_memory_plots(data, refs, tmp_path):
    # A model streamed from Parquet gets its typical values and ranges from the rows read
    # again from the files.
    ref = refs[MEAN_FORMULA, "freq"]
    for k, (a, b) in enumerate([(0, 1000), (1000, 2200), (2200, None)]):
        data.iloc[a:b].to_parquet(tmp_path / f"p{k}.parquet", row_group_size=300)
    res = ml.mnlogit(MEAN_FORMULA, ml.parquet(tmp_path), ref="car", freq_weights="fw").fit()
    _same_drawing(res.plot_predicted("dist", n_points=25), ref.plot_predicted("dist", n_points=25))
    _same_drawing(
        *(
            ml.plot_decision_regions(r, "dist", "age", grid_points=20, show_data=False)
            for r in (res, ref)
        )
    )
    _same_effects(res, ref, "mean")
