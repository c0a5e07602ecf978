"""How far a learned value function has spread from the goal, for single-task maze runs (cfgrl_iql, awr).

IQL learns V by bootstrapping: each backup waits about 1/tau steps for the target critic, and a state k steps from
the goal needs about k backups before its value tells it apart from its neighbours. Success rate alone cannot say
whether a failed run lacks steps or has a bug; this profile can. It prints, per seed, the mean and std of V over
dataset states binned by their x-y distance to the task's goal region (the mean x-y of the dataset's success rows,
mask 0), and the distance of the evaluation start from it.

    python -m scripts.value_profile runs/<env>/cfgrl_iql/<run> [--bins=0,1,3,6,10,20,30,40,50] [--samples=20000]

A converged value rises smoothly towards 0 at the goal in every bin; an unconverged one is flat (about
-1/(1 - discount)) beyond some distance.
"""
import argparse
import json
import os
from typing import List, Optional, Sequence, Tuple

import jax.numpy as jnp
import numpy as np

Row = Tuple[float, float, int, float, float]  # (distance from, to, states, mean V, std V)


def value_profile(values: np.ndarray, xy: np.ndarray, goal_xy: np.ndarray, bins: Sequence[float]) -> List[Row]:
    """Mean and std of `values` over the states whose x-y distance to `goal_xy` falls in each [bins[i], bins[i+1])."""
    distance = np.linalg.norm(xy - goal_xy, axis=-1)
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        inside = (distance >= lo) & (distance < hi)
        if inside.any():
            rows.append((lo, hi, int(inside.sum()), float(values[inside].mean()), float(values[inside].std())))
        else:
            rows.append((lo, hi, 0, float('nan'), float('nan')))
    return rows


def format_profile(rows: Sequence[Row]) -> str:
    lines = ['| distance to goal | states | V mean ± std |', '|---|---|---|']
    lines += [f'| {lo:g}–{hi:g} | {n} | {mean:.1f} ± {std:.1f} |' for lo, hi, n, mean, std in rows]
    return '\n'.join(lines)


def run_dataset_dir(path: str) -> Optional[str]:
    """The --dataset_dir recorded in the flags.json of the run that holds `path` (a run or checkpoint folder)."""
    folder = os.path.abspath(path)
    for _ in range(3):  # run dir, checkpoints/, checkpoints/<step>
        flags_path = os.path.join(folder, 'flags.json')
        if os.path.exists(flags_path):
            with open(flags_path) as f:
                return json.load(f).get('dataset_dir')
        folder = os.path.dirname(folder)
    return None


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('path', help='Run directory or checkpoint folder of a value-based agent on a maze task.')
    parser.add_argument('--bins', default='0,1,3,6,10,20,30,40,50', help='Distance bin edges (maze units).')
    parser.add_argument('--samples', type=int, default=20000, help='Dataset states to evaluate V on.')
    parser.add_argument('--dataset_dir', default=None,
                        help="The run's dataset folder (default: its flags.json's --dataset_dir, else OGBench's).")
    args = parser.parse_args(argv)

    from agents.seeds import unstack
    from datasets.families import family_of, load_env_and_datasets
    from evaluation.envs import reset_episode
    from experiment.session import load_checkpoint_agent

    agent, meta, step = load_checkpoint_agent(args.path)
    family = family_of(meta['env_name'])
    if 'maze' not in meta['env_name'] or not family.single_task:
        raise SystemExit(f'{meta["env_name"]}: the profile needs a single-task maze dataset (x-y distances).')
    if 'modules_value' not in agent.network.params:
        raise SystemExit(f'{meta["agent"]} has no value network.')
    # The run's own data, never a regenerated copy: a diagnostic that quietly rebuilt a dataset elsewhere would
    # take minutes and could read different data from what the agent trained on.
    dataset_dir = args.dataset_dir or run_dataset_dir(args.path)
    env, train, _ = load_env_and_datasets(meta['env_name'], dataset_dir, regenerate=False)
    (task_id,) = family.eval_task_ids(meta['env_name'], ())
    start, _ = reset_episode(env, task_id=task_id, seed=0)
    env.close()
    goal_xy = train['observations'][train['masks'] == 0][:, :2].mean(axis=0)
    rows = np.random.default_rng(0).choice(len(train['observations']), min(args.samples, len(train['observations'])),
                                           replace=False)
    obs = train['observations'][rows]
    bins = [float(b) for b in args.bins.split(',')]
    print(f'{meta["agent"]} on {meta["env_name"]} at step {step}: goal region at x-y {np.round(goal_xy, 2)}, '
          f'evaluation start {np.linalg.norm(start[:2] - goal_xy):.1f} from it; {len(rows)} dataset states.')
    seeds = meta.get('seeds', [meta['seed']])
    for k, seed in enumerate(seeds):
        one = unstack(agent, k) if len(seeds) > 1 else agent
        values = np.asarray(one.network.select('value')(jnp.asarray(obs)))
        print(f'\nseed {seed}\n' + format_profile(value_profile(values, obs[:, :2], goal_xy, bins)))


if __name__ == '__main__':
    main()
