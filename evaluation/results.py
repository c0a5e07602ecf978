"""Evaluation results: per-episode scores (success, or return on ExORL) of a guidance sweep, and the tables, rows
and summary made from them.

Guidance keys: a guided agent's weight w is keyed by `f'{w:g}'` ('0', '1', '1.5', ...); an agent without guidance
reports exactly one entry keyed 'none' (it has no weight; in particular it is not "w = 1" of anything).
"""
import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

UNGUIDED_KEY = 'none'


def guidance_key(weight: Optional[float]) -> str:
    """The string under which a guidance weight is reported (summary.json, eval.csv, TensorBoard tags)."""
    return UNGUIDED_KEY if weight is None else f'{weight:g}'


def task_column(task_id: int) -> str:
    return f'task{task_id}'


def metric_of(row: Mapping[str, object]) -> str:
    """The score an eval.csv / table row holds: 'success' (OGBench, in [0, 1]) or 'return' (ExORL episode return)."""
    return 'return' if 'overall_return' in row else 'success'


def task_columns(row: Mapping[str, object]) -> List[str]:
    """The task columns an eval.csv row has a value for (the file's columns are the union over evaluations)."""
    return sorted((k for k in row if k.startswith('task') and row[k] != ''), key=lambda k: int(k[4:]))


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Outcomes of T tasks × E episodes at each of W guidance weights.

    Attributes:
        step: training step of the evaluated parameters.
        task_ids: OGBench task ids (1-based), in evaluation order.
        guidance: the weights, or (None,) for an agent without guidance.
        scores: (W, T, E) score of each episode, of the kind `metric` names.
        metric: 'success' (the final step's `info['success']`, in {0, 1}) or 'return' (the episode's return, ExORL);
            tables, rows and summary name their columns by it.
        lengths: (W, T, E) environment steps each episode took.
        nonfinite: (W, T, E) whether the episode ended on a non-finite action (then a failure); None: none did.
    """

    step: int
    task_ids: Tuple[int, ...]
    guidance: Tuple[Optional[float], ...]
    scores: np.ndarray
    lengths: np.ndarray
    nonfinite: Optional[np.ndarray] = None
    metric: str = 'success'

    @property
    def num_nonfinite(self) -> int:
        """Episodes that ended on a non-finite action (counted as failures)."""
        return 0 if self.nonfinite is None else int(np.sum(self.nonfinite))

    @property
    def keys(self) -> List[str]:
        return [guidance_key(w) for w in self.guidance]

    @property
    def task_scores(self) -> np.ndarray:
        """(W, T) mean score of each task at each weight (a success rate, or a mean return)."""
        return self.scores.mean(axis=-1)

    @property
    def overall_scores(self) -> np.ndarray:
        """(W,) mean over tasks (every task has the same number of episodes)."""
        return self.task_scores.mean(axis=-1)

    def summary(self, env_name: str, agent: str) -> Dict:
        """summary.json's schema (docs/outputs.md): success in [0, 1] per weight, overall and per task (`return` in
        place of `success` for ExORL runs); plus `nonfinite_episodes` when some episode's actions were not finite."""
        m = self.metric
        summary = {
            'env_name': env_name,
            'agent': agent,
            'step': int(self.step),
            'guidance': {
                key: {f'overall_{m}': float(self.overall_scores[i]),
                      f'task_{m}': {task_column(t): float(self.task_scores[i, j])
                                     for j, t in enumerate(self.task_ids)}}
                for i, key in enumerate(self.keys)
            },
        }
        if self.num_nonfinite:
            summary['nonfinite_episodes'] = self.num_nonfinite
        return summary

    def csv_rows(self) -> List[Dict[str, object]]:
        """One eval.csv row per weight: step, guidance, overall_success (overall_return), one column per task."""
        return [{'step': int(self.step), 'guidance': key, f'overall_{self.metric}': float(self.overall_scores[i]),
                 **{task_column(t): float(self.task_scores[i, j]) for j, t in enumerate(self.task_ids)}}
                for i, key in enumerate(self.keys)]

    def table(self) -> str:
        """A one-screen text table: a row per weight, a column per task, and the overall mean (in %)."""
        return format_table(self.csv_rows(), f'{self.scores.shape[-1]} episodes per task'
                            + nonfinite_note([self]))


def nonfinite_note(results: Sequence[EvalResult]) -> str:
    """'' or ', N episodes with non-finite actions (failures)' for a table title or a log line."""
    count = sum(r.num_nonfinite for r in results)
    return f', {count} of {sum(r.scores.size for r in results)} episodes with non-finite actions (failures)' \
        if count else ''


def seeds_csv_rows(results: Sequence[EvalResult]) -> List[Dict[str, object]]:
    """eval.csv rows of one evaluation of several seeds: the mean over seeds of each column, plus the standard
    deviation over seeds of the overall success (population std, as the paper's ± and scripts/aggregate.py)."""
    per_seed = [r.csv_rows() for r in results]
    m = results[0].metric
    rows = []
    for i, first in enumerate(per_seed[0]):
        overall = np.array([rows_k[i][f'overall_{m}'] for rows_k in per_seed])
        row = {k: (v if k in ('step', 'guidance') else float(np.mean([rows_k[i][k] for rows_k in per_seed])))
               for k, v in first.items()}
        rows.append({**row, f'overall_{m}_std': float(overall.std())})
    return rows


def seeds_summary(results: Sequence[EvalResult], seeds: Sequence[int], env_name: str, agent: str) -> Dict:
    """summary.json of a multi-seed run (docs/outputs.md): success (or return) averaged over seeds, plus `seeds` and,
    per weight, the std over seeds and each seed's overall value."""
    summary, m = results[0].summary(env_name, agent), results[0].metric
    for i, key in enumerate(results[0].keys):
        overall = np.array([float(r.overall_scores[i]) for r in results])
        summary['guidance'][key] = {
            f'overall_{m}': float(overall.mean()),
            f'overall_{m}_std': float(overall.std()),
            f'overall_{m}_per_seed': [float(v) for v in overall],
            f'task_{m}': {task_column(t): float(np.mean([r.task_scores[i, j] for r in results]))
                           for j, t in enumerate(results[0].task_ids)},
        }
    summary['seeds'] = [int(s) for s in seeds]
    if any(r.num_nonfinite for r in results):
        summary['nonfinite_episodes'] = sum(r.num_nonfinite for r in results)
    return summary


def format_table(rows: Sequence[Mapping[str, object]], note: str = '') -> str:
    """The success table of eval.csv-style rows of ONE evaluation step (values in [0, 1], printed in %); rows of a
    multi-seed run (`seeds_csv_rows`) get a ± std column."""
    tasks, m = task_columns(rows[0]), metric_of(rows[0])
    with_std = rows[0].get(f'overall_{m}_std', '') != ''
    header = ['w'] + tasks + ['overall'] + (['± std'] if with_std else [])
    columns = tasks + [f'overall_{m}'] + ([f'overall_{m}_std'] if with_std else [])
    scale = 100 if m == 'success' else 1  # Success in %, returns as they are.
    lines = [[str(row['guidance'])] + [f'{scale * float(row[k]):.1f}' for k in columns] for row in rows]
    widths = [max(len(line[c]) for line in [header] + lines) for c in range(len(header))]
    fmt = lambda line: '  '.join(cell.rjust(width) for cell, width in zip(line, widths))
    rule = '-' * len(fmt(header))
    title = ('Success (%)' if m == 'success' else 'Return') + f' at step {rows[0]["step"]}'
    title += f', {note}' if note else ''
    return '\n'.join([title, rule, fmt(header), rule] + [fmt(line) for line in lines] + [rule])
