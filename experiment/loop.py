"""The training loop: compiled chunks of updates, with logging, evaluation and checkpoints between chunks.

Determinism: chunk boundaries are the multiples of the chunk length (the largest divisor of gcd(log, eval, save
intervals) not above MAX_CHUNK) and the final step. Every checkpoint lies on a boundary, so a run resumed from any
of them executes exactly the chunks of an uninterrupted run and ends with bitwise the same parameters on the same
machine. Evaluation draws its own seeds from (seed, step) and never touches the training RNGs.

Stopping: Ctrl-C finishes the current chunk (or environment step of an evaluation), saves a checkpoint and exits
with status 130; a second Ctrl-C aborts at once. SIGTERM and SIGUSR1 (a cluster's preemption or time-limit
warning) do the same but exit with status 75, which asks the launcher to requeue the run (scripts/slurm_cell.sh).
A non-finite training metric stops the run naming the step; that state is not saved, so the last checkpoint stays
the last good one.
"""
import contextlib
import dataclasses
import math
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from evaluation.results import EvalResult, format_table, metric_of
from experiment.checkpoints import Checkpointer
from experiment.run_dir import RunDir
from experiment.trainer import ChunkedTrainer

MAX_CHUNK = 1000  # Updates per compiled dispatch at most: bounds the latency of Ctrl-C and of the progress bar.
EXIT_OK, EXIT_NON_FINITE, EXIT_INTERRUPTED = 0, 1, 130
EXIT_REQUEUE = 75  # sysexits' EX_TEMPFAIL: stopped by the cluster, continue with --resume.

# (agent, step, check_stop) -> one result per seed (evaluation.rollout.Evaluator).
EvaluateFn = Callable[[Any, int, Callable[[], None]], List[EvalResult]]


@dataclasses.dataclass(frozen=True)
class Schedule:
    train_steps: int
    log_interval: int
    eval_interval: int
    save_interval: int
    max_chunk: int = MAX_CHUNK

    @property
    def chunk(self) -> int:
        """The largest divisor of gcd(intervals) not above max_chunk: every interval is a whole number of chunks."""
        g = math.gcd(self.log_interval, self.eval_interval, self.save_interval)
        return max(d for d in range(1, min(g, self.max_chunk) + 1) if g % d == 0)

    def chunk_end(self, step: int) -> int:
        return min((step // self.chunk + 1) * self.chunk, self.train_steps)

    def due(self, step: int, interval: int) -> bool:
        return step % interval == 0 or step == self.train_steps


class StopRequested(Exception):
    """A first Ctrl-C, SIGTERM or SIGUSR1 arrived: stop at the next safe point and save."""


class NonFiniteMetric(RuntimeError):
    """A training metric, the parameters about to be saved or the policy's sampled actions became NaN or
    infinite."""


class GracefulStop:
    """Turns the first Ctrl-C, SIGTERM or SIGUSR1 into a request polled at safe points (`check`); a second Ctrl-C
    aborts at once (a second SIGTERM does not: the cluster sends it again only to kill).

    A plain KeyboardInterrupt could arrive while the agent's buffers are donated to a running chunk, leaving nothing
    to save; polling between chunks always sees a complete agent.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.requested: Optional[int] = None  # The signal that asked to stop.
        self._previous = {}

    @property
    def exit_status(self) -> int:
        return EXIT_INTERRUPTED if self.requested == signal.SIGINT else EXIT_REQUEUE

    def __enter__(self) -> 'GracefulStop':
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)

    def _handle(self, signum, frame) -> None:
        if self.requested is not None:
            if signum == signal.SIGINT == self.requested:
                raise KeyboardInterrupt
            return
        self.requested = signum
        name = 'Ctrl-C' if signum == signal.SIGINT else signal.Signals(signum).name
        again = ' (press again to abort at once)' if signum == signal.SIGINT else ''
        tqdm.write(f'{name}: stopping at the next safe point to save a checkpoint{again}.')

    def check(self) -> None:
        if self.requested is not None:
            raise StopRequested


class _NoWriter:
    """The summary writer of a process that writes nothing."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass


class MetricMeans:
    """Means of the per-step training metrics since the last log (and over seeds: metrics of stacked seeds have
    shape (S, K), a single run's (K,))."""

    def __init__(self):
        self.sums: Dict[str, float] = {}
        self.count = 0

    def add(self, infos: Dict[str, np.ndarray]) -> None:
        steps = 0
        for key, values in infos.items():
            steps = values.shape[-1]
            seed_mean_sum = float(np.sum(values, dtype=np.float64)) / (values.size // max(steps, 1))
            self.sums[key] = self.sums.get(key, 0.0) + seed_mean_sum
        self.count += steps

    def pop(self) -> Dict[str, float]:
        means = {key: total / max(self.count, 1) for key, total in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


def check_finite(infos: Dict[str, np.ndarray], first_step: int, seeds: Optional[Sequence[int]] = None) -> None:
    """Raises NonFiniteMetric naming the first update (1-based step count) whose metric is NaN or infinite, and
    its seed when the metrics are of stacked seeds (shape (S, K))."""
    for key, values in infos.items():
        bad = np.argwhere(~np.isfinite(values))
        if bad.size:
            where = bad[np.argmin(bad[:, -1])]  # The earliest step over all seeds.
            seed = f' of seed {seeds[where[0]]}' if values.ndim == 2 and seeds is not None else ''
            raise NonFiniteMetric(f'non-finite {key} ({values[tuple(where)]}) at step '
                                  f'{first_step + int(where[-1]) + 1}{seed}')


class Saver:
    """Saves checkpoints that are good to resume from: it refuses (NonFiniteMetric) non-finite parameters, and a
    policy that samples non-finite actions (`check_policy(agent, step)`), so the last checkpoint stays the last good
    one. `meta` goes into every checkpoint (agent, env_name, seed, config) so that it can be re-evaluated alone."""

    def __init__(self, checkpointer: Checkpointer, meta: Dict[str, Any],
                 check_policy: Optional[Callable[[Any, int], None]] = None):
        self.checkpointer, self.meta, self.check_policy = checkpointer, meta, check_policy

    def save(self, step: int, agent: Any, sampler_rng: jax.Array) -> None:
        # Metrics are computed before each update, so the last update of a chunk could break the parameters
        # unseen: check them before they become the "last good" checkpoint.
        if not all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(agent.network.params)):
            raise NonFiniteMetric(f'non-finite parameters at step {step}')
        if self.check_policy is not None:
            self.check_policy(agent, step)
        self.checkpointer.save(step, agent, sampler_rng, self.meta)

    def last(self, run: RunDir, verified: bool = False) -> str:
        """Where the last checkpoint is, for a message; `verified`: the newest that reads back and matches its
        digest."""
        latest = self.checkpointer.newest_verified_step() if verified else self.checkpointer.latest_step()
        if latest is None:
            return f'none (--resume={run.path} would start from step 0)'
        return f'step {latest} in {self.checkpointer.directory}' + (' (verified)' if verified else '')


def train_loop(agent: Any, sampler_rng: jax.Array, step: int, *, run: RunDir, trainer: ChunkedTrainer,
               saver: Saver, evaluate: Optional[EvaluateFn], schedule: Schedule, seeds: Sequence[int] = (0,),
               env_name: str = '', agent_name: str = '', writes: bool = True, progress: bool = True) -> int:
    """Trains from `step` to `schedule.train_steps`: a compiled chunk, then on schedule a log, an evaluation and a
    checkpoint, until done or stopped (module docstring); returns the process exit status.

    `evaluate` is None when the run evaluates nothing. `writes=False` (every process but the first of a
    multi-process job): train and take part in checkpoint saves, but write no run-directory file, log nothing and
    show no progress.
    """
    if writes:
        run.discard_evals_after(step)
    writer_context = run.summary_writer(purge_step=step) if writes else contextlib.nullcontext(_NoWriter())
    try:
        with GracefulStop() as stop, writer_context as writer, \
                tqdm(total=schedule.train_steps, initial=step, unit='step', desc='train', dynamic_ncols=True,
                     disable=not (progress and writes)) as bar:
            try:
                try:
                    # A checkpoint saved by Ctrl-C during an evaluation lacks that evaluation: do it first.
                    if evaluate and step > 0 and schedule.due(step, schedule.eval_interval) \
                            and step not in run.evaluated_steps():
                        record_evaluation(evaluate(agent, step, stop.check), step, run, writer, seeds, env_name,
                                          agent_name)
                    means, last_log = MetricMeans(), (step, time.perf_counter())
                    while step < schedule.train_steps:
                        stop.check()
                        start, end = step, schedule.chunk_end(step)
                        # The chunk consumes (donates) the agent: only its result is used from here on.
                        agent, sampler_rng, infos = trainer.run(agent, sampler_rng, end - start)
                        step = end
                        infos = jax.device_get(infos)
                        check_finite(infos, start, seeds)  # A non-finite state is never saved: stop here.
                        means.add(infos)
                        bar.update(step - bar.n)
                        if schedule.due(step, schedule.log_interval):
                            last_log = log_training(means.pop(), step, last_log, trainer.validate(agent, step),
                                                    run if writes else None, writer, bar)
                        if evaluate and schedule.due(step, schedule.eval_interval):
                            record_evaluation(evaluate(agent, step, stop.check), step, run, writer, seeds, env_name,
                                              agent_name)
                        if schedule.due(step, schedule.save_interval):
                            saver.save(step, agent, sampler_rng)
                except StopRequested:
                    saver.save(step, agent, sampler_rng)  # Like every save, refuses non-finite parameters.
                    bar.close()
                    print(f'Stopped at step {step}; checkpoint saved. Continue with --resume={run.path}')
                    return stop.exit_status
            except NonFiniteMetric as e:
                bar.close()
                print(f'Training stopped: {e}. The non-finite state was not saved; last good checkpoint: '
                      f'{saver.last(run, verified=True)}.')
                return EXIT_NON_FINITE
    except KeyboardInterrupt:  # A second Ctrl-C: abort without saving.
        print(f'Aborted. Last checkpoint: {saver.last(run)}.', file=sys.stderr)
        return EXIT_INTERRUPTED
    if writes:
        print_final_table(run)
    return EXIT_OK


def log_training(means: Dict[str, float], step: int, last_log: tuple, validation: Dict[str, float],
                 run: Optional[RunDir], writer, bar) -> tuple:
    """Logs the training metrics' means since the last log, steps/s and the validation metrics (TensorBoard,
    train.csv, the progress bar); returns (step, time) of this log."""
    last_step, last_time = last_log
    now = time.perf_counter()
    means['steps_per_sec'] = (step - last_step) / max(now - last_time, 1e-9)
    for key, value in means.items():
        writer.add_scalar(f'train/{key}', value, step)
    for key, value in validation.items():
        writer.add_scalar(f'val/{key}', value, step)
    if run is not None:
        run.record_train(step, {**means, **{f'val_{k}': v for k, v in validation.items()}})
    bar.set_postfix({k: f'{v:.4g}' for k, v in means.items() if k.endswith('loss')}, refresh=False)
    return step, now


def record_evaluation(results: List[EvalResult], step: int, run: RunDir, writer, seeds: Sequence[int],
                      env_name: str, agent_name: str) -> None:
    """Writes one evaluation (eval.csv, summary.json, plot, TensorBoard) and prints its line."""
    rows = run.record_results(results, list(seeds), env_name, agent_name)
    for row in rows:
        for key, value in row.items():
            if key not in ('step', 'guidance'):
                writer.add_scalar(f'eval/{key}/w={row["guidance"]}', value, step)
    metric = metric_of(rows[0])
    summary = ', '.join(f'w={row["guidance"]}: {row[f"overall_{metric}"]:.2f}' for row in rows)
    tqdm.write(f'step {step}: {metric} {summary}' + (f' (mean of {len(results)} seeds)' if len(results) > 1 else ''))


def print_final_table(run: RunDir) -> None:
    rows = run.eval_rows()
    if rows:
        last = max(int(row['step']) for row in rows)
        print(format_table([row for row in rows if int(row['step']) == last]))
    print(f'Run directory: {run.path}')
