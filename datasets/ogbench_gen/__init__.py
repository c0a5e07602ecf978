"""Making OGBench datasets offline: the published recipes (recipes), the generator (generate), its validation and the
oracles' scores (validate, oracle_eval), and the ant expert that walks the antmaze data (expert, train_expert, sac).
Commands: `python -m datasets.ogbench_gen.generate | validate | train_expert | expert`."""
