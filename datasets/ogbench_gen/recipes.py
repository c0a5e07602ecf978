"""The published OGBench data-collection recipes, as tables, plus the scripted oracles that follow them.

The authors' generation scripts are not in the pip package, but the environments and the scripted oracles are
(docs/datasets.md). This module holds every number of the recipes in one table per family and the oracle *policies*
(how an action is chosen); `generate` runs them to write datasets and `validate` runs the very same policies on
OGBench's evaluation tasks, so what is validated is what generated the data.

Nothing here touches the global `np.random` state itself; ogbench's environments and oracles do, and
`datasets.ogbench_gen.generate.episode_rngs` seeds it per episode (see there for why).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from collections import deque
from typing import Any, Dict, Tuple

# ogbench imports MuJoCo, whose default GLFW backend warns on every import on a headless machine; EGL is the
# working headless backend (docs/datasets.md). setdefault keeps whatever the user chose.
os.environ.setdefault('MUJOCO_GL', 'egl')

import numpy as np

from datasets.files import UnknownDatasetError  # noqa: F401  (part of this API)
from datasets.names import base_dataset_name  # noqa: F401  (part of this API)
from datasets.ogbench_gen import expert

Cell = Tuple[int, int]

# --------------------------------------------------------------------------------------------------------------------
# Maze recipes (docs/datasets.md).
# --------------------------------------------------------------------------------------------------------------------
MAZE_ACTION_NOISE = 0.5  # Std of the Gaussian added to the point oracle's unit-vector action.
STITCH_GOAL_BFS_STEPS = 4  # stitch: the goal is a cell exactly this many BFS steps from the start cell.
POINT_MAX_STEP = 0.2 * np.sqrt(2.0)  # PointEnv adds 0.2·action to x-y; |action| ≤ 1 per axis after clipping.

# (maze, dataset type) → (train episodes, steps per episode).
MAZE_SIZES: Dict[Tuple[str, str], Tuple[int, int]] = {
    ('medium', 'navigate'): (1000, 1001),
    ('large', 'navigate'): (1000, 1001),
    ('teleport', 'navigate'): (1000, 1001),
    ('giant', 'navigate'): (500, 2001),
    ('medium', 'stitch'): (5000, 201),
    ('large', 'stitch'): (5000, 201),
    ('giant', 'stitch'): (5000, 201),
    ('teleport', 'stitch'): (5000, 201),
}

# Ant mazes: the ant expert (expert.py) walks toward the next BFS waypoint; noise is added to its action.
ANT_ACTION_NOISE = 0.2  # navigate and stitch.
ANT_EXPLORE_ACTION_NOISE = 1.0  # explore: heavy noise...
EXPLORE_DIRECTION_INTERVAL = 10  # ...and a fresh uniformly random direction every this many steps, ignoring the maze.
ANT_MAZE_SIZES: Dict[Tuple[str, str], Tuple[int, int]] = {
    **MAZE_SIZES,
    ('medium', 'explore'): (10000, 501),
    ('large', 'explore'): (10000, 501),
    ('teleport', 'explore'): (10000, 501),
}

# --------------------------------------------------------------------------------------------------------------------
# Manipulation recipes (docs/datasets.md).
# --------------------------------------------------------------------------------------------------------------------
MANIP_EPISODE_LENGTH = 1001
# env (without -v0) → train episodes.
MANIP_EPISODES: Dict[str, int] = {
    'cube-single': 1000,
    'cube-double': 1000,
    'cube-triple': 3000,
    'cube-quadruple': 5000,
    'scene': 1000,
    'puzzle-3x3': 1000,
    'puzzle-4x4': 1000,
    'puzzle-4x5': 3000,
    'puzzle-4x6': 5000,
}
# env → (low, high) of the per-episode uniform draw of p_stack, the probability that a new cube target is on top
# of another cube. Scene and puzzle use the fixed 0.5 (puzzle ignores it).
P_STACK_RANGE: Dict[str, Tuple[float, float]] = {
    'cube-single': (0.0, 0.0),
    'cube-double': (0.0, 0.25),
    'cube-triple': (0.05, 0.35),
    'cube-quadruple': (0.1, 0.5),
    'scene': (0.5, 0.5),
    'puzzle-3x3': (0.5, 0.5),
    'puzzle-4x4': (0.5, 0.5),
    'puzzle-4x5': (0.5, 0.5),
    'puzzle-4x6': (0.5, 0.5),
}
PLAN_NOISE = 0.1  # play: PlanOracle's temporally correlated plan noise...
PLAN_NOISE_SMOOTHING = 0.5  # ...and its Gaussian smoothing (in plan steps).
MARKOV_MIN_NORM = 0.4  # noisy: MarkovOracle's minimum norm of the position error it acts on.
NOISY_MAX_ACTION_NOISE = 0.1  # noisy: per-episode noise level x ~ U(0, this)...
NOISY_NOISE_DIM_SCALE = (1.0, 1.0, 1.0, 3.0, 10.0)  # ...and the action noise std per dim is x · this (x,y,z,yaw,grip).
# (env family, dataset type) → probability that a step's action is uniform random instead of the oracle's.
P_RANDOM_ACTION: Dict[Tuple[str, str], float] = {
    ('cube', 'play'): 0.0,
    ('scene', 'play'): 0.0,
    ('puzzle', 'play'): 0.0,
    ('cube', 'noisy'): 0.1,
    ('scene', 'noisy'): 0.1,
    ('puzzle', 'noisy'): 0.2,
}
# Scene health check: an episode is redone when its cube leaves the visible table (goal images would be ambiguous).
SCENE_MAX_BLOCK_Y = 0.29  # y ≥ this: off the right edge.
SCENE_MIN_BLOCK_Y = -0.3  # y ≤ this is only allowed inside the drawer, i.e. at a height in DRAWER_Z_RANGE.
SCENE_DRAWER_Z_RANGE = (0.06, 0.08)
QPOS_OBJECTS_START = 14  # qpos index of the first object joint (after the 6 arm and 8 gripper joints).
QPOS_CUBE_SIZE = 7  # A cube's free joint: xyz + quaternion.

# --------------------------------------------------------------------------------------------------------------------
# Names.
# --------------------------------------------------------------------------------------------------------------------
# Datasets whose recipe needs a trained expert policy that only the authors' server has.
EXPERT_ONLY_PREFIXES = ('humanoidmaze-', 'antsoccer-', 'visual-')


@dataclasses.dataclass(frozen=True)
class MazeRecipe:
    """How one maze dataset is collected: an oracle that walks the BFS path to a goal cell, with Gaussian noise.

    Point mazes move along the unit direction to the next waypoint; ant mazes feed that direction to the ant expert
    stored at `expert_path`, whose action is then noised.
    """

    name: str
    env_id: str
    dataset_type: str  # 'navigate' (re-goal on success), 'stitch' (one short goal, 4 cells away) or 'explore'
    num_episodes: int
    episode_length: int
    action_noise: float = MAZE_ACTION_NOISE
    expert_path: str | None = None  # The walking expert of ant mazes (None: the point moves along the direction).
    direction_interval: int | None = None  # explore: steps between random directions (None: follow the maze).

    family = 'maze'


@dataclasses.dataclass(frozen=True)
class ManipulationRecipe:
    """How one manipulation dataset is collected: scripted oracles acting on random targets, then a new target."""

    name: str
    env_id: str
    dataset_type: str  # 'play' (plan oracles) or 'noisy' (Markov oracles + action noise)
    num_episodes: int
    episode_length: int
    p_stack_range: Tuple[float, float]
    p_random_action: float

    family = 'manipulation'

    @property
    def env_family(self) -> str:
        return self.env_id.split('-')[0]  # 'cube', 'scene' or 'puzzle'


Recipe = MazeRecipe | ManipulationRecipe


def _build_recipes() -> Dict[str, Recipe]:
    recipes: Dict[str, Recipe] = {}
    for (maze, dataset_type), (episodes, length) in MAZE_SIZES.items():
        name = f'pointmaze-{maze}-{dataset_type}-v0'
        recipes[name] = MazeRecipe(name, f'pointmaze-{maze}-v0', dataset_type, episodes, length)
    for (maze, dataset_type), (episodes, length) in ANT_MAZE_SIZES.items():
        name = f'antmaze-{maze}-{dataset_type}-v0'
        explore = dataset_type == 'explore'
        recipes[name] = MazeRecipe(name, f'antmaze-{maze}-v0', dataset_type, episodes, length,
                                   ANT_EXPLORE_ACTION_NOISE if explore else ANT_ACTION_NOISE, expert.SHIPPED_ANT,
                                   EXPLORE_DIRECTION_INTERVAL if explore else None)
    for env, episodes in MANIP_EPISODES.items():
        for dataset_type in ('play', 'noisy'):
            name = f'{env}-{dataset_type}-v0'
            family = env.split('-')[0]
            recipes[name] = ManipulationRecipe(name, f'{env}-v0', dataset_type, episodes, MANIP_EPISODE_LENGTH,
                                               P_STACK_RANGE[env], P_RANDOM_ACTION[(family, dataset_type)])
    return recipes


RECIPES: Dict[str, Recipe] = _build_recipes()
REGENERABLE: Tuple[str, ...] = tuple(RECIPES)


def get_recipe(name: str) -> Recipe:
    """The recipe of a dataset (variants allowed); fails at once with what to do for anything else."""
    base = base_dataset_name(name)
    if base in RECIPES:
        return RECIPES[base]
    if base.startswith(EXPERT_ONLY_PREFIXES):
        raise UnknownDatasetError(
            f'{name!r} cannot be regenerated offline: its recipe needs expert policies (SAC agents, or rendering for '
            f'visual-*) that only the authors have. Download it with ogbench.download_datasets([{base!r}]) on a '
            f'machine with internet and copy {base}.npz and {base}-val.npz into the dataset directory (default '
            f'~/.ogbench/data). Regenerable datasets: {", ".join(REGENERABLE)}.')
    raise UnknownDatasetError(
        f'Unknown or non-regenerable dataset {name!r}. Regenerable datasets (the -oraclerep and -singletask[-taskN] '
        f'variants of each use the same files): {", ".join(REGENERABLE)}.')


def sized(recipe: Recipe, num_episodes: int | None = None, episode_length: int | None = None,
          expert_path: str | None = None) -> Recipe:
    """The recipe with its size (tests and quick runs use tiny sizes) or its expert overridden; None keeps the
    published size and the shipped expert."""
    changes: Dict[str, Any] = {}
    if expert_path is not None:
        if getattr(recipe, 'expert_path', None) is None:
            raise ValueError(f'{recipe.name} is collected without an expert policy; --expert_path does not apply')
        changes['expert_path'] = os.path.abspath(expert_path)
    if num_episodes is not None:
        if num_episodes < 1:
            raise ValueError(f'num_episodes must be ≥ 1, got {num_episodes}')
        changes['num_episodes'] = num_episodes
    if episode_length is not None:
        if episode_length < 2:
            raise ValueError(f'episode_length must be ≥ 2 (a transition needs two states), got {episode_length}')
        changes['episode_length'] = episode_length
    return dataclasses.replace(recipe, **changes)


def num_val_episodes(num_episodes: int) -> int:
    """The -val split holds the next num_episodes // 10 episodes, at least one so that the file is never empty."""
    return max(1, num_episodes // 10)


def make_env(env_id: str, **kwargs):
    """gymnasium.make for an OGBench environment id (importing ogbench registers them)."""
    import gymnasium
    import ogbench  # noqa: F401

    return gymnasium.make(env_id, **kwargs)


def make_collection_env(recipe: Recipe):
    """The environment in data-collection configuration: no termination at the goal, the recipe's episode length."""
    if recipe.family == 'maze':
        return make_env(recipe.env_id, terminate_at_goal=False, max_episode_steps=recipe.episode_length)
    return make_env(recipe.env_id, terminate_at_goal=False, mode='data_collection',
                    max_episode_steps=recipe.episode_length)


# --------------------------------------------------------------------------------------------------------------------
# Maze oracle.
# --------------------------------------------------------------------------------------------------------------------
def free_cells(maze_map: np.ndarray) -> list[Cell]:
    """All free (non-wall) cells, row-major."""
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(maze_map == 0))]


def vertex_cells(maze_map: np.ndarray) -> list[Cell]:
    """Free cells that are not the middle of a straight one-wide corridor: navigate goals are drawn from these."""
    cells = []
    for i, j in free_cells(maze_map):
        vertical_corridor = (maze_map[i - 1, j] == 0 and maze_map[i + 1, j] == 0
                             and maze_map[i, j - 1] == 1 and maze_map[i, j + 1] == 1)
        horizontal_corridor = (maze_map[i, j - 1] == 0 and maze_map[i, j + 1] == 0
                               and maze_map[i - 1, j] == 1 and maze_map[i + 1, j] == 1)
        if not (vertical_corridor or horizontal_corridor):
            cells.append((i, j))
    return cells


def cells_at_bfs_distance(maze_map: np.ndarray, start: Cell, steps: int) -> list[Cell]:
    """Free cells exactly `steps` 4-neighbour moves from `start` (stitch goals), in BFS discovery order."""
    dist = {start: 0}
    queue = deque([start])
    ring = []
    while queue:
        i, j = queue.popleft()
        for di, dj in ((-1, 0), (0, -1), (1, 0), (0, 1)):
            nxt = (i + di, j + dj)
            if (0 <= nxt[0] < maze_map.shape[0] and 0 <= nxt[1] < maze_map.shape[1]
                    and maze_map[nxt] == 0 and nxt not in dist):
                dist[nxt] = dist[(i, j)] + 1
                if dist[nxt] == steps:
                    ring.append(nxt)
                queue.append(nxt)
    return ring


class MazeOracle:
    """OGBench's point-maze oracle: a unit vector toward `env.get_oracle_subgoal(xy, goal)`, the next BFS cell.

    `get_oracle_subgoal` runs a BFS over the whole maze on every call, yet its answer depends only on the (start,
    goal) cells, so it is memoised per cell pair: the same actions, several times faster.
    """

    def __init__(self, env):
        self._maze = env.unwrapped
        self._subgoals: Dict[Tuple[Cell, Cell], np.ndarray] = {}

    def action(self, goal_xy: np.ndarray) -> np.ndarray:
        xy = self._maze.get_xy()
        key = (self._maze.xy_to_ij(xy), self._maze.xy_to_ij(goal_xy))
        if key not in self._subgoals:
            self._subgoals[key], _ = self._maze.get_oracle_subgoal(xy, goal_xy)
        direction = self._subgoals[key] - xy
        return direction / (np.linalg.norm(direction) + 1e-6)


class ExpertMazeOracle:
    """OGBench's ant-maze oracle: the walking expert, fed the ant's state without x-y and a unit direction.

    `action(goal_xy)` heads for the next BFS waypoint (MazeOracle's direction); `walk(direction)` follows any
    direction (explore datasets).
    """

    def __init__(self, env, actor: expert.NumpyActor):
        self._maze = env.unwrapped
        self._directions = MazeOracle(env)
        self._actor = actor

    def walk(self, direction: np.ndarray) -> np.ndarray:
        state = self._maze.get_ob(ob_type='states')
        return self._actor(np.concatenate([state[2:], direction])).astype(np.float64)

    def action(self, goal_xy: np.ndarray) -> np.ndarray:
        return self.walk(self._directions.action(goal_xy))


@functools.lru_cache(maxsize=4)
def _cached_expert(path: str) -> expert.NumpyActor:
    return expert.load_expert(path)


def make_maze_oracle(env, recipe: MazeRecipe) -> MazeOracle | ExpertMazeOracle:
    """The oracle a maze recipe drives: the point's direction, or the ant expert following it."""
    if recipe.expert_path is None:
        return MazeOracle(env)
    return ExpertMazeOracle(env, _cached_expert(recipe.expert_path))


# --------------------------------------------------------------------------------------------------------------------
# Manipulation oracles.
# --------------------------------------------------------------------------------------------------------------------
def make_manipulation_oracles(env, recipe: ManipulationRecipe) -> Dict[str, Any]:
    """OGBench's scripted oracles for the recipe's env, keyed by the `info['privileged/target_task']` they solve.

    play: plan oracles (a noisy keyframe plan, followed open-loop in time); noisy: Markov oracles (closed-loop).
    Puzzle buttons are pressed with the gripper closed (a fingertip press).
    """
    from ogbench.manipspace.oracles.markov.button_markov import ButtonMarkovOracle
    from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
    from ogbench.manipspace.oracles.markov.drawer_markov import DrawerMarkovOracle
    from ogbench.manipspace.oracles.markov.window_markov import WindowMarkovOracle
    from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
    from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
    from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
    from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle

    if recipe.dataset_type == 'play':
        kw = dict(env=env, noise=PLAN_NOISE, noise_smoothing=PLAN_NOISE_SMOOTHING)
        classes = dict(cube=CubePlanOracle, button=ButtonPlanOracle, drawer=DrawerPlanOracle, window=WindowPlanOracle)
    else:
        kw = dict(env=env, min_norm=MARKOV_MIN_NORM)
        classes = dict(cube=CubeMarkovOracle, button=ButtonMarkovOracle, drawer=DrawerMarkovOracle,
                       window=WindowMarkovOracle)
    tasks = dict(cube=('cube',), scene=('cube', 'button', 'drawer', 'window'), puzzle=('button',))[recipe.env_family]
    oracles = {}
    for task in tasks:
        extra = dict(gripper_always_closed=True) if recipe.env_family == 'puzzle' else {}
        oracles[task] = classes[task](**kw, **extra)
    return oracles


def noisy_action_std(recipe: ManipulationRecipe, rng: np.random.Generator) -> np.ndarray | None:
    """Per-episode std of the Gaussian added to a noisy dataset's oracle actions (None for play datasets)."""
    if recipe.dataset_type != 'noisy':
        return None
    return rng.uniform(0.0, NOISY_MAX_ACTION_NOISE) * np.asarray(NOISY_NOISE_DIM_SCALE)


def scene_episode_healthy(qpos: np.ndarray, num_cubes: int) -> bool:
    """Whether every cube stayed visible on the table (or inside the drawer) for the whole episode."""
    for c in range(num_cubes):
        start = QPOS_OBJECTS_START + c * QPOS_CUBE_SIZE
        y, z = qpos[:, start + 1], qpos[:, start + 2]
        in_drawer_height = (z > SCENE_DRAWER_Z_RANGE[0]) & (z < SCENE_DRAWER_Z_RANGE[1])
        if (y >= SCENE_MAX_BLOCK_Y).any() or ((y <= SCENE_MIN_BLOCK_Y) & ~in_drawer_height).any():
            return False
    return True
