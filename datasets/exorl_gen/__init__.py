"""Making ExORL data here: the RND exploration collector (collect) and its agent (rnd_ddpg), writing ExORL's buffer
format. Command: `python -m datasets.exorl_gen.collect`."""
