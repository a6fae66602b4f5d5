r"""Resampling covariances: the bootstrap and the jackknife (Stata's ``vce(bootstrap)`` and
``vce(jackknife)``).

Each replication refits the model on the same rows with other weights
(:meth:`~multilogit.MultinomialLogit.reweighted`, no copy of the design), with the options of
the original fit; replications run on a thread pool, and the draws are made up front from the
seed, so the result does not depend on the number of threads.

``jackknife``
    Delete-one (each row a unit; a row with frequency weight :math:`f_i` counts as :math:`f_i`
    units, so the result equals that of the repeated rows) or delete-cluster.  With
    :math:`\hat\beta_{(u)}` the estimate without unit :math:`u` of :math:`n` units and
    :math:`\bar\beta` their mean,

    .. math::

        \hat V = \frac{n - 1}{n} \sum_u (\hat\beta_{(u)} - \bar\beta)
                 (\hat\beta_{(u)} - \bar\beta)^\top .

``bootstrap``
    Pairs bootstrap: each replication draws :math:`n` units with replacement (rows, in
    proportion to their frequency weights, or whole clusters) and refits with the counts as
    frequency weights (times the sampling weights, if any).  With :math:`R` successful
    replications,

    .. math::

        \hat V = \frac{1}{R - 1} \sum_r (\hat\beta_r - \bar\beta)(\hat\beta_r - \bar\beta)^\top .

A replication fails when its fit raises, does not converge, or loses an outcome (a draw without
rows of it); failures are counted and reported in the note, never silently dropped, and the
covariance comes from the successful ones (an error if fewer than two succeed).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..exceptions import DataError, MultilogitError
from .covariance import CovarianceEstimator, register

__all__ = ["Bootstrap", "Jackknife"]


def _refit_options(state) -> dict:
    options = {k: v for k, v in state.options.items() if not k.startswith("cov_")}
    # Only the estimates of a replication are used: the cheapest covariance will do.
    options["cov_type"] = "nonrobust"
    return options


def _replicate(model, options, freq_weights, weights):
    """Flat estimates of one replication, or ``None`` when it fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.reweighted(freq_weights=freq_weights, weights=weights).fit(**options)
    except (MultilogitError, ArithmeticError, np.linalg.LinAlgError):
        return None
    if not res.converged or list(res.model.outcomes) != list(model.outcomes):
        return None
    beta = res.params.to_numpy(dtype=np.float64).T.ravel()
    return beta


def _run(model, state, draws) -> tuple[np.ndarray, np.ndarray]:
    """Estimates of the successful replications of ``draws`` (pairs of frequency and sampling
    weights), in order, and the mask of which succeeded."""
    options = _refit_options(state)
    workers = max(1, min(len(draws), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda d: _replicate(model, options, *d), draws))
    ok = np.array([r is not None for r in results], dtype=bool)
    if ok.sum() < 2:
        raise DataError(
            f"{int((~ok).sum())} of {len(results)} replications failed (a fit that raised, did "
            "not converge, or lost an outcome): no covariance"
        )
    return np.vstack([r for r in results if r is not None]), ok


def _positive(model) -> np.ndarray:
    """Rows with positive likelihood weight."""
    pos = np.asarray(model.freq_weights) > 0
    if model.weights is not None:
        pos &= np.asarray(model.weights) > 0
    return pos


def _units(model, cluster):
    """Cluster codes of the rows and their number, or ``None`` when each row is a unit."""
    if cluster is None:
        return None
    codes, n_groups = model.group_codes(cluster)
    codes = np.asarray(codes, dtype=np.int64)
    return codes, n_groups


def _check_options(name, kwds, allowed):
    unknown = sorted(set(kwds) - set(allowed))
    if unknown:
        raise TypeError(
            f"cov_type {name!r} takes the options {sorted(allowed)}; got unknown {unknown}"
        )


class Jackknife(CovarianceEstimator):
    """Delete-one or delete-cluster jackknife (see the module docstring).

    Parameters
    ----------
    cluster : array-like or str, optional
        Cluster id of each row (or a column name of a formula model's data): delete one
        cluster at a time.
    """

    name = "jackknife"
    label = "jackknife"

    def __init__(self, **kwds):
        _check_options(self.name, kwds, ("cluster",))
        self.kwds = dict(kwds)
        self.failed = 0
        self.n_units = None

    def compute(self, model, state):
        freq = np.asarray(model.freq_weights, dtype=np.float64)
        positive = _positive(model)
        units = _units(model, self.kwds.get("cluster"))
        draws, multiplicity = [], []
        if units is None:
            rows = np.flatnonzero(positive)
            if np.any(freq[rows] != np.round(freq[rows])):
                raise DataError(
                    "the jackknife deletes one unit at a time: frequency weights must be "
                    "whole numbers"
                )
            for i in rows:
                f = freq.copy()
                f[i] -= 1.0
                draws.append((f, None))
                multiplicity.append(freq[i])
        else:
            codes, n_groups = units
            for g in range(n_groups):
                members = codes == g
                if not np.any(positive[members]):
                    continue
                f = freq.copy()
                f[members] = 0.0
                draws.append((f, None))
                multiplicity.append(1.0)
        if sum(multiplicity) < 2:
            raise DataError("the jackknife needs at least two units")
        betas, ok = _run(model, state, draws)
        # Units whose deletion failed are left out, as Stata does.
        w = np.asarray(multiplicity)[ok]
        self.failed, self.n_units = int((~ok).sum()), int(round(sum(multiplicity)))
        m = float(w.sum())
        mean = (w @ betas) / m
        dev = betas - mean
        cov = (m - 1.0) / m * (dev.T * w) @ dev
        return (cov + cov.T) / 2.0

    def note(self) -> str:
        units = "clusters" if self.kwds.get("cluster") is not None else "observations"
        text = f"Jackknife standard errors (delete-one, {self.n_units} {units}, (n-1)/n scaling)."
        if self.failed:
            text += f" {self.failed} replication(s) failed and were left out."
        return text


class Bootstrap(CovarianceEstimator):
    """Pairs (or cluster) bootstrap (see the module docstring).

    Parameters
    ----------
    reps : int
        Replications (default 1000).
    seed : int or numpy.random.SeedSequence, optional
        Seed of the draws: the same seed gives the same covariance.
    cluster : array-like or str, optional
        Cluster id of each row (or a column name): draw whole clusters.
    """

    name = "bootstrap"
    label = "bootstrap"

    def __init__(self, **kwds):
        _check_options(self.name, kwds, ("reps", "seed", "cluster"))
        reps = kwds.get("reps", 1000)
        if not isinstance(reps, int | np.integer) or isinstance(reps, bool) or reps < 2:
            raise ValueError(f"reps must be an integer of at least 2; got {reps!r}")
        self.kwds = dict(kwds)
        self.reps = int(reps)
        self.failed = 0

    def compute(self, model, state):
        rng = np.random.default_rng(self.kwds.get("seed"))
        freq = np.asarray(model.freq_weights, dtype=np.float64)
        sampling = None if model.weights is None else np.asarray(model.weights, dtype=np.float64)
        units = _units(model, self.kwds.get("cluster"))
        draws = []
        if units is None:
            if np.any(freq != np.round(freq)):
                raise DataError(
                    "the bootstrap draws units: frequency weights must be whole numbers"
                )
            n = int(freq.sum())
            prob = freq / freq.sum()
            for _ in range(self.reps):
                counts = rng.multinomial(n, prob).astype(np.float64)
                draws.append((counts, sampling))
        else:
            codes, n_groups = units
            for _ in range(self.reps):
                picks = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
                draws.append((freq * picks[codes], sampling))
        betas, ok = _run(model, state, draws)
        self.failed = int((~ok).sum())
        dev = betas - betas.mean(axis=0)
        cov = dev.T @ dev / (len(betas) - 1.0)
        return (cov + cov.T) / 2.0

    def note(self) -> str:
        kind = "cluster bootstrap" if self.kwds.get("cluster") is not None else "bootstrap"
        text = f"Standard errors from a {kind} of {self.reps} replications"
        seed = self.kwds.get("seed")
        text += f" (seed {seed})." if seed is not None else " (no seed: not reproducible)."
        if self.failed:
            text += f" {self.failed} replication(s) failed and were left out."
        return text


register(Jackknife)
register(Bootstrap)
