"""The run's result plot: score (success, or return on ExORL) vs guidance weight at the last evaluation, and score vs
step per weight."""
import os
from typing import Dict, List, Sequence

import numpy as np

from evaluation.results import UNGUIDED_KEY, metric_of, task_columns

Row = Dict[str, object]  # An eval.csv row: step, guidance, overall_success, task<k>...


def plot_success(rows: Sequence[Row], path: str, title: str, w1_label: str = 'w = 1') -> None:
    """Writes a two-panel PNG from eval.csv rows (written atomically: the plot is replaced while runs go on).

    Left: the last evaluation's overall and per-task success against w, with w = 1 marked as `w1_label`; an agent
    without guidance gets its per-task bars instead. Right: overall success against training step, one line per w.
    """
    import matplotlib

    matplotlib.use('Agg')  # Headless; selected here so that importing this module has no global side effect.
    import matplotlib.pyplot as plt

    metric = metric_of(rows[0])
    overall = f'overall_{metric}'
    last_step = max(int(r['step']) for r in rows)
    last = [r for r in rows if int(r['step']) == last_step]
    tasks = task_columns(last[0])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))

    if last[0]['guidance'] == UNGUIDED_KEY:
        values = [float(last[0][k]) for k in tasks] + [float(last[0][overall])]
        left.bar(tasks + ['overall'], values, color=['0.7'] * len(tasks) + ['C0'])
        left.set_title(f'{metric} at step {last_step}')
    else:
        last.sort(key=lambda r: float(r['guidance']))
        ws = [float(r['guidance']) for r in last]
        for k in tasks:
            left.plot(ws, [float(r[k]) for r in last], lw=0.8, alpha=0.6, marker='.', label=k)
        left.plot(ws, [float(r[overall]) for r in last], color='k', lw=2, marker='o', label='overall')
        left.axvline(1.0, color='C3', ls='--', lw=1, label=w1_label)
        left.set_xlabel('guidance weight w')
        left.set_title(f'{metric} vs w at step {last_step}')
        left.legend(fontsize=7)
    left.set_ylabel('success rate' if metric == 'success' else 'episode return')
    if metric == 'success':
        left.set_ylim(-0.02, 1.02)

    for key in _ordered_keys(rows):
        series = sorted((int(r['step']), float(r[overall])) for r in rows if r['guidance'] == key)
        steps, values = zip(*series)
        right.plot(steps, values, marker='o', ms=3, label=key if key == UNGUIDED_KEY else f'w = {key}')
    right.set_xlabel('training step')
    right.set_ylabel(f'overall {metric}')
    if metric == 'success':
        right.set_ylim(-0.02, 1.02)
    right.set_title(f'{metric} vs step')
    right.legend(fontsize=7)

    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = os.path.join(os.path.dirname(path) or '.', f'.{os.path.basename(path)}.tmp.png')
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def _ordered_keys(rows: Sequence[Row]) -> List[str]:
    keys = list(dict.fromkeys(str(r['guidance']) for r in rows))
    return sorted(keys, key=lambda k: np.inf if k == UNGUIDED_KEY else float(k))
