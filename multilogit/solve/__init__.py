"""The Newton-Raphson solver."""
