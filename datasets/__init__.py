"""OGBench data: loading, offline regeneration (generate, validate, recipes) and goal-relabelling samplers."""
