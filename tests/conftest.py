import warnings

import numpy as np
import pytest

import multilogit as ml


@pytest.fixture(scope="session")
def hsbdemo():
    return ml.datasets.load("hsbdemo")


@pytest.fixture(scope="session")
def admissions():
    return ml.datasets.load("admissions")


@pytest.fixture(scope="session")
def hsb_res(hsbdemo):
    return ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit()


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


def simulate(rng, n=600, p=4, K=4, scale=0.7):
    """Random multinomial-logit data with an intercept column first; labels are strings."""
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    beta = rng.normal(scale=scale, size=(K - 1, p))
    eta = np.column_stack([np.zeros(n), X @ beta.T])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    u = rng.uniform(size=(n, 1))
    codes = (u > np.cumsum(P, axis=1)).sum(axis=1)
    labels = np.array([f"c{k}" for k in range(K)])[codes]
    return X, labels


@pytest.fixture(autouse=True)
def _no_unexpected_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.fixture(scope="session")
def local_cluster():
    """A real Dask cluster on this machine (two worker processes), shared by the tests that
    need one; each test module connects its own client."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster
