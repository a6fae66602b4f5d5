"""The Newton-Raphson solver: the loop, its direction strategies and the objective."""
