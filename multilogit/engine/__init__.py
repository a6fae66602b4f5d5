"""Numba kernels and the backends that run them over the rows of a data set."""
