"""The fit pipeline: rank and separation diagnostics, scaling, the solve, refits."""
