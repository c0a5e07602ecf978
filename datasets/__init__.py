"""Data. What training reads sits at the top: loading, files, the goal-relabelling sampler, ExORL's reader and tasks.
The data factory, which makes datasets and experts and is never imported by training, has two sub-packages:
ogbench_gen (offline regeneration of OGBench datasets, their validation, the ant expert and its SAC trainer) and
exorl_gen (the ExORL collector and its RND agent)."""
