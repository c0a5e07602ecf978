"""Aggregate run directories into the paper's tables: mean ± std over seeds, best-w and fixed-w columns, beside
the paper's numbers; and a success-vs-w figure per task.

    python -m scripts.aggregate runs/ [--fixed_w=3] [--out=results/table.md] [--figures=results/figures] [--step=N]
                                      [--window=K] [--versus=gcfbc]

It prints the table, then (for guided variants) success at every evaluated w. Each run counts with its last
evaluation (summary.json), or with its evaluation at step N (eval.csv) under --step; runs never evaluated at N
are left out, and said so. --window=K scores each run by the mean of its last K evaluations (up to step N under
--step), which steadies policies whose success swings from one evaluation to the next. --versus compares every
variant with a separately trained baseline (GCBC beside CFGRL), paired by the seed flag.

A run directory is any folder holding summary.json and config.json (main.py's run directories). Runs are grouped
by environment and by everything else that differs between them, seed aside: only runs whose configs (a key a run
lacks counts at its agent's default) and flags.json agree are averaged as seeds. A variant's label names the
baseline its config realises (flow BC is gcfbc without goals, flow HGCBC is hcfgrl without dropout) or its agent,
then its `label_keys` (AWR's 1/β), then every config key and flag in which it differs from another variant of the
same name in that environment: `cfgrl(p_uncond=0.2)`, `cfgrl(--dataset_dir=data/v2)`. Flags that do not change
what a run learns or how it is scored (`SEED_FLAGS`) are no difference, nor is a flag some run of the variant
never recorded. `exorl-*` runs (Table 1) are scored by episode return, unscaled: their tables say "return" where
OGBench's say "success" (%).
"""
import argparse
import collections
import csv
import dataclasses
import json
import os
import sys
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np

from agents import AGENTS, get_agent_class, get_config
from datasets.families import family_of
from scripts.paper_results import paper_value

UNGUIDED_KEYS = ('none',)
# flags.json entries in which the seeds of one configuration may differ: which seed it is (seed_<k>/ folders point
# to their run with part_of_run), what the table groups by anyway (agent, env_name), and how a run is scheduled,
# stored or run, which leaves what it learns and how it is scored unchanged. Its length (train_steps) and its
# evaluated weights are no difference either: each run counts at its last evaluation or at --step, shown in the
# `steps` column, and at the weights every seed evaluated; eval_episodes sets the precision of a score, not what it
# measures. Every other flag is a difference, a new one included.
SEED_FLAGS = frozenset({'seed', 'num_seeds', 'part_of_run', 'agent', 'env_name', 'save_dir', 'train_steps',
                        'log_interval', 'eval_interval', 'save_interval', 'eval_mode', 'eval_workers',
                        'eval_max_envs', 'video_episodes', 'eval_guidance', 'eval_episodes'})


def _label_parts(agent: str, config: Mapping) -> Tuple[str, List[str]]:
    """(the baseline a config realises or the agent's name, ['key=value' of the agent's `label_keys`])."""
    if agent not in AGENTS:
        return agent, []
    cls, defaults = get_agent_class(agent), get_config(agent)
    for name, overrides in cls.baselines.items():
        if all(config.get(key, defaults.get(key)) == value for key, value in overrides.items()):
            return name, []
    return agent, [f'{key}={_value_text(config.get(key, defaults.get(key)))}' for key in cls.label_keys]


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:g}'
    if isinstance(value, (list, tuple)):
        return ','.join(map(_value_text, value))
    return str(value)


def _label(name: str, parts: List[str]) -> str:
    return f'{name}({", ".join(parts)})' if parts else name


def variant_label(agent: str, config: Mapping) -> str:
    """The name of one run's table column on its own: the baseline its config realises (the agent class's
    `baselines`), else the agent's name with the values of its `label_keys`. `collect` adds what tells it apart
    from the other runs."""
    return _label(*_label_parts(agent, config))


@dataclasses.dataclass
class Run:
    """One run directory's evaluation and what it was trained with (the config completed with its agent's defaults,
    flags.json as saved)."""

    env: str
    agent: str
    config: Dict[str, Any]
    flags: Dict[str, Any]
    overall: Dict[str, float]
    tasks: Dict[str, Dict[str, float]]
    step: int


def variant_labels(runs: List[Run]) -> List[str]:
    """Each run's variant: runs of one environment and base name (`variant_label`) that differ in a config key or
    a flag (outside SEED_FLAGS; recorded by all of them) get the differing values in their labels, so equal labels
    mean equal settings."""
    families: Dict[Tuple[str, str], List[int]] = collections.defaultdict(list)
    bases = [_label_parts(run.agent, run.config) for run in runs]
    for i, (run, (name, parts)) in enumerate(zip(runs, bases)):
        families[(run.env, _label(name, parts))].append(i)
    labels = [''] * len(runs)
    for members in families.values():
        settings = [{**{k: v for k, v in runs[i].config.items() if k != 'agent_name'},
                     **{f'--{k}': v for k, v in runs[i].flags.items() if k not in SEED_FLAGS}} for i in members]
        shared = set.intersection(*(set(s) for s in settings))
        differing = sorted(k for k in shared if len({json.dumps(s[k], sort_keys=True) for s in settings}) > 1)
        for i, values in zip(members, settings):
            name, parts = bases[i]
            own = {part.split('=')[0] for part in parts}
            labels[i] = _label(name, parts + [f'{k}={_value_text(values[k])}' for k in differing if k not in own])
    return labels
def find_runs(roots: Iterable[str]) -> List[str]:
    """Every folder under `roots` with a summary.json and config.json (re-evaluation subfolders excluded). A
    multi-seed run (main.py --num_seeds) counts through its seed_<k>/ folders, not through its own mean."""
    found = []
    for root in roots:
        for folder, subdirs, files in os.walk(root):
            subdirs[:] = [d for d in subdirs if d not in ('checkpoints', 'tb', 'videos', 'evals')]
            if 'summary.json' in files and 'config.json' in files and not _is_seed_mean(folder):
                found.append(folder)
    return sorted(found)


def _is_seed_mean(folder: str) -> bool:
    with open(os.path.join(folder, 'summary.json')) as f:
        return len(json.load(f).get('seeds', ())) > 1


def load_run(folder: str, step: Optional[int] = None, window: Optional[int] = None) -> Optional[Run]:
    """One run directory at its last evaluation or at `step`; with `window`, the mean of its last `window`
    evaluations (those up to `step`, if given) at each weight they all have. None if the run has no evaluation at
    `step` or fewer than `window` evaluations."""
    with open(os.path.join(folder, 'summary.json')) as f:
        summary = json.load(f)
    with open(os.path.join(folder, 'config.json')) as f:
        config = json.load(f)
    flags = {}
    if os.path.isfile(os.path.join(folder, 'flags.json')):
        with open(os.path.join(folder, 'flags.json')) as f:
            flags = json.load(f)
    agent = summary['agent']
    if agent in AGENTS:  # A key saved before it existed counts at its default (as --resume reads it).
        config = {**{k: list(v) if isinstance(v, tuple) else v for k, v in get_config(agent).items()}, **config}
    # ExORL runs score episodes by return (overall_return); they aggregate the same way, unscaled (Cell.scale).
    m = 'return' if any('overall_return' in r for r in summary['guidance'].values()) else 'success'
    if step is None and window is None:
        overall = {w: float(r[f'overall_{m}']) for w, r in summary['guidance'].items()}
        tasks = {w: {t: float(s) for t, s in r[f'task_{m}'].items()} for w, r in summary['guidance'].items()}
        return Run(summary['env_name'], agent, config, flags, overall, tasks, int(summary['step']))
    with open(os.path.join(folder, 'eval.csv')) as f:
        rows = list(csv.DictReader(f))
    steps = sorted({int(r['step']) for r in rows})
    if step is not None:
        if step not in steps:
            return None
        steps = steps[:steps.index(step) + 1]
    count = window or 1
    steps = steps[-count:]
    if len(steps) < count:
        return None
    by_step = [{r['guidance']: r for r in rows if int(r['step']) == s} for s in steps]
    weights = set.intersection(*(set(b) for b in by_step))
    overall = {w: float(np.mean([float(b[w][f'overall_{m}']) for b in by_step])) for w in weights}
    tasks = {w: {k: float(np.mean([float(b[w][k]) for b in by_step])) for k in by_step[-1][w] if k.startswith('task')}
             for w in weights}
    return Run(summary['env_name'], agent, config, flags, overall, tasks, steps[-1])


class Cell:
    """The seeds of one (env, variant): overall success per w for every seed."""

    def __init__(self):
        self.scale = 100  # Success in %; returns (ExORL runs) as they are.
        self.per_seed: List[Dict[str, float]] = []
        self.tasks: List[Dict[str, Dict[str, float]]] = []
        self.steps: List[int] = []
        self.seeds: List[Optional[int]] = []  # flags.json's seed of each entry of per_seed (None: not recorded).

    def weights(self) -> List[str]:
        common = set.intersection(*(set(s) for s in self.per_seed))
        return sorted(common, key=lambda w: (w in UNGUIDED_KEYS, float(w) if w not in UNGUIDED_KEYS else 0))

    def stats(self, w: str) -> Tuple[float, float]:
        values = np.array([s[w] for s in self.per_seed]) * self.scale
        return float(values.mean()), float(values.std())

    def best(self) -> Tuple[str, float, float]:
        """The weight with the highest mean success over seeds (chosen after the fact, as the paper's sweeps)."""
        w = max(self.weights(), key=lambda k: self.stats(k)[0])
        return (w, *self.stats(w))


def collect(folders: Iterable[str], step: Optional[int] = None,
            window: Optional[int] = None) -> Dict[Tuple[str, str], Cell]:
    """The table's cells, (env, variant) -> its seeds: runs are seeds of one cell only when every setting agrees.
    `step` and `window` choose each run's evaluation as `load_run` does."""
    runs = []
    for folder in folders:
        run = load_run(folder, step, window)
        if run is None:
            why = [f'no evaluation at step {step}'] if step is not None else []
            why += [f'fewer than {window} evaluations'] if window else []
            print(f'left out ({" or ".join(why)}): {folder}', file=sys.stderr)
            continue
        runs.append(run)
    cells: Dict[Tuple[str, str], Cell] = collections.defaultdict(Cell)
    for run, variant in zip(runs, variant_labels(runs)):
        cell = cells[(run.env, variant)]
        cell.scale = 100 if family_of(run.env).metric == 'success' else 1  # Success in %, returns as they are.
        cell.per_seed.append(run.overall)
        cell.tasks.append(run.tasks)
        cell.steps.append(run.step)
        cell.seeds.append(run.flags.get('seed'))
    return dict(cells)


def mean_std_text(mean: float, std: float, seeds: Optional[int] = None) -> str:
    """'mean ± std' over `seeds` seeds; one seed has no spread, so it shows its value alone, not a misleading
    '± 0'."""
    return f'{mean:.0f}' if seeds == 1 else f'{mean:.0f} ± {std:.0f}'


def _paper(env: str, variant: str) -> str:
    value = paper_value(env, variant.split('(')[0])
    if value is None:
        return '–'
    return mean_std_text(*value) if isinstance(value, tuple) else f'{value}'


def metric(cells: Mapping[Tuple[str, str], Cell]) -> str:
    """What the numbers are: 'success' (%, OGBench), 'return' (ExORL), or 'score' for a mix of both."""
    scales = {cell.scale for cell in cells.values()}
    return 'score' if len(scales) > 1 else ('success' if scales == {100} else 'return')


def table(cells: Mapping[Tuple[str, str], Cell], fixed_w: Optional[str] = '3') -> str:
    """A markdown table: one row per (env, variant) with seeds, steps, best w, best-w and fixed-w success (%, mean ±
    std over seeds; the return for ExORL runs) and the paper's number."""
    m = metric(cells)
    lines = [f'| env | variant | seeds | steps | best w | {m} at best w | {m} at w = '
             f'{fixed_w} | paper |', '|---|---|---|---|---|---|---|---|']
    for (env, variant), cell in sorted(cells.items()):
        w, mean, std = cell.best()
        n = len(cell.per_seed)
        fixed = mean_std_text(*cell.stats(fixed_w), n) if fixed_w in cell.weights() else '–'
        steps = sorted(set(cell.steps))
        lines.append(f'| {env} | {variant} | {n} | {"/".join(map(str, steps))} | {w} | '
                     f'{mean_std_text(mean, std, n)} | {fixed} | {_paper(env, variant)} |')
    return '\n'.join(lines)


def w_table(cells: Mapping[Tuple[str, str], Cell]) -> str:
    """A markdown table of success (%, mean ± std over seeds) at every evaluated weight: one row per guided
    (env, variant), one column per w (w = 1 is the variant's own GCBC)."""
    guided = {key: cell for key, cell in cells.items() if any(w not in UNGUIDED_KEYS for w in cell.weights())}
    if not guided:
        return ''
    ws = sorted({w for cell in guided.values() for w in cell.weights()}, key=float)
    lines = ['| env | variant | seeds | ' + ' | '.join(f'w = {w}' for w in ws) + ' |',
             '|---|---|---|' + '---|' * len(ws)]
    for (env, variant), cell in sorted(guided.items()):
        values = [mean_std_text(*cell.stats(w), len(cell.per_seed)) if w in cell.weights() else '–' for w in ws]
        lines.append(f'| {env} | {variant} | {len(cell.per_seed)} | ' + ' | '.join(values) + ' |')
    return '\n'.join(lines)


def _paired(diffs: np.ndarray) -> str:
    """Per-seed differences as '+mean ± std (k/n up)' ('+mean (k/1 up)' for a single seed)."""
    spread = '' if len(diffs) == 1 else f' ± {diffs.std():.0f}'
    return f'{round(float(diffs.mean())):+d}{spread} ({int((diffs > 0).sum())}/{len(diffs)} up)'


def gain_table(cells: Mapping[Tuple[str, str], Cell], base: str = '1') -> str:
    """A markdown table of what guidance adds over w = `base`, paired by seed: for every w > base, the per-seed
    difference success(w) − success(base) in points (mean ± std over seeds) and how many seeds improved. Seeds of
    one run share their model, so the paired difference is the direct measure of "w > 1 above GCBC"; it is far
    less noisy than comparing two columns of mean ± std, whose spread includes how good each seed is."""
    rows = {}
    for key, cell in cells.items():
        ws = [w for w in cell.weights() if w not in UNGUIDED_KEYS and float(w) > float(base)]
        if base in cell.weights() and ws:
            rows[key] = (cell, ws)
    if not rows:
        return ''
    ws = sorted({w for _, cell_ws in rows.values() for w in cell_ws}, key=float)
    lines = ['| env | variant | seeds | ' + ' | '.join(f'w = {w}' for w in ws) + ' |',
             '|---|---|---|' + '---|' * len(ws)]
    for (env, variant), (cell, cell_ws) in sorted(rows.items()):
        values = []
        for w in ws:
            if w not in cell_ws:
                values.append('–')
                continue
            values.append(_paired(np.array([(s[w] - s[base]) * cell.scale for s in cell.per_seed])))
        lines.append(f'| {env} | {variant} | {len(cell.per_seed)} | ' + ' | '.join(values) + ' |')
    return '\n'.join(lines)


def versus_table(cells: Mapping[Tuple[str, str], Cell], base: str) -> str:
    """A markdown table of every variant against the separately trained variant `base` of the same environment,
    paired by seed (the same --seed: same data order and evaluation episodes): score(variant, w) − score(base), in
    points, mean ± std over the seeds both have, and how many improved. A guided variant gets a column per weight;
    `base` counts at its unguided score ('none') or, if guided, at w = 1."""
    lines = []
    for (env, variant), cell in sorted(cells.items()):
        base_cell = cells.get((env, base))
        if base_cell is None or variant == base:
            continue
        base_w = next((w for w in base_cell.weights() if w in UNGUIDED_KEYS), '1')
        base_scores = {seed: s[base_w] for seed, s in zip(base_cell.seeds, base_cell.per_seed)
                       if seed is not None and base_w in s}
        paired = [(s, base_scores[seed]) for seed, s in zip(cell.seeds, cell.per_seed) if seed in base_scores]
        if not paired:
            continue
        values = []
        for w in cell.weights():
            label = 'unguided' if w in UNGUIDED_KEYS else f'w = {w}'
            values.append(f'{label}: ' + _paired(np.array([(s[w] - b) * cell.scale for s, b in paired])))
        lines.append(f'| {env} | {variant} | {len(paired)} | ' + '; '.join(values) + ' |')
    if not lines:
        return ''
    return '\n'.join([f'| env | variant | seeds paired | minus {base}, per weight |', '|---|---|---|---|'] + lines)


def plot_success_vs_w(cells: Mapping[Tuple[str, str], Cell], folder: str) -> List[str]:
    """One PNG per env: mean ± std success against w for guided variants, unguided ones as horizontal lines."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    paths = []
    for env in sorted({env for env, _ in cells}):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for (cell_env, variant), cell in sorted(cells.items()):
            if cell_env != env:
                continue
            ws = [w for w in cell.weights() if w not in UNGUIDED_KEYS]
            if ws:
                stats = np.array([cell.stats(w) for w in ws])
                x = [float(w) for w in ws]
                ax.errorbar(x, stats[:, 0], yerr=stats[:, 1], marker='o', capsize=3, label=variant)
            else:
                mean, std = cell.stats(cell.weights()[0])
                ax.axhline(mean, ls='--', lw=1, label=f'{variant} ({mean:.0f}{"%" if cell.scale == 100 else ""})')
        ax.axvline(1.0, color='0.6', lw=0.8)
        ax.set_xlabel('guidance weight w (w = 1: GCBC)')
        is_return = all(cell.scale == 1 for (cell_env, _), cell in cells.items() if cell_env == env)
        ax.set_ylabel('episode return' if is_return else 'success (%)')
        if not is_return:
            ax.set_ylim(-2, 102)
        ax.set_title(env, fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(folder, f'{env}.png')
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('roots', nargs='+', help='Folders to search for run directories.')
    parser.add_argument('--fixed_w', default='3', help='Guidance weight of the fixed-w column (paper: 3).')
    parser.add_argument('--out', default=None, help='Also write the table to this markdown file.')
    parser.add_argument('--figures', default=None, help='Folder for the success-vs-w figures.')
    parser.add_argument('--step', type=int, default=None,
                        help='Take every run\'s evaluation at this training step (default: its last one).')
    parser.add_argument('--window', type=int, default=None,
                        help='Score every run by the mean of its last this many evaluations (those up to --step), '
                             'steadier than one evaluation; runs with fewer are left out.')
    parser.add_argument('--versus', default=None,
                        help='Also compare every variant with this separately trained one (a label of the table, '
                             'e.g. gcfbc or flow_hgcbc), paired by seed.')
    args = parser.parse_args(argv)
    folders = find_runs(args.roots)
    if not folders:
        raise SystemExit(f'No run directories (summary.json + config.json) under {args.roots}.')
    if args.window is not None and args.window < 1:
        parser.error(f'--window must be at least 1, got {args.window}')
    cells = collect(folders, args.step, args.window)
    if not cells:
        at = f' at step {args.step}' if args.step is not None else ''
        enough = f' with {args.window} evaluations' if args.window else ''
        raise SystemExit(f'No run under {args.roots} was evaluated{at}{enough}.')
    text = table(cells, args.fixed_w)
    if args.window:
        text = f'Each run scored by the mean of its last {args.window} evaluations, the last at `steps`.\n\n' + text
    m = metric(cells)
    unit = {'success': 'Success (%)', 'return': 'Episode return', 'score': 'Success (%; return for exorl-*)'}[m]
    per_w = w_table(cells)
    if per_w:
        text += f'\n\n{unit} at each guidance weight, mean ± std over seeds:\n\n' + per_w
    gains = gain_table(cells)
    if gains:
        text += ('\n\nGain over w = 1 (GCBC; for CFGRL (IQL) and ExORL CFGRL, the policy conditioned on the positive '
                 f'label), paired by seed: {m}(w) − {m}(1), mean ± std over seeds, and the seeds that improved:\n\n'
                 + gains)
    if args.versus:
        versus = versus_table(cells, args.versus)
        if not versus:
            raise SystemExit(f'No variant {args.versus!r} with recorded seeds beside another variant; the labels '
                             f'are: {sorted({v for _, v in cells})}.')
        text += (f'\n\nAgainst the separately trained {args.versus}, paired by seed: {m}(variant) − {m}'
                 f'({args.versus}), mean ± std over seeds, and the seeds that improved:\n\n' + versus)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    if args.figures:
        for path in plot_success_vs_w(cells, args.figures):
            print('wrote', path)


if __name__ == '__main__':
    main()
