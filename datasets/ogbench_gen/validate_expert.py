"""Validates an ant expert: its directional velocity on its own task, and the success of the maze oracle driving it
on OGBench's evaluation tasks; `--write` stores the figures in the expert's JSON.

    python -m datasets.ogbench_gen.validate_expert [--expert_path=PATH] [--velocity_episodes=N] [--maze_episodes=N]
"""
import argparse
import json
import sys
from typing import Dict

from datasets.ogbench_gen.expert import SHIPPED_ANT, directional_velocity, expert_json_path, load_expert, write_json
from datasets.ogbench_gen.oracle_eval import evaluate_oracle

VALIDATION_MAZES = ('antmaze-medium-navigate-v0', 'antmaze-large-navigate-v0', 'antmaze-giant-navigate-v0')


def validate_expert(path: str, velocity_episodes: int, maze_episodes: int, seed: int = 0) -> Dict:
    """The expert's figures: Δxy·z per step on its own task, and the success of the maze oracle driving it on the
    5 evaluation tasks of each maze in VALIDATION_MAZES (noise-free, as validate.py scores oracles)."""
    figures: Dict = {'velocity': directional_velocity(load_expert(path), velocity_episodes, seed)}
    figures['oracle_success'] = {name: evaluate_oracle(name, maze_episodes, seed, expert_path=path)
                                 for name in VALIDATION_MAZES} if maze_episodes > 0 else {}
    return figures


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog='python -m datasets.ogbench_gen.validate_expert',
                                     description='Validate an ant expert: directional velocity and maze success.')
    parser.add_argument('--expert_path', default=SHIPPED_ANT)
    parser.add_argument('--velocity_episodes', type=int, default=50, help='1000-step episodes on its own task')
    parser.add_argument('--maze_episodes', type=int, default=4, help='oracle episodes per evaluation task and maze')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--write', action='store_true', help="store the figures in the expert's JSON")
    args = parser.parse_args(argv)
    figures = validate_expert(args.expert_path, args.velocity_episodes, args.maze_episodes, args.seed)
    v = figures['velocity']
    print(f'Δxy·z per step over {v["episodes"]} episodes: {v["velocity"]:.4f} ± {v["velocity_std"]:.4f} '
          f'(episodes that fell: {v["fell"]:.0%})')
    for name, scores in figures['oracle_success'].items():
        print(f'{name} oracle success ({args.maze_episodes} episodes per task): '
              + ' '.join(f'{k}={s:.2f}' for k, s in scores.items()))
    if args.write:
        json_path = expert_json_path(args.expert_path)
        with open(json_path) as f:
            metadata = json.load(f)
        args = ' '.join(sys.argv[1:] if argv is None else argv)
        figures['command'] = f'python -m datasets.ogbench_gen.validate_expert {args}'.strip()
        metadata['validation'] = figures
        write_json(json_path, metadata)
        print(f'written to {json_path}')


if __name__ == '__main__':
    main()
