"""The paper's per-task settings (its Tables 2 and 3) and the reduced CPU scale: datasets and scale of each cell.

scripts/make_sweeps.py turns them into one command per cell. Values marked (code) come from the authors' code;
Table 3's task list is partly reconstructed: the rows the paper reports plus OGBench's standard goal-conditioned
set.
"""

# Full-scale training (state-based): 1M steps, batch 1024, the default 4 × 512 networks; evaluation every 200K
# steps with 20 episodes per task at w in {0.5, 1, 1.25, 1.5, 2, 3} (code).
STATE = dict(train_steps=1_000_000, batch_size=1024, eval_interval=200_000, eval_episodes=20)
GUIDANCE = (0.5, 1, 1.25, 1.5, 2, 3)

# Pixel tasks: 500K steps, batch 256, IMPALA-small encoder, random-shift augmentation with probability 0.5;
# evaluation as the state tasks (every 200K steps as the authors' code, plus the final step).
PIXEL = dict(train_steps=500_000, batch_size=256, eval_interval=200_000, eval_episodes=20)
PIXEL_CONFIG = {'encoder': 'impala_small', 'p_aug': 0.5}  # Config overrides of every pixel cell.

TABLE3_STATE = (  # Goal-conditioned, `-oraclerep` goals, 8 seeds.
    'pointmaze-medium-navigate', 'pointmaze-large-navigate', 'pointmaze-giant-navigate',
    'pointmaze-teleport-navigate', 'antmaze-medium-navigate', 'antmaze-large-navigate', 'antmaze-giant-navigate',
    'antmaze-teleport-navigate', 'humanoidmaze-medium-navigate', 'humanoidmaze-large-navigate',
    'humanoidmaze-giant-navigate', 'antsoccer-arena-navigate', 'cube-single-play', 'cube-double-play',
    'scene-play', 'puzzle-3x3-play', 'puzzle-4x4-play',
)
TABLE3_PIXEL = (  # Flat agents only, 4 seeds, PIXEL scale and PIXEL_CONFIG; the goals stay oracle vectors.
    'visual-antmaze-medium-navigate', 'visual-antmaze-large-navigate', 'visual-antmaze-giant-navigate',
    'visual-cube-single-play', 'visual-cube-double-play', 'visual-scene-play', 'visual-puzzle-3x3-play',
)
TABLE3_HIERARCHICAL = (  # HGCBC / flow HGCBC / HCFGRL rows (state-based only).
    'antmaze-medium-navigate', 'antmaze-large-navigate', 'antmaze-giant-navigate',
    'humanoidmaze-large-navigate', 'cube-double-play',
)
TABLE3_SEEDS, TABLE3_PIXEL_SEEDS = 8, 4
TABLE3_CFGRL_W = 3  # The Table 3 CFGRL column uses w = 3 for every task.

TABLE2 = (  # Single-task offline RL (`-singletask`, OGBench's default task), 4 seeds.
    'pointmaze-large-navigate', 'pointmaze-teleport-navigate', 'antmaze-large-navigate',
    'antmaze-teleport-navigate', 'humanoidmaze-large-navigate', 'antsoccer-arena-navigate', 'cube-single-play',
    'scene-play', 'puzzle-3x3-play',
)
TABLE2_SEEDS = 4
TABLE2_GUIDANCE = (1, 1.25, 1.5, 2, 3)  # CFGRL (IQL) sweep; all evaluated from the same run.
TABLE2_AWR_ALPHAS = (1, 3, 10, 30)  # AWR's 1/β sweep; one run each.

# Tables 2 and 3 flat baselines: registry agent + config overrides.
FLAT_VARIANTS = {
    'bc': ('gcbc', {'use_goals': False}),
    'flow_bc': ('gcfbc', {'use_goals': False}),
    'gcbc': ('gcbc', {}),
    'gcfbc': ('gcfbc', {}),
    'cfgrl': ('cfgrl', {}),
}
HIERARCHICAL_VARIANTS = {
    'hgcbc': ('hgcbc', {}),
    'flow_hgcbc': ('hcfgrl', {'p_uncond': 0.0}),
    'hcfgrl': ('hcfgrl', {}),
}


# Reduced scale for 2 CPU cores; RESULTS.md explains each choice.
REDUCED_SEEDS = 3
REDUCED = dict(train_steps=100_000, batch_size=256, eval_interval=100_000, eval_episodes=10)
REDUCED_OVERRIDES = {'cube-single-play': dict(train_steps=500_000, eval_episodes=20)}
REDUCED_VALUE = dict(train_steps=100_000, batch_size=128, eval_interval=50_000, eval_episodes=20)
REDUCED_NET = {'actor_hidden_dims': (256, 256, 256)}
REDUCED_VALUE_NET = {'actor_hidden_dims': (256, 256), 'value_hidden_dims': (256, 256)}
REDUCED_GC = ('pointmaze-large-navigate', 'pointmaze-giant-navigate', 'cube-single-play')  # CFGRL, w > 1 vs w = 1.
REDUCED_HIERARCHICAL = ('pointmaze-large-navigate',)  # HCFGRL at w > 1 vs its w = 1 (flow HGCBC).
REDUCED_SINGLETASK = ('pointmaze-large-navigate', 'pointmaze-teleport-navigate')  # CFGRL (IQL) vs AWR.
REDUCED_AWR_ALPHAS = {'pointmaze-large-navigate': (3, 10), 'pointmaze-teleport-navigate': (3,)}
REDUCED_GUIDANCE = (0, 1, 1.5, 2, 3)
# Antmaze on data regenerated with the shipped ant expert (datasets/ogbench_gen/experts/): HCFGRL on medium and
# large, flat CFGRL on medium (oraclerep goals), CFGRL (IQL) vs AWR on single-task large. 20k steps is what 2 cores
# fit beside the ExORL cells; 20 episodes per task as OGBench's protocol asks.
REDUCED_ANTMAZE = dict(train_steps=20_000, batch_size=256, eval_interval=20_000, eval_episodes=20)
REDUCED_ANTMAZE_NET = {'actor_hidden_dims': (256, 256, 256)}
REDUCED_ANTMAZE_VALUE_NET = {'actor_hidden_dims': (256, 256, 256), 'value_hidden_dims': (256, 256, 256)}
REDUCED_ANTMAZE_HIERARCHICAL = ('antmaze-medium-navigate', 'antmaze-large-navigate')
REDUCED_ANTMAZE_GC = ('antmaze-medium-navigate',)
REDUCED_ANTMAZE_SINGLETASK = ('antmaze-large-navigate',)
REDUCED_ANTMAZE_DATA = 'runs/ogbench_data'  # --dataset_dir of the antmaze cells (generated data).


# CFGRL beside separately trained baselines at the paper's step count (scripts/baselines_long.sh): same data, seeds
# and evaluation for every agent of a cell; 3 × 256 networks at both levels, batch 256, 3 seeds stacked, evaluated
# every 100k steps (20 episodes per task), checkpointed every 50k so a run can stop and `--resume`. The paper's
# networks (4 × 512, batch 1024) are out of reach of 2 CPU cores; its 1M steps are not.
LONG_POINTMAZE = dict(train_steps=1_000_000, batch_size=256, eval_interval=100_000, save_interval=50_000,
                      eval_episodes=20)
LONG_ANTMAZE = dict(LONG_POINTMAZE, train_steps=300_000)  # At least 300k; resume with --train_steps for more.
LONG_NET = {'actor_hidden_dims': (256, 256, 256)}
LONG_POINTMAZE_AGENTS = ('gcbc', 'gcfbc', 'cfgrl')  # Gaussian GCBC, flow GCBC (no dropout), CFGRL.
LONG_ANTMAZE_AGENTS = ('hgcbc', 'flow_hgcbc', 'hcfgrl')  # Keys of HIERARCHICAL_VARIANTS.
LONG_POINTMAZE_GUIDANCE = (0, 1, 1.5, 2, 3)
LONG_ANTMAZE_GUIDANCE = (1, 1.5, 2, 3)
LONG_DATA = 'runs/ogbench_data'  # --dataset_dir of these cells (generated data).


def dataset_name(task: str, kind: str) -> str:
    """'cube-single-play' -> 'cube-single-play-oraclerep-v0' (kind='oraclerep') or '...-singletask-v0'."""
    return f'{task}-{kind}-v0'


# Table 1: ExORL (DeepMind Control, RND exploration data relabelled per task), CFGRL vs AWR, 4 seeds, episode
# return. The authors' ExORL settings are the agents' own (configs/cfgrl_exorl.py; configs/exorl.py for AWR on
# exorl-* envs); 1M steps, batch 1024, evaluated every 50K steps with 10 episodes per w (code).
TABLE1 = ('walker-stand', 'walker-walk', 'walker-run', 'quadruped-walk', 'quadruped-run', 'cheetah-run',
          'cheetah-run-backward', 'jaco-reach-top-right', 'jaco-reach-top-left')
TABLE1_SEEDS = 4
TABLE1_GUIDANCE = (1, 1.5, 3, 5, 10, 30, 100)
TABLE1_AWR_ALPHAS = (1, 3, 10, 30)
EXORL = dict(train_steps=1_000_000, batch_size=1024, eval_interval=50_000, eval_episodes=10)
# Reduced ExORL on data collected here (datasets/exorl_gen/collect.py, URLB's RND agent at width 256; OUR data, not
# ExORL's): all nine Table 1 tasks, 3 × 256 networks, batch 256, 10k steps, 3 seeds stacked in one process, AWR at
# its default 1/β.
REDUCED_TABLE1 = TABLE1
REDUCED_EXORL = dict(train_steps=10_000, batch_size=256, eval_interval=10_000, eval_episodes=10)
REDUCED_EXORL_NET = {'actor_hidden_dims': (256, 256, 256), 'value_hidden_dims': (256, 256, 256)}
REDUCED_EXORL_DATA = 'runs/exorl_data'  # --dataset_dir of the reduced cells (the collector's output).
REDUCED_EXORL_STEPS = 200_000  # Collected steps per domain (ExORL: 10M).


def exorl_env(task: str) -> str:
    """'walker-stand' -> 'exorl-walker-stand'."""
    return f'exorl-{task}'
