"""Success (or return) against training step from run directories' eval.csv: one line per variant and weight.

    python -m scripts.curves runs/baselines_long [--out=results/curves.md] [--figures=results/figures] [--window=5]

Runs are grouped as scripts.aggregate groups them (only runs with equal settings are seeds of one variant; labels
say what differs), at every step that some run evaluated; a point is the mean ± std over the seeds evaluated at
that step, so a run still in progress adds its evaluations so far. Guided variants get one line per weight.
"""
import argparse
import contextlib
import csv
import io
import os
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from scripts.aggregate import UNGUIDED_KEYS, Cell, collect, find_runs, mean_std_text, metric

Curves = Dict[Tuple[str, str, str], Dict[int, Tuple[float, float, int]]]  # (env, variant, w) -> step -> stats.


def evaluated_steps(folders: List[str]) -> List[int]:
    steps = set()
    for folder in folders:
        with open(os.path.join(folder, 'eval.csv')) as f:
            steps.update(int(row['step']) for row in csv.DictReader(f))
    return sorted(steps)


def curves(folders: List[str]) -> Tuple[Curves, str]:
    """(env, variant, w) -> {step: (mean, std, seeds)} over every evaluated step, and the metric's name."""
    out: Curves = {}
    names = set()
    for step in evaluated_steps(folders):
        with contextlib.redirect_stderr(io.StringIO()):  # Runs without this step are left out, as expected here.
            cells: Mapping[Tuple[str, str], Cell] = collect(folders, step)
        names.add(metric(cells))
        for (env, variant), cell in cells.items():
            for w in cell.weights():
                out.setdefault((env, variant, w), {})[step] = (*cell.stats(w), len(cell.per_seed))
    return out, (names.pop() if len(names) == 1 else 'score')


def _step_text(step: int) -> str:
    return f'{step // 1000}k' if step % 1000 == 0 and step else str(step)


def _line_label(variant: str, w: str, points: Dict[int, Tuple[float, float, int]]) -> str:
    """'cfgrl, w = 3 (2 seeds)': the variant, its weight, and the most seeds any of its points averages."""
    seeds = max(n for _, _, n in points.values())
    label = variant if w in UNGUIDED_KEYS else f'{variant}, w = {w}'
    return f'{label} ({seeds} seed{"s" if seeds > 1 else ""})'


def table(data: Curves, name: str, window: int = 5) -> str:
    """One markdown table per environment: a row per (variant, w), a column per step, mean ± std over seeds (a
    point of one seed: its value), and a last column averaging the row's means over its last `window` evaluated
    steps: a single step's number swings with the evaluation's noise and the policy's own, and this steadies it."""
    blocks = []
    for env in sorted({key[0] for key in data}):
        keys = sorted(k for k in data if k[0] == env)
        steps = sorted({s for k in keys for s in data[k]})
        last = steps[-window:]
        lines = [f'{env} ({name}, mean ± std over seeds, by training step; one seed: its value)', '',
                 '| variant | ' + ' | '.join(map(_step_text, steps)) + f' | mean of the last {len(last)} |',
                 '|---|' + '---|' * (len(steps) + 1)]
        for key in keys:
            cells = [mean_std_text(*data[key][s]) if s in data[key] else '–' for s in steps]
            # A row that misses one of those steps (a run still going) gets no average, rather than a shorter one.
            cells.append(f'{np.mean([data[key][s][0] for s in last]):.0f}' if set(last) <= set(data[key]) else '–')
            lines.append(f'| {_line_label(key[1], key[2], data[key])} | ' + ' | '.join(cells) + ' |')
        blocks.append('\n'.join(lines))
    return '\n\n'.join(blocks)


def plot(data: Curves, name: str, folder: str) -> List[str]:
    """One figure per environment, `<env>_curves.png`: a line per (variant, w) with a ± std band."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    paths = []
    for env in sorted({key[0] for key in data}):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for key in sorted(k for k in data if k[0] == env):
            steps = sorted(data[key])
            mean = [data[key][s][0] for s in steps]
            std = [data[key][s][1] for s in steps]
            line, = ax.plot(steps, mean, marker='o', label=_line_label(key[1], key[2], data[key]))
            ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color=line.get_color(), alpha=0.15)
        ax.set_xlabel('training step')
        ax.set_ylabel(f'{name} (%)' if name == 'success' else name)
        ax.set_title(env)
        ax.legend(fontsize=8, loc='center left', bbox_to_anchor=(1.01, 0.5))  # Beside the axes: lines cross all of it.
        ax.grid(alpha=0.3)
        path = os.path.join(folder, f'{env}_curves.png')
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('roots', nargs='+', help='Folders to search for run directories.')
    parser.add_argument('--out', default=None, help='Also write the tables to this markdown file.')
    parser.add_argument('--figures', default=None, help='Folder for the <env>_curves.png figures.')
    parser.add_argument('--window', type=int, default=5,
                        help='Average each row over its last this many evaluated steps (last column).')
    args = parser.parse_args(argv)
    folders = find_runs(args.roots)
    if not folders:
        parser.error(f'no run directories (summary.json + config.json) under {", ".join(args.roots)}')
    data, name = curves(folders)
    if args.window < 1:
        parser.error(f'--window must be at least 1, got {args.window}')
    text = table(data, name, args.window)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    if args.figures:
        for path in plot(data, name, args.figures):
            print(f'wrote {path}')


if __name__ == '__main__':
    main()
