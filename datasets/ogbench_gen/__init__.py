"""Making OGBench datasets offline: the published recipes (recipes), the generator (generate), its validation and the
oracles' scores (validate, oracle_eval), the ant expert that walks the antmaze data (expert, train_expert,
validate_expert, sac, sac_config), and `ensure` (find, download or regenerate a dataset within the factory).
Commands: `python -m datasets.ogbench_gen.generate | validate | train_expert | validate_expert`."""
