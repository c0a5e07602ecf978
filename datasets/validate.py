"""Checks a dataset file pair against what ogbench's loader and the recipe promise, and scores the oracle behind it.

    python -m datasets.validate <name> [--dataset_dir=DIR] [--eval_oracle_episodes=N] [--eval_noise=X]
        [--expert_path=PATH] [--oracle_only]

Checks: the files are complete zips (every CRC); ogbench's own loader reads the plain, -oraclerep and -singletask
variants; keys, dtypes and shapes match the environment; terminals mark episode ends only and every episode has the
same length; actions are finite and in [-1, 1]; each observation agrees with the recorded state (qpos) and moves
continuously inside an episode. A summary table follows (episodes, length, action mean/std, maze coverage).

The oracle check runs the very policies that generated the data (`datasets.generate.run_*_episode`) on OGBench's 5
evaluation tasks, the way agents are scored: reset(options=dict(task_id=k, render_goal=False)), score = the final
info['success']. Mazes: the BFS oracle, noise-free by default (--eval_noise reproduces a dataset's noise: 0.5 for
the point, 0.2 for the ant); in ant mazes it drives the ant expert.
Manipulation: the dataset's oracle without the per-step action noise and random actions of noisy datasets; the
env reports the oracles' privileged target only in data-collection mode, so a small scheduler supplies it — for cube
tasks (one cube at a time, bottom-up, parking a blocking cube if needed) and puzzle tasks (the lights-out press set,
solved over GF(2)). Scene tasks (locks, drawer, window and a cube in sequence) have no scheduler here: skipped.
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np

from datasets.generate import (check_npz_file, dataset_paths, episode_rngs, legacy_global_seed,
                               resolve_dataset_dir, run_manipulation_episode, run_maze_episode)
from datasets.recipes import (POINT_MAX_STEP, MazeRecipe, Recipe, free_cells, get_recipe, make_env,
                              make_manipulation_oracles, make_maze_oracle, sized)

NUM_EVAL_TASKS = 5  # OGBench evaluates every environment on task_id 1..5.
DEFAULT_EVAL_EPISODES = 5  # Oracle episodes per evaluation task in the CLI.
POINT_STEP_TOLERANCE = 0.05  # Extra x-y displacement allowed per step (contact resolution against walls).
# The ant's torso moves under 0.1 per 0.05 s control step when walking fast; anything near this bound is a jump.
ANT_MAX_XY_STEP = 0.5
TELEPORT_TOLERANCE = 1e-4  # A teleported point sits exactly on an outbound teleport.
OBS_STATE_TOLERANCE = 1e-5  # float32 rounding between an observation and the float32 qpos it was computed from.
MAX_ARM_JOINT_STEP = 0.5  # rad per 0.05 s control step: far above what the IK controller produces (≈0.2).
NUM_ARM_JOINTS = 6  # UR5e: observation[:6] are the arm joint angles, qpos[:6] the same joints.
CUBE_DONE_TOL = 0.02  # The scheduler counts a cube as placed well inside the env's own 0.04 success radius.
CUBE_SIZE = 0.04  # Cube edge: a stacked cube sits this much higher, and covers this much of the table.
STACK_XY_TOL = 0.02  # Two cubes are stacked when their centres are this close in x-y (the env's own test).
TABLE_Z = 0.02  # Height of a cube centre resting on the table.
PARKING_GRID = 9  # Candidate parking spots per axis over the env's target sampling bounds.


class DatasetValidationError(ValueError):
    """A dataset breaks one of the promises above; the message lists every problem found."""


# ====================================================================================================================
# Checks on arrays.
# ====================================================================================================================
def load_arrays(path: str) -> Dict[str, np.ndarray]:
    """Every array of a dataset file, as stored (ogbench's loader would cast them)."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def episode_lengths(terminals: np.ndarray) -> np.ndarray:
    ends = np.flatnonzero(terminals)
    return np.diff(np.concatenate([[-1], ends]))


def _within_episode(terminals: np.ndarray) -> np.ndarray:
    """Mask over transitions (t → t+1) that stay inside one episode."""
    return ~terminals[:-1].astype(bool)


def check_arrays(arrays: Dict[str, np.ndarray], recipe: Recipe, env=None,
                 expected_length: int | None = None) -> List[str]:
    """Every broken promise of one split's arrays, as readable strings (empty list: all good).

    env (the recipe's environment, any mode) enables the shape checks and the teleport exemption.
    """
    problems: List[str] = []
    need = ['observations', 'actions', 'terminals', 'qpos', 'qvel']
    with_buttons = env is not None and hasattr(env.unwrapped, '_cur_button_states')
    if with_buttons:
        need.append('button_states')
    missing = [k for k in need if k not in arrays]
    if missing:
        return [f'missing arrays {missing} (have {sorted(arrays)})']
    dtypes = dict(observations=np.float32, actions=np.float32, terminals=np.bool_, qpos=np.float32,
                  qvel=np.float32, button_states=np.int64)
    for key in need:
        if arrays[key].dtype != dtypes[key]:
            problems.append(f'{key} has dtype {arrays[key].dtype}, expected {np.dtype(dtypes[key])}')
    rows = {k: len(arrays[k]) for k in need}
    if len(set(rows.values())) != 1:
        return problems + [f'arrays have different lengths {rows}']
    if env is not None:
        expect = dict(observations=env.observation_space.shape, actions=env.action_space.shape)
        for key, shape in expect.items():
            if arrays[key].shape[1:] != shape:
                problems.append(f'{key} rows have shape {arrays[key].shape[1:]}, the env has {shape}')

    terminals = arrays['terminals'].astype(bool)
    if not terminals[-1]:
        problems.append('the last row is not terminal (a truncated final episode)')
    lengths = episode_lengths(terminals)
    if len(set(lengths.tolist())) > 1:
        problems.append(f'episodes differ in length: {sorted(set(lengths.tolist()))[:10]} (terminals must mark '
                        f'episode ends only)')
    if expected_length is not None and len(lengths) and lengths[0] != expected_length:
        problems.append(f'episodes have {lengths[0]} steps, expected {expected_length}')

    actions = arrays['actions']
    if not np.isfinite(actions).all():
        problems.append('actions contain NaN or inf')
    elif np.abs(actions).max() > 1.0:
        problems.append(f'actions leave [-1, 1]: min {actions.min():.3f}, max {actions.max():.3f}')
    for key in ('observations', 'qpos', 'qvel'):
        if not np.isfinite(arrays[key]).all():
            problems.append(f'{key} contain NaN or inf')

    problems += (_check_maze_states(arrays, env) if recipe.family == 'maze' else _check_arm_states(arrays))
    return problems


def _teleport_out_xys(env) -> np.ndarray:
    info = getattr(env.unwrapped, '_teleport_info', None) if env is not None else None
    return np.asarray(info['teleport_out_xys'], np.float32) if info else np.zeros((0, 2), np.float32)


def _near_any(xy: np.ndarray, points: np.ndarray, radius: float) -> np.ndarray:
    if len(points) == 0:
        return np.zeros(len(xy), bool)
    return (np.linalg.norm(xy[:, None, :] - points[None, :, :], axis=-1) <= radius).any(axis=1)


def _check_maze_states(arrays: Dict[str, np.ndarray], env) -> List[str]:
    """The observation starts with the state (qpos) it was taken in, x-y first; x-y moves a bounded amount per
    step (teleports excepted): ≤ 0.2·√2 for the point, `ANT_MAX_XY_STEP` for the ant."""
    problems = []
    obs, qpos, terminals = arrays['observations'], arrays['qpos'], arrays['terminals'].astype(bool)
    outs = _teleport_out_xys(env)
    max_step = POINT_MAX_STEP if qpos.shape[1] == 2 else ANT_MAX_XY_STEP
    # A teleport moves the agent after the observation was taken, so that one row's qpos is the outbound pad.
    mismatch = np.abs(obs[:, :qpos.shape[1]] - qpos).max(axis=1) > OBS_STATE_TOLERANCE
    mismatch &= ~_near_any(qpos[:, :2], outs, TELEPORT_TOLERANCE)
    obs = obs[:, :2]
    if mismatch.any():
        problems.append(f'{mismatch.sum()} observations differ from the recorded qpos (first at row '
                        f'{np.flatnonzero(mismatch)[0]}): rows are misaligned')
    step = np.linalg.norm(np.diff(obs, axis=0), axis=1)
    jump = (step > max_step + POINT_STEP_TOLERANCE) & _within_episode(terminals)
    jump &= ~_near_any(obs[1:], outs, max_step + POINT_STEP_TOLERANCE)  # Landing next to an outbound pad.
    if jump.any():
        problems.append(f'{jump.sum()} in-episode x-y steps exceed {max_step:.3f} (max {step[jump].max():.3f},'
                        f' first at row {np.flatnonzero(jump)[0]})')
    return problems


def _check_arm_states(arrays: Dict[str, np.ndarray]) -> List[str]:
    """The observation starts with the arm joint angles of qpos; they move a bounded amount per control step."""
    problems = []
    obs_joints = arrays['observations'][:, :NUM_ARM_JOINTS]
    qpos_joints = arrays['qpos'][:, :NUM_ARM_JOINTS]
    mismatch = np.abs(obs_joints - qpos_joints).max(axis=1) > OBS_STATE_TOLERANCE
    if mismatch.any():
        problems.append(f'{mismatch.sum()} observations differ from the recorded qpos (first at row '
                        f'{np.flatnonzero(mismatch)[0]}): rows are misaligned')
    step = np.abs(np.diff(obs_joints, axis=0)).max(axis=1)
    jump = (step > MAX_ARM_JOINT_STEP) & _within_episode(arrays['terminals'].astype(bool))
    if jump.any():
        problems.append(f'{jump.sum()} in-episode arm joint steps exceed {MAX_ARM_JOINT_STEP} rad (max '
                        f'{step[jump].max():.3f}, first at row {np.flatnonzero(jump)[0]})')
    return problems


def summarize(arrays: Dict[str, np.ndarray], recipe: Recipe, env=None) -> Dict[str, object]:
    """One summary row: episodes, steps, action mean/std per dimension, and for mazes the free cells visited."""
    lengths = episode_lengths(arrays['terminals'].astype(bool))
    row: Dict[str, object] = dict(
        episodes=len(lengths), episode_length=int(lengths[0]) if len(set(lengths.tolist())) == 1 else 'varies',
        transitions=len(arrays['terminals']),
        action_mean=[round(float(x), 3) for x in arrays['actions'].mean(axis=0)],
        action_std=[round(float(x), 3) for x in arrays['actions'].std(axis=0)])
    if recipe.family == 'maze' and env is not None:
        maze = env.unwrapped
        cells = set(free_cells(maze.maze_map))
        visited = {maze.xy_to_ij(xy) for xy in np.unique(np.round(arrays['observations'][:, :2], 1), axis=0)}
        row['cells_visited'] = round(len(visited & cells) / len(cells), 3)
    return row


def check_variants_load(name: str, train_path: str) -> List[str]:
    """Loads the plain, -oraclerep and -singletask datasets with ogbench's own loader; returns the failures."""
    import ogbench

    base = get_recipe(name).name
    stem = base.removesuffix('-v0')
    problems = []
    for variant in (base, f'{stem}-oraclerep-v0', f'{stem}-singletask-v0'):
        try:
            env, train, val = ogbench.make_env_and_datasets(variant, dataset_path=train_path, compact_dataset=True)
            env.close()
            if len(train['observations']) == 0 or len(val['observations']) == 0:
                problems.append(f'{variant}: ogbench loaded an empty split')
        except Exception as e:  # noqa: BLE001 — any failure of the real loader is the finding.
            problems.append(f'{variant}: ogbench.make_env_and_datasets failed: {type(e).__name__}: {e}')
    return problems


def validate(name: str, dataset_dir: str | None = None, check_variants: bool = True
             ) -> Tuple[Dict[str, Dict[str, object]], List[str]]:
    """({'train': summary, 'val': summary}, problems) for a dataset pair in dataset_dir (default ~/.ogbench/data)."""
    recipe = get_recipe(name)
    train_path, val_path = dataset_paths(recipe.name, resolve_dataset_dir(dataset_dir))
    for path in (train_path, val_path):
        check_npz_file(path)
    env = make_env(recipe.env_id)
    summaries, problems = {}, []
    for split, path in (('train', train_path), ('val', val_path)):
        arrays = load_arrays(path)
        problems += [f'{split}: {p}' for p in check_arrays(arrays, recipe, env)]
        summaries[split] = summarize(arrays, recipe, env)
    env.close()
    if check_variants:
        problems += check_variants_load(name, train_path)
    return summaries, problems


def assert_valid(name: str, dataset_dir: str | None = None, check_variants: bool = True
                 ) -> Dict[str, Dict[str, object]]:
    """validate(), raising DatasetValidationError that lists every problem; returns the summaries otherwise."""
    summaries, problems = validate(name, dataset_dir, check_variants)
    if problems:
        raise DatasetValidationError(f'{name} in {resolve_dataset_dir(dataset_dir)} fails validation:\n  - '
                                     + '\n  - '.join(problems))
    return summaries


# ====================================================================================================================
# Oracle success on the evaluation tasks.
# ====================================================================================================================
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


# ====================================================================================================================
# CLI.
# ====================================================================================================================
def _table(rows: Dict[str, Dict[str, object]]) -> str:
    columns = list(next(iter(rows.values())))
    lines = ['| split | ' + ' | '.join(columns) + ' |', '|' + '---|' * (len(columns) + 1)]
    for split, row in rows.items():
        lines.append(f'| {split} | ' + ' | '.join(str(row[c]) for c in columns) + ' |')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m datasets.validate', description=__doc__.split('\n\n')[0])
    parser.add_argument('name', help='OGBench dataset name (variants map to their base files)')
    parser.add_argument('--dataset_dir', default=None, help='folder of the files (default: ~/.ogbench/data)')
    parser.add_argument('--eval_oracle_episodes', type=int, default=DEFAULT_EVAL_EPISODES,
                        help='oracle episodes per evaluation task (0: skip the oracle check)')
    parser.add_argument('--eval_noise', type=float, default=0.0, help='maze oracle action noise during evaluation')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--expert_path', default=None, help='ant mazes: the expert the oracle check drives '
                                                            '(default: the shipped one)')
    parser.add_argument('--oracle_only', action='store_true', help='skip the file checks (no dataset needed)')
    args = parser.parse_args(argv)

    problems = []
    if not args.oracle_only:
        summaries, problems = validate(args.name, args.dataset_dir)
        print(_table(summaries))
        print('\n'.join(['', 'Problems:'] + [f'  - {p}' for p in problems]) if problems else '\nAll checks passed.')
    if args.eval_oracle_episodes > 0:
        try:
            scores = evaluate_oracle(args.name, args.eval_oracle_episodes, args.seed, args.eval_noise,
                                     args.expert_path)
            recipe = get_recipe(args.name)
            what = (f'BFS oracle{" driving the ant expert" if recipe.expert_path else ""}, action noise '
                    f'{args.eval_noise}' if recipe.family == 'maze' else
                    'plan oracle with its plan noise' if recipe.dataset_type == 'play' else
                    'Markov oracle without action noise or random actions')
            print(f'\nOracle success ({args.eval_oracle_episodes} episodes per task, {what}):')
            print(' '.join(f'{k}={v:.2f}' for k, v in scores.items()))
        except NotImplementedError as e:
            print(f'\nOracle evaluation skipped: {e}')
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
