"""Checks a dataset file pair against what ogbench's loader and the recipe promise.

    python -m datasets.ogbench_gen.validate <name> [--dataset_dir=DIR] [--eval_oracle_episodes=N] [--eval_noise=X]
        [--expert_path=PATH] [--oracle_only]

Checks: complete zips (every CRC); ogbench's loader reads the plain, -oraclerep and -singletask variants; keys,
dtypes and shapes match the environment; terminals mark episode ends only; actions are finite and in [-1, 1]; each
observation agrees with the recorded state and moves continuously inside an episode. A summary table follows. The
oracle score (--eval_oracle_episodes) is computed by oracle_eval.py; in ant mazes the BFS oracle drives the
ant expert (--eval_noise reproduces a dataset's noise: 0.5 for the point, 0.2 for the ant).
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np

from datasets.files import check_npz_file, dataset_paths, resolve_dataset_dir
from datasets.ogbench_gen.oracle_eval import evaluate_oracle
from datasets.ogbench_gen.recipes import POINT_MAX_STEP, Recipe, free_cells, get_recipe, make_env, sized

DEFAULT_EVAL_EPISODES = 5  # Oracle episodes per evaluation task in the CLI.
POINT_STEP_TOLERANCE = 0.05  # Extra x-y displacement allowed per step (contact resolution against walls).
# The ant's torso moves under 0.1 per 0.05 s control step when walking fast; anything near this bound is a jump.
ANT_MAX_XY_STEP = 0.5
TELEPORT_TOLERANCE = 1e-4  # A teleported point sits exactly on an outbound teleport.
OBS_STATE_TOLERANCE = 1e-5  # float32 rounding between an observation and the float32 qpos it was computed from.
MAX_ARM_JOINT_STEP = 0.5  # rad per 0.05 s control step: far above what the IK controller produces (≈0.2).
NUM_ARM_JOINTS = 6  # UR5e: observation[:6] are the arm joint angles, qpos[:6] the same joints.


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
# CLI.
# ====================================================================================================================
def _table(rows: Dict[str, Dict[str, object]]) -> str:
    columns = list(next(iter(rows.values())))
    lines = ['| split | ' + ' | '.join(columns) + ' |', '|' + '---|' * (len(columns) + 1)]
    for split, row in rows.items():
        lines.append(f'| {split} | ' + ' | '.join(str(row[c]) for c in columns) + ' |')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m datasets.ogbench_gen.validate',
                                     description=__doc__.split('\n\n')[0])
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
            recipe = sized(get_recipe(args.name), expert_path=args.expert_path)
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
