"""The nine ExORL evaluation tasks (the paper's Table 1) on DeepMind Control, named `exorl-<domain>-<task>`.

What each task is, as the Unsupervised RL Benchmark (URLB) and ExORL build them:
- walker stand/walk/run, cheetah run, quadruped walk/run: dm_control's own suite tasks. URLB and ExORL load a task
  from the suite whenever the suite has it, so their quadruped walk/run use the suite's quadruped model (URLB's
  custom quadruped file only adds tasks the suite lacks, and its model is the suite's).
- cheetah run-backward: the suite's cheetah rewarded for speed in −x, tolerance(−v, bounds=(10, ∞), margin 10,
  linear); URLB widens the floor (plane size 200 instead of 100) so that the cheetah can run backwards on it.
- jaco reach-top-left / reach-top-right: ExORL's reach (the one its data is labelled and evaluated with, and the
  authors' code uses): dm_control's manipulation reach with the Kinova Jaco arm and hand and PERFECT_FEATURES
  observations, its target a site fixed at (∓0.09, 0.09) on the table rather than URLB's Duplo brick, the tool
  centre point starting in the site workspace's box, and no target position in the observation; reward
  tolerance(‖tool centre point − target‖, bounds=(0, 0.05), margin 0.05) against the task's fixed point. The
  point is not part of the physics state, so a state collected under either task relabels to both.
Action repeat is 1 (URLB's states setting) and the episode is the task's own time limit: 1000 steps for the
locomotion tasks, 250 for jaco (10 s at 0.04 s). Actions are in [−1, 1] and scaled to the task's action bounds
(URLB's action_scale wrapper); observations are the flattened float32 state features.

`ExorlEnv` wraps one task in the small gymnasium-style interface the evaluation uses (evaluation/envs.py): reset
with a seed, step, and an info dict whose `episode_return` is the return so far. `task_reward(env, state)` is the
task's reward of a MuJoCo physics state, as ExORL relabels its data.
"""
import os
import re
from typing import Dict, Tuple

import numpy as np

from datasets.names import EXORL_PREFIX, is_exorl

TASKS = ('walker-stand', 'walker-walk', 'walker-run', 'cheetah-run', 'cheetah-run-backward', 'quadruped-walk',
         'quadruped-run', 'jaco-reach-top-left', 'jaco-reach-top-right')
DOMAINS = ('walker', 'cheetah', 'quadruped', 'jaco')
JACO_TARGETS = {'reach-top-left': (-0.09, 0.09), 'reach-top-right': (0.09, 0.09)}  # Target (x, y) on the table.
_RUN_SPEED = 10.0  # Cheetah speed above which run (backward) pays 1, as the suite's run.
_JACO_TIME_LIMIT = 10.0  # Seconds (URLB's jaco): 250 steps of 0.04 s.


def parse_env_name(env_name: str) -> Tuple[str, str]:
    """'exorl-cheetah-run-backward' -> ('cheetah', 'run-backward'); a clear error naming the tasks otherwise."""
    name = env_name[len(EXORL_PREFIX):] if is_exorl(env_name) else env_name
    if name not in TASKS:
        raise ValueError(f'Unknown ExORL task {env_name!r}; valid names: '
                         f'{", ".join(EXORL_PREFIX + t for t in TASKS)}.')
    domain, task = name.split('-', 1)
    return domain, task


def _cheetah_run_backward(seed: int):
    from dm_control.rl import control
    from dm_control.suite import cheetah

    class RunBackward(cheetah.Cheetah):
        def get_reward(self, physics):
            from dm_control.utils import rewards

            return rewards.tolerance(-physics.speed(), bounds=(_RUN_SPEED, float('inf')), margin=_RUN_SPEED,
                                     value_at_margin=0, sigmoid='linear')

    xml, assets = cheetah.get_model_and_assets()
    # URLB's floor is twice as long, centred where the suite's is (its only change to the model).
    xml = re.sub(rb'(<geom name="ground"[^>]*size=")100 ', rb'\g<1>200 ', xml)
    physics = cheetah.Physics.from_xml_string(xml, assets)
    return control.Environment(physics, RunBackward(random=seed), time_limit=cheetah._DEFAULT_TIME_LIMIT,
                               flat_observation=True)


def _jaco_reach(task: str, seed: int):
    from dm_control import composer
    from dm_control.manipulation import reach
    from dm_control.manipulation.shared import arenas, constants, robots
    from dm_control.utils import rewards

    x, y = JACO_TARGETS[task]
    target = np.array([x, y, reach._PROP_Z_OFFSET])

    class FixedSiteReach(reach.Reach):
        """ExORL's reach: the target site sits at the task's point, and the reward measures the distance to that
        point itself, so it depends on the hand's state alone."""

        def __init__(self, **kwargs):
            super().__init__(prop=None, workspace=reach._SITE_WORKSPACE, **kwargs)
            del self._task_observables['target_position']  # Fixed per task, so ExORL leaves it out.

        def get_reward(self, physics):
            distance = np.linalg.norm(physics.bind(self._hand.tool_center_point).xpos - target)
            return rewards.tolerance(distance, bounds=(0, reach._TARGET_RADIUS), margin=reach._TARGET_RADIUS)

        def initialize_episode(self, physics, random_state):
            self._hand.set_grasp(physics, close_factors=random_state.uniform())
            self._tcp_initializer(physics, random_state)
            physics.bind(self._target).pos = target  # Drawn from nothing: the same random stream as ExORL's.

    settings = reach.observations.PERFECT_FEATURES
    env_task = FixedSiteReach(arena=arenas.Standard(), arm=robots.make_arm(obs_settings=settings),
                              hand=robots.make_hand(obs_settings=settings), obs_settings=settings,
                              control_timestep=constants.CONTROL_TIMESTEP)
    return composer.Environment(env_task, time_limit=_JACO_TIME_LIMIT, random_state=seed)


def _patch_dm_control_for_mujoco() -> None:
    """Lets dm_control 1.0.50 index the pinned MuJoCo (4.0). dm_control's table of MuJoCo's array fields names a
    few flex-vertex arrays this MuJoCo build does not have, and building any Physics fails on the first of them;
    dropping the absent names from the table is all it takes (no task here has flex bodies)."""
    import mujoco
    from dm_control.mujoco.wrapper.mjbindings import sizes

    model = mujoco.MjModel.from_xml_string('<mujoco/>')
    for struct, obj in (('mjmodel', model), ('mjdata', mujoco.MjData(model))):
        for name in [k for k in sizes.array_sizes[struct] if not hasattr(obj, k)]:
            del sizes.array_sizes[struct][name]


def make_dm_env(env_name: str, seed: int = 0):
    """The dm_control environment of an `exorl-*` task (dm_env interface), seeded."""
    domain, task = parse_env_name(env_name)
    os.environ.setdefault('MUJOCO_GL', 'egl')
    _patch_dm_control_for_mujoco()
    if domain == 'jaco':
        return _jaco_reach(task, seed)
    if (domain, task) == ('cheetah', 'run-backward'):
        return _cheetah_run_backward(seed)
    from dm_control import suite

    return suite.load(domain, task, task_kwargs={'random': seed}, environment_kwargs={'flat_observation': True})


def flat_observation(observation: Dict[str, np.ndarray]) -> np.ndarray:
    """The state features of a time step as one float32 vector (in the environment's key order)."""
    return np.concatenate([np.asarray(v, np.float64).ravel() for v in observation.values()]).astype(np.float32)


def task_reward(dm_env, state: np.ndarray) -> float:
    """The task's reward at physics state `state` (qpos, qvel, act): set it, recompute derived quantities, ask the
    task. DMC rewards depend on the state reached, r(s, a, s') = r(s'), so this relabels any transition."""
    physics = dm_env.physics
    with physics.reset_context():
        physics.set_state(state)
    return float(dm_env.task.get_reward(physics))


class _Box:
    """The part of gymnasium's Box the evaluation uses: shape, bounds and a seedable sampler."""

    def __init__(self, dim: int):
        self.shape, self.low, self.high = (dim,), -np.ones(dim, np.float32), np.ones(dim, np.float32)
        self._rng = np.random.default_rng()

    def seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def sample(self) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, self.shape).astype(np.float32)


class ExorlEnv:
    """One `exorl-*` task behind the reset/step interface of the evaluation (evaluation/envs.py).

    `reset(seed=...)` re-seeds the task's initial-state distribution; `step(a)` takes an action in [−1, 1]^d and
    returns (obs, reward, terminated=False, truncated at the time limit, info) where info['episode_return'] is the
    return so far. There is no goal: info['goal'] is an empty vector. The single task has id 1.
    """

    cur_task_id = 1

    def __init__(self, env_name: str, max_episode_steps: int | None = None):
        self.env_name, self.max_episode_steps = env_name, max_episode_steps
        self._env = make_dm_env(env_name, seed=0)
        spec = self._env.action_spec()
        self._low, self._high = np.asarray(spec.minimum, np.float64), np.asarray(spec.maximum, np.float64)
        self.action_space = _Box(int(np.prod(spec.shape)))
        self._steps, self._return = 0, 0.0

    @property
    def unwrapped(self) -> 'ExorlEnv':
        return self

    @property
    def dm_env(self):
        return self._env

    def reset(self, seed: int | None = None, options=None) -> Tuple[np.ndarray, Dict]:
        del options  # One task; no goal to render.
        if seed is not None and self._reseed(int(seed)) is None:
            self._env = make_dm_env(self.env_name, seed=int(seed))
        self._steps, self._return = 0, 0.0
        time_step = self._env.reset()
        return flat_observation(time_step.observation), {'goal': np.zeros(0, np.float32), 'episode_return': 0.0}

    def _reseed(self, seed: int):
        """Re-seeds the environment's random state in place where it has one we can replace (suite tasks and
        composer environments); returns None where the environment must be rebuilt instead."""
        task = self._env.task
        if hasattr(task, '_random'):  # Suite tasks draw initial states from task.random.
            task._random = np.random.RandomState(seed)
            return True
        if hasattr(self._env, '_random_state'):  # Composer environments.
            self._env._random_state.seed(seed)
            return True
        return None

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        time_step = self._env.step(self._low + (action + 1.0) * 0.5 * (self._high - self._low))
        reward = float(time_step.reward or 0.0)
        self._steps += 1
        self._return += reward
        truncated = time_step.last() or (self.max_episode_steps is not None and self._steps >= self.max_episode_steps)
        info = {'episode_return': self._return, 'success': 0.0}
        return flat_observation(time_step.observation), reward, False, bool(truncated), info

    def render(self, height: int = 200, width: int = 200) -> np.ndarray:
        return self._env.physics.render(height=height, width=width, camera_id=0)

    def close(self) -> None:
        self._env = None
