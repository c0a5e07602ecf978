"""Data. What training reads sits at the top: the environment families (families), dataset names (names), files
(files), the goal-relabelling sampler (sampler), ExORL's reader and tasks (exorl, exorl_tasks) and seeding.
The data factory, which makes datasets and experts and is never imported by training, has two sub-packages:
ogbench_gen (offline regeneration of OGBench datasets, their validation, the ant expert and its SAC trainer) and
exorl_gen (the ExORL collector and its RND agent)."""
