"""The state of a formula's patsy factors, found from data: what fixes a design.

A patsy design is fixed by each factor's type (numeric, with its number of columns, or
categorical, with its levels and contrast) and by the memorised state of stateful transforms
(``center``, ``standardize``, ``bs``...).  :class:`Factors` finds them either from all the rows
at once (a DataFrame in memory) or batch by batch (data streamed from Parquet or Dask
partitions), and builds the same :class:`patsy.DesignInfo` that
:func:`patsy.design_matrix_builders` builds.

patsy's categorical sniffer loops in Python over every value it is handed; it collects a set, so
each batch's distinct values find the same levels at a fraction of the cost (seconds per million
rows of strings otherwise).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..exceptions import DataError
from ..lazy import lazy_module

__all__ = ["Factors", "distinct", "is_categorical_box", "no_na_action"]

# Imported at the first formula (array models never need it); the names this module uses from
# patsy's submodules are imported in the functions that use them.
patsy = lazy_module("patsy")

# Stateful transforms that keep every value they see (spline knots at quantiles of all rows):
# their state cannot be memorised batch by batch in bounded memory.
_NOT_INCREMENTAL = {"BS": "bs", "CR": "cr", "CC": "cc", "TE": "te"}
# Rows kept from the first batch to find the width of a stateful factor's value.
_EXAMPLE_ROWS = 256


@functools.cache
def no_na_action():
    """patsy's ``NAAction(NA_types=[])``: no value counts as missing; one object, made at the
    first use (building it imports patsy)."""
    return patsy.NAAction(NA_types=[])


class Factors:
    """The factors of a formula's right-hand side and their state, found from data.

    Parameters
    ----------
    terms : list of patsy.Term
    eval_env : patsy.EvalEnvironment
    streamed : bool
        ``True``: the data come in batches (:meth:`see` once per batch); transforms that
        need every value at once or several passes are refused, naming them.  ``False``: all
        rows in one call of :meth:`see`, and every patsy transform works as in patsy.

    Raises
    ------
    DataError
        (streamed) A transform that cannot be memorised batch by batch.
    """

    def __init__(self, terms, eval_env, streamed: bool = True):
        self.terms = list(terms)
        self.streamed = streamed
        self.factors = list(dict.fromkeys(f for t in self.terms for f in t.factors))
        self.states, self.passes = {}, {}
        for f in self.factors:
            state = {}
            passes = f.memorize_passes_needed(state, eval_env)
            self.states[f] = state
            if streamed:
                _check_incremental(f, state, passes)
            if passes:
                self.passes[f] = passes
        self.num_columns, self.sniffers, self.example = {}, {}, None
        self._seen = False

    def see(self, df: pd.DataFrame) -> None:
        """Memorise transforms over ``df`` and find factor types and levels from it."""
        if not self.streamed and self._seen:
            raise RuntimeError("Factors(streamed=False) sees all the rows in one call")
        self._seen = True
        if self.example is None:
            self.example = df.iloc[:_EXAMPLE_ROWS]
        try:
            with np.errstate(invalid="ignore", divide="ignore"):
                if self.streamed:
                    for f in self.passes:
                        f.memorize_chunk(self.states[f], 0, df)
                    examine = [f for f in self.factors if f not in self.passes]
                else:
                    self._memorize_all(df)
                    examine = self.factors
                for f in examine:
                    if f not in self.num_columns:
                        self._examine(f, df)
        except patsy.PatsyError as exc:
            raise DataError(f"cannot evaluate the formula: {str(exc).splitlines()[0]}") from None

    def _memorize_all(self, df) -> None:
        # patsy's order: each pass over the data for every factor still needing it, then
        # that pass's finish.
        needed = dict(self.passes)
        which = 0
        while needed:
            for f in needed:
                f.memorize_chunk(self.states[f], which, df)
            for f in list(needed):
                f.memorize_finish(self.states[f], which)
                if which == needed[f] - 1:
                    del needed[f]
            which += 1

    def _examine(self, f, df) -> None:
        from patsy.categorical import CategoricalSniffer, guess_categorical

        value = f.eval(self.states[f], df)
        if f in self.sniffers or guess_categorical(value):
            sniffer = self.sniffers.setdefault(f, CategoricalSniffer(no_na_action(), f.origin))
            sniffer.sniff(distinct(value))
        else:
            self.num_columns[f] = _width(f, value)

    def design_info(self) -> patsy.DesignInfo:
        """The design, fixed by the rows seen."""
        from patsy.build import _make_subterm_infos, _subterm_column_names_iter
        from patsy.categorical import guess_categorical
        from patsy.design_info import DesignInfo, FactorInfo

        if self.streamed:
            for f in self.passes:
                f.memorize_finish(self.states[f], 0)
                value = f.eval(self.states[f], self.example)
                if guess_categorical(value):
                    raise DataError(
                        f"{f.name()}: a categorical factor of a stateful transform needs a "
                        "second pass to find its levels and cannot be streamed"
                    )
                self.num_columns[f] = _width(f, value)
        cats = {f: s.levels_contrast() for f, s in self.sniffers.items()}
        infos = {}
        for f in self.factors:
            if f in self.num_columns:
                infos[f] = FactorInfo(f, "numerical", self.states[f], self.num_columns[f], None)
            else:
                infos[f] = FactorInfo(f, "categorical", self.states[f], None, cats[f][0])
        codings = _make_subterm_infos(self.terms, self.num_columns, cats)
        names = [
            nm
            for subterms in codings.values()
            for sub in subterms
            for nm in _subterm_column_names_iter(infos, sub)
        ]
        return DesignInfo(names, factor_infos=infos, term_codings=codings)


def _check_incremental(f, state, passes) -> None:
    for obj in state.get("transforms", {}).values():
        name = _NOT_INCREMENTAL.get(type(obj).__name__)
        if name:
            raise DataError(
                f"{f.name()}: {name}() keeps every value to place its knots and cannot "
                "be memorised chunk by chunk; stream a precomputed basis instead"
            )
    if passes > 1:
        raise DataError(
            f"{f.name()}: nested stateful transforms need {passes} passes over the data "
            "and cannot be memorised in one streamed pass"
        )


def _width(f, value) -> int:
    value = np.asarray(value)
    if value.ndim > 2:
        raise DataError(f"{f.name()}: a numeric factor must give at most 2 dimensions")
    return 1 if value.ndim < 2 else value.shape[1]


def is_categorical_box(value) -> bool:
    """Whether ``value`` is what patsy's ``C(x, contrast, levels)`` returns: the values
    (``.data``) boxed with a contrast and levels (patsy's class is private)."""
    return hasattr(value, "contrast") and hasattr(value, "data")


def distinct(value):
    """A categorical factor's value with each distinct value once, for patsy's sniffer."""
    if is_categorical_box(value):
        from patsy.builtins import C

        return C(distinct(value.data), value.contrast, value.levels)
    if isinstance(value, pd.Series):
        if isinstance(value.dtype, pd.CategoricalDtype):
            return value  # the sniffer takes a Categorical's levels from its categories
        return value.drop_duplicates()
    arr = np.asarray(value)
    # Booleans keep their dtype: the sniffer gives them both levels whatever it sees.
    return pd.unique(arr) if arr.ndim == 1 else arr
