"""Covariance estimators, hypothesis tests, reparameterisations, marginal effects and
predictions."""
