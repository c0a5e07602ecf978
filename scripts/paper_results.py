"""The paper's reported success rates (%) and, for Table 1, episode returns, for side-by-side tables.

These are the PAPER's numbers, never ours: the aggregation prints them in columns labelled "paper".
Keys: (table, dataset name without '-v0' and variant suffixes, variant) -> mean (or (mean, std)).
"""
from datasets.families import Exorl, family_of
from datasets.names import OGBenchName, is_exorl

# Table 3: goal-conditioned BC on OGBench oraclerep tasks (8 seeds state, 4 pixel), CFGRL at w = 3.
TABLE3 = {
    ('pointmaze-large-navigate', 'gcfbc'): 74, ('pointmaze-large-navigate', 'cfgrl'): 77,
    ('pointmaze-giant-navigate', 'gcfbc'): 4, ('pointmaze-giant-navigate', 'cfgrl'): 30,
    ('antmaze-medium-navigate', 'gcfbc'): 42, ('antmaze-medium-navigate', 'cfgrl'): 53,
    ('humanoidmaze-medium-navigate', 'gcfbc'): 8, ('humanoidmaze-medium-navigate', 'cfgrl'): 19,
    ('visual-cube-single-play', 'gcfbc'): 13, ('visual-cube-single-play', 'cfgrl'): 37,
    ('visual-scene-play', 'gcfbc'): 25, ('visual-scene-play', 'cfgrl'): 40,
    ('antmaze-medium-navigate', 'flow_hgcbc'): 67, ('antmaze-medium-navigate', 'hcfgrl'): 90,
    ('antmaze-large-navigate', 'flow_hgcbc'): 61, ('antmaze-large-navigate', 'hcfgrl'): 78,
    ('antmaze-giant-navigate', 'flow_hgcbc'): 14, ('antmaze-giant-navigate', 'hcfgrl'): 38,
    ('humanoidmaze-large-navigate', 'flow_hgcbc'): 11, ('humanoidmaze-large-navigate', 'hcfgrl'): 38,
    ('cube-double-play', 'flow_hgcbc'): 21, ('cube-double-play', 'hcfgrl'): 42,
}

# Table 2: single-task offline RL (4 seeds), mean ± std.
TABLE2 = {
    ('pointmaze-large-navigate', 'awr'): (70, 25), ('pointmaze-large-navigate', 'cfgrl_iql'): (100, 0),
    ('pointmaze-teleport-navigate', 'awr'): (3, 7), ('pointmaze-teleport-navigate', 'cfgrl_iql'): (57, 7),
    ('antmaze-large-navigate', 'awr'): (50, 9), ('antmaze-large-navigate', 'cfgrl_iql'): (20, 9),
    ('antmaze-teleport-navigate', 'awr'): (22, 19), ('antmaze-teleport-navigate', 'cfgrl_iql'): (30, 22),
    ('humanoidmaze-large-navigate', 'awr'): (3, 4), ('humanoidmaze-large-navigate', 'cfgrl_iql'): (0, 0),
    ('antsoccer-arena-navigate', 'awr'): (7, 0), ('antsoccer-arena-navigate', 'cfgrl_iql'): (20, 5),
    ('cube-single-play', 'awr'): (85, 8), ('cube-single-play', 'cfgrl_iql'): (82, 3),
    ('scene-play', 'awr'): (18, 3), ('scene-play', 'cfgrl_iql'): (17, 9),
    ('puzzle-3x3-play', 'awr'): (3, 7), ('puzzle-3x3-play', 'cfgrl_iql'): (3, 4),
}


# Table 1: ExORL (4 seeds), episode return, mean ± std.
TABLE1 = {
    ('exorl-walker-stand', 'awr'): (603, 8), ('exorl-walker-stand', 'cfgrl_exorl'): (782, 8),
    ('exorl-walker-walk', 'awr'): (444, 4), ('exorl-walker-walk', 'cfgrl_exorl'): (608, 32),
    ('exorl-walker-run', 'awr'): (247, 10), ('exorl-walker-run', 'cfgrl_exorl'): (282, 6),
    ('exorl-quadruped-walk', 'awr'): (776, 15), ('exorl-quadruped-walk', 'cfgrl_exorl'): (762, 25),
    ('exorl-quadruped-run', 'awr'): (485, 7), ('exorl-quadruped-run', 'cfgrl_exorl'): (571, 25),
    ('exorl-cheetah-run', 'awr'): (168, 7), ('exorl-cheetah-run', 'cfgrl_exorl'): (216, 15),
    ('exorl-cheetah-run-backward', 'awr'): (146, 8), ('exorl-cheetah-run-backward', 'cfgrl_exorl'): (262, 26),
    ('exorl-jaco-reach-top-right', 'awr'): (33, 2), ('exorl-jaco-reach-top-right', 'cfgrl_exorl'): (72, 6),
    ('exorl-jaco-reach-top-left', 'awr'): (30, 8), ('exorl-jaco-reach-top-left', 'cfgrl_exorl'): (46, 6),
}


def task_key(env_name: str) -> str:
    """'cube-single-play-oraclerep-v0' / '...-singletask-task2-v0' -> 'cube-single-play'; ExORL names as they are."""
    return env_name if is_exorl(env_name) else '-'.join(OGBenchName.parse(env_name).head)


def paper_value(env_name: str, variant: str):
    """The paper's number for this cell (a mean, or (mean, std)), or None when the paper reports none we know."""
    key = (task_key(env_name), variant)
    family = family_of(env_name)
    if isinstance(family, Exorl):
        return TABLE1.get(key)
    if family.single_task:
        return TABLE2.get(key)
    return TABLE3.get(key)
