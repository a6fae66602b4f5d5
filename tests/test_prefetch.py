"""Items made one ahead in a background thread: the same items in the same order, errors raised
in their place, the source closed when the consumer stops early; and a Parquet fit read with
prefetching equal to one read without."""

import threading

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.data.prefetch import prefetched


def test_items_in_order_and_made_in_another_thread():
    threads = []

    def items():
        for k in range(50):
            threads.append(threading.get_ident())
            yield k

    assert list(prefetched(items())) == list(range(50))
    assert set(threads) == {threads[0]} and threads[0] != threading.get_ident()


def test_an_error_is_raised_where_its_item_was_awaited():
    def items():
        yield 1
        yield 2
        raise OSError("file rewritten")

    got = []
    with pytest.raises(OSError, match="file rewritten"):
        for v in prefetched(items()):
            got.append(v)
    assert got == [1, 2]


def test_stopping_early_closes_the_source_and_ends_the_thread():
    closed = threading.Event()

    def items():
        try:
            yield from range(1000)
        finally:
            closed.set()

    gen = prefetched(items())
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    assert closed.is_set()
    assert not any(t.name == "multilogit-prefetch" for t in threading.enumerate())


def test_a_parquet_fit_read_with_prefetching_is_the_same_fit(tmp_path):
    rng = np.random.default_rng(4)
    n = 900
    df = pd.DataFrame({"y": rng.integers(0, 3, n), "x": rng.normal(size=n), "z": rng.random(n)})
    df.to_parquet(tmp_path / "a.parquet", row_group_size=100)
    a = ml.mnlogit("y ~ x + z", ml.parquet(tmp_path, batch_rows=64)).fit()
    b = ml.mnlogit("y ~ x + z", ml.parquet(tmp_path, batch_rows=64, prefetch=True)).fit()
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.bse, b.bse)
    np.testing.assert_array_equal(a.get_margeff().margeff, b.get_margeff().margeff)
