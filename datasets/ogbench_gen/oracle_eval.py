"""How well the oracle behind a regenerated dataset solves OGBench's 5 evaluation tasks (recipe validation).

    python -m datasets.ogbench_gen.validate <name> --eval_oracle_episodes=N   (or evaluate_oracle() from Python)

The oracles that generated the data (`generate.run_*_episode`) run on the evaluation tasks, scored as agents are:
reset(options=dict(task_id=k, render_goal=False)), score = the final info['success']. Mazes use the BFS oracle,
noise-free by default. Manipulation oracles read a privileged target that only data-collection mode reports, so a
scheduler supplies it: cube tasks (one cube at a time, bottom-up, parking a blocking cube) and puzzle tasks (the
lights-out press set, solved over GF(2)). Scene tasks have no scheduler: skipped.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from datasets.ogbench_gen.generate import run_manipulation_episode, run_maze_episode
from datasets.ogbench_gen.recipes import (
    MazeRecipe,
    Recipe,
    get_recipe,
    make_env,
    make_manipulation_oracles,
    make_maze_oracle,
    sized,
)
from datasets.seeding import episode_rngs, legacy_global_seed

NUM_EVAL_TASKS = 5  # OGBench evaluates every environment on task_id 1..5.
CUBE_DONE_TOL = 0.02  # The scheduler counts a cube as placed well inside the env's own 0.04 success radius.
CUBE_SIZE = 0.04  # Cube edge: a stacked cube sits this much higher, and covers this much of the table.
STACK_XY_TOL = 0.02  # Two cubes are stacked when their centres are this close in x-y (the env's own test).
TABLE_Z = 0.02  # Height of a cube centre resting on the table.
PARKING_GRID = 9  # Candidate parking spots per axis over the env's target sampling bounds.


class _TaskScheduler:
    """Hands an oracle one sub-target of an evaluation task at a time, as data-collection mode would have.

    Subclasses choose the next sub-target (`_choose`, None when the task is solved) and describe it to the oracle
    in the privileged info keys it reads (`augment`).
    """

    def __init__(self, env):
        self._env = env.unwrapped
        self._target = None

    def _choose(self):
        raise NotImplementedError

    def augment(self, info: dict) -> dict:
        raise NotImplementedError

    def next_target(self) -> Tuple[np.ndarray, dict] | None:
        """Moves to the next sub-target; returns the (observation, info) to re-plan from, or None when done."""
        target = self._choose()
        if target is None:
            return None
        self._target = target
        return self._env.compute_observation(), self._env.compute_ob_info()


class CubeTaskScheduler(_TaskScheduler):
    """Feeds a cube oracle the evaluation task one cube at a time, as data-collection mode would have.

    Picks a cube that is not yet at its goal, has nothing on top of it, and whose goal spot is free and supported
    (on the table, or on a cube already in place); lowest goal first, so stacks are built bottom-up. If no cube
    qualifies, a top cube sitting where it blocks is parked on the free table spot farthest from every cube and goal.
    """

    def _positions(self) -> Tuple[np.ndarray, np.ndarray]:
        env = self._env
        n = env._num_cubes
        pos = np.array([env._data.joint(f'object_joint_{i}').qpos[:3] for i in range(n)])
        goals = np.array([env._data.mocap_pos[env._cube_target_mocap_ids[i]] for i in range(n)])
        return pos, goals

    def _choose(self) -> Tuple[int, np.ndarray] | None:
        pos, goals = self._positions()
        n = len(pos)
        done = np.linalg.norm(pos - goals, axis=1) <= CUBE_DONE_TOL
        if done.all():
            return None

        def covered(i: int) -> bool:  # Another cube rests on cube i.
            return any(j != i and pos[j, 2] > pos[i, 2] and np.linalg.norm(pos[j, :2] - pos[i, :2]) < STACK_XY_TOL
                       for j in range(n))

        def occupant(spot: np.ndarray, mover: int) -> int | None:  # A cube (≠ mover) in the way of a spot.
            for j in range(n):
                if j != mover and np.linalg.norm(pos[j, :2] - spot[:2]) < CUBE_SIZE and pos[j, 2] >= spot[2] - 0.01:
                    return j
            return None

        def supported(i: int) -> bool:
            if goals[i, 2] <= TABLE_Z + 0.01:
                return True
            below = goals[i] - np.array([0.0, 0.0, CUBE_SIZE])
            return any(done[j] and np.linalg.norm(goals[j] - below) < STACK_XY_TOL for j in range(n))

        ready = [i for i in range(n) if not done[i] and not covered(i) and supported(i)
                 and occupant(goals[i], i) is None]
        if ready:
            i = min(ready, key=lambda k: (goals[k, 2], k))
            return i, goals[i]
        # Deadlock: park a top cube that occupies a pending goal or covers a pending cube.
        blockers = {occupant(goals[i], i) for i in range(n) if not done[i]} - {None}
        blockers |= {j for i in range(n) if not done[i] and covered(i) for j in range(n)
                     if j != i and pos[j, 2] > pos[i, 2] and np.linalg.norm(pos[j, :2] - pos[i, :2]) < STACK_XY_TOL}
        movable = [j for j in sorted(blockers) if not covered(j)]
        if not movable:
            return None
        lo, hi = self._env._target_sampling_bounds
        grid = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], PARKING_GRID), np.linspace(lo[1], hi[1], PARKING_GRID)),
                        -1).reshape(-1, 2)
        taken = np.concatenate([pos[:, :2], goals[:, :2]])
        spot = grid[np.argmax(np.linalg.norm(grid[:, None] - taken[None], axis=-1).min(axis=1))]
        return movable[0], np.array([spot[0], spot[1], TABLE_Z])

    def augment(self, info: dict) -> dict:
        if self._target is None:
            self._target = self._choose() or (0, self._positions()[1][0])
        block, goal = self._target
        return {**info, 'privileged/target_task': 'cube', 'privileged/target_block': block,
                'privileged/target_block_pos': np.array(goal), 'privileged/target_block_yaw': np.zeros(1)}


def lights_out_presses(states: np.ndarray, goal: np.ndarray, rows: int, cols: int) -> List[int]:
    """The buttons to press once each (a press toggles a button and its 4 neighbours) to turn states into goal.

    Gaussian elimination over GF(2); free variables are set to 0. Raises ValueError if the goal is unreachable.
    """
    n = rows * cols
    effect = np.zeros((n, n), np.uint8)  # effect[b, p] = 1 if pressing p toggles b.
    for p in range(n):
        r, c = divmod(p, cols)
        for dr, dc in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
            if 0 <= r + dr < rows and 0 <= c + dc < cols:
                effect[(r + dr) * cols + c + dc, p] = 1
    aug = np.concatenate([effect, ((goal - states) % 2).astype(np.uint8)[:, None]], axis=1)
    pivots, row = [], 0
    for col in range(n):
        hit = np.flatnonzero(aug[row:, col])
        if len(hit) == 0:
            continue
        aug[[row, row + hit[0]]] = aug[[row + hit[0], row]]
        for other in np.flatnonzero(aug[:, col]):
            if other != row:
                aug[other] ^= aug[row]
        pivots.append(col)
        row += 1
        if row == n:
            break
    if aug[row:, n].any():
        raise ValueError('the puzzle goal is unreachable from this state')
    return [col for r, col in enumerate(pivots) if aug[r, n]]


class PuzzleTaskScheduler(_TaskScheduler):
    """Feeds the button oracle the evaluation task one press at a time: the first button of the current lights-out
    solution, re-solved after every press so that a missed or an extra press is corrected. Its target is
    (button, that button's state once pressed)."""

    def _choose(self) -> Tuple[int, int] | None:
        env = self._env
        presses = lights_out_presses(env._cur_button_states, env._target_button_states, env._num_rows,
                                     env._num_cols)
        if not presses:
            return None
        return presses[0], int((env._cur_button_states[presses[0]] + 1) % env._num_button_states)

    def augment(self, info: dict) -> dict:
        if self._target is None:
            self._target = self._choose() or (0, int(self._env._cur_button_states[0]))
        (button, state), env = self._target, self._env
        return {**info, 'privileged/target_task': 'button', 'privileged/target_button': button,
                'privileged/target_button_state': state,
                'privileged/target_button_top_pos': env._data.site_xpos[env._button_site_ids[button]].copy()}


def evaluate_oracle(name: str, episodes_per_task: int, seed: int = 0, noise: float = 0.0,
                    expert_path: str | None = None) -> Dict[str, float]:
    """Success rate of the dataset's oracle on each evaluation task, {'task1': ..., ..., 'overall': ...}.

    noise applies to mazes only (std of the Gaussian added to the oracle's action). Ant mazes drive the shipped
    expert, or the one at expert_path. Raises NotImplementedError for scene, whose evaluation tasks need a
    scheduler for locks, drawer and window that is not written.
    """
    recipe = sized(get_recipe(name), expert_path=expert_path)
    if recipe.family == 'manipulation' and recipe.env_family == 'scene':
        raise NotImplementedError('scene: no scheduler drives the oracles through the evaluation tasks (locks, '
                                  'drawer, window and cube in sequence); oracle evaluation is skipped')
    env = make_env(recipe.env_id)  # Evaluation configuration: terminates at the goal, registered time limit.
    results: Dict[str, float] = {}
    for task_id in range(1, NUM_EVAL_TASKS + 1):
        successes = []
        for episode in range(episodes_per_task):
            rngs = episode_rngs(seed, task_id * episodes_per_task + episode)
            with legacy_global_seed(rngs.legacy_seed):
                env.unwrapped.action_space.seed(rngs.env_seed)
                ob, info = env.reset(seed=rngs.env_seed, options=dict(task_id=task_id, render_goal=False))
                successes.append(_oracle_episode(recipe, env, ob, info, rngs.policy, noise))
        results[f'task{task_id}'] = float(np.mean(successes))
    env.close()
    results['overall'] = float(np.mean([results[f'task{k}'] for k in range(1, NUM_EVAL_TASKS + 1)]))
    return results


def _oracle_episode(recipe: Recipe, env, ob, info, rng: np.random.Generator, noise: float) -> float:
    if isinstance(recipe, MazeRecipe):
        return run_maze_episode(env, make_maze_oracle(env, recipe), ob, rng, noise)
    scheduler = (CubeTaskScheduler if recipe.env_family == 'cube' else PuzzleTaskScheduler)(env)
    return run_manipulation_episode(env, make_manipulation_oracles(env, recipe), ob, info, rng,
                                    next_target=scheduler.next_target, augment_info=scheduler.augment)
