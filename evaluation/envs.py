"""Evaluation environments: one per episode ("row"), stepped in this process or in parallel worker processes.

An env batch holds the environments of an evaluation's rows and resets, steps or renders any subset of them in one
call. `LocalEnvs` steps them in this process; `SubprocessEnvs` deals the rows round-robin to worker processes that
step their share in parallel. The physics of the environments is the larger part of an evaluation's time on a few
cores, and the workers run it on every core while the policy waits for the next step. Results are identical either
way: a row's episode depends only on its reset seed and actions. This module imports no JAX, so workers start fast.
"""
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from datasets.families import family_of
from datasets.seeding import legacy_global_seed  # ogbench draws start/goal jitter from the global np.random.

StepResult = Tuple[np.ndarray, np.ndarray, np.ndarray]  # (observations, episode over, score: success or return)


@dataclasses.dataclass(frozen=True)
class EnvFactory:
    """Creates one evaluation environment of a dataset name, as its family makes it (picklable, for workers).

    `max_episode_steps` overrides the episode limit (a debugging aid: the protocol uses OGBench's own limit).
    """

    env_name: str
    max_episode_steps: Optional[int] = None

    def __call__(self):
        return family_of(self.env_name).make_env(self.env_name, self.max_episode_steps)


def as_policy_input(x) -> np.ndarray:
    """Float observations go to the policy as float32 (as in the datasets); pixel (integer) ones unchanged."""
    x = np.asarray(x)
    return x.astype(np.float32) if np.issubdtype(x.dtype, np.floating) else x


def reset_episode(env, task_id: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Resets `env` to task `task_id` reproducibly (an ExORL task has one and ignores it); returns (observation,
    goal)."""
    task_id, seed = int(task_id), int(seed)  # gymnasium wants Python ints.
    # The maze reset takes random actions from the action space and jitters start/goal with the global np.random:
    # both are seeded with the environment so that the episode depends on `seed` only.
    env.action_space.seed(seed)
    with legacy_global_seed(seed):
        ob, info = env.reset(seed=seed, options=dict(task_id=task_id, render_goal=False))
    return as_policy_input(ob), as_policy_input(info['goal'])


def step_episode(env, action: np.ndarray) -> Tuple[np.ndarray, bool, float]:
    """One environment step; returns (observation, episode over, the episode's score if over): OGBench's final-step
    success, or the return so far where the environment reports one (ExORL tasks, `episode_return`)."""
    ob, _, terminated, truncated, info = env.step(action)
    score = info['episode_return'] if 'episode_return' in info else info['success']
    return as_policy_input(ob), bool(terminated or truncated), float(score)


def _reset_all(envs: Sequence, task_ids: Sequence[int], seeds: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    obs, goals = zip(*(reset_episode(env, t, s) for env, t, s in zip(envs, task_ids, seeds)))
    return np.stack(obs), np.stack(goals)


def _step_all(envs: Sequence, actions: np.ndarray) -> StepResult:
    obs, done, success = zip(*(step_episode(env, action) for env, action in zip(envs, actions)))
    return np.stack(obs), np.array(done, bool), np.array(success, np.float32)


class LocalEnvs:
    """The rows' environments, in this process. `envs` is the list of environments, by row."""

    def __init__(self, make_env: Callable[[], object]):
        self.make_env = make_env
        self.envs: List[object] = []

    def resize(self, num_rows: int) -> None:
        """Makes sure rows 0..num_rows-1 exist (environments are created once and reused across evaluations)."""
        while len(self.envs) < num_rows:
            self.envs.append(self.make_env())

    def reset(self, rows: np.ndarray, task_ids: np.ndarray, seeds: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return _reset_all([self.envs[r] for r in rows], task_ids, seeds)

    def step(self, rows: np.ndarray, actions: np.ndarray) -> StepResult:
        return _step_all([self.envs[r] for r in rows], actions)

    def render(self, rows: np.ndarray) -> List[np.ndarray]:
        return [np.asarray(self.envs[r].render()) for r in rows]

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []


def _serve(conn) -> None:
    """A worker's loop: receives its environment factory, then runs the parent's commands on its share of rows."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle.
    local = LocalEnvs(conn.recv())
    commands = {'resize': local.resize, 'reset': local.reset, 'step': local.step, 'render': local.render}
    while True:
        try:
            command, args = conn.recv()
        except (EOFError, OSError):  # The parent is gone (even killed): exit.
            break
        if command == 'close':
            break
        try:
            answer = ('ok', commands[command](*args))
        except Exception:  # Reported to the parent, which raises it.
            answer = ('error', traceback.format_exc())
        try:
            conn.send(answer)
        except OSError:  # The parent stopped mid-command (a signal) and closed its end: exit quietly.
            break
    local.close()


class SubprocessEnvs:
    """The rows' environments in `num_workers` processes; row r lives in worker r % num_workers.

    Every call sends each involved worker its rows, then collects the answers: the workers run concurrently.
    A worker is a fresh `python -m evaluation.envs` talking over a socket pair: unlike multiprocessing's spawn it
    does not re-import the parent's main module (main.py, hence JAX), so it starts fast and stays small.
    Workers ignore Ctrl-C (the parent stops at a safe point) and exit when the parent closes them or dies.
    """

    def __init__(self, make_env: Callable[[], object], num_workers: int):
        if num_workers < 1:
            raise ValueError(f'num_workers must be positive, got {num_workers}.')
        self._conns, self._procs = [], []
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # The parent's imports.
        for _ in range(num_workers):
            parent, child = socket.socketpair()
            self._procs.append(subprocess.Popen([sys.executable, '-m', 'evaluation.envs', str(child.fileno())],
                                                pass_fds=(child.fileno(),), env=env))
            child.close()
            self._conns.append(Connection(parent.detach()))
            self._conns[-1].send(make_env)

    @property
    def num_workers(self) -> int:
        return len(self._conns)

    def _call(self, command: str, rows: np.ndarray, *per_row: np.ndarray) -> List[Tuple[np.ndarray, object]]:
        """Runs `command` on the workers holding `rows`; returns (positions in `rows`, answer) per worker."""
        k = self.num_workers
        jobs = []
        for w in range(k):
            positions = np.flatnonzero(rows % k == w)
            if positions.size:
                self._conns[w].send((command, (rows[positions] // k, *(a[positions] for a in per_row))))
                jobs.append((w, positions))
        return [(positions, self._receive(w)) for w, positions in jobs]

    def _receive(self, worker: int):
        try:
            status, answer = self._conns[worker].recv()
        except (EOFError, OSError):
            raise RuntimeError(f'evaluation worker {worker} died (exit code {self._procs[worker].poll()}).') from None
        if status == 'error':
            raise RuntimeError(f'evaluation worker {worker} failed:\n{answer}')
        return answer

    def resize(self, num_rows: int) -> None:
        for w, conn in enumerate(self._conns):
            conn.send(('resize', (len(range(w, num_rows, self.num_workers)),)))
        for w in range(self.num_workers):
            self._receive(w)

    def reset(self, rows: np.ndarray, task_ids: np.ndarray, seeds: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return self._gather(self._call('reset', rows, task_ids, seeds), len(rows))

    def step(self, rows: np.ndarray, actions: np.ndarray) -> StepResult:
        return self._gather(self._call('step', rows, actions), len(rows))

    def render(self, rows: np.ndarray) -> List[np.ndarray]:
        frames = [None] * len(rows)
        for positions, answer in self._call('render', rows):
            for p, frame in zip(positions, answer):
                frames[p] = frame
        return frames

    @staticmethod
    def _gather(answers, size: int) -> tuple:
        """Reassembles per-worker tuples of arrays into tuples of arrays in the order of the (non-empty) rows."""
        outputs = None
        for positions, answer in answers:
            if outputs is None:
                outputs = [np.empty((size, *a.shape[1:]), a.dtype) for a in answer]
            for out, a in zip(outputs, answer):
                out[positions] = a
        return tuple(outputs)

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(('close', ()))
            except (BrokenPipeError, OSError):
                pass
        for conn, proc in zip(self._conns, self._procs):
            conn.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._conns, self._procs = [], []


def _rss_bytes() -> Optional[int]:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return None


def available_memory_bytes() -> Optional[int]:
    """MemAvailable of /proc/meminfo (None where there is no such file)."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def env_memory_bytes(make_env: Callable[[], object], samples: int = 2) -> Optional[int]:
    """Memory one environment takes, measured in this process: the resident-size growth while `samples` more are
    created and reset after a first one (which pays for imports and shared assets). None where unmeasurable."""
    first = make_env()
    reset_episode(first, task_id=1, seed=0)
    before = _rss_bytes()
    envs = [make_env() for _ in range(samples)]
    for env in envs:
        reset_episode(env, task_id=1, seed=0)
    after = _rss_bytes()
    for env in [first] + envs:
        env.close()
    if before is None or after is None:
        return None
    return max(after - before, 0) // samples


def max_envs_for_memory(make_env: Callable[[], object], fraction: float = 0.5) -> Optional[int]:
    """How many environments fit in `fraction` of the available memory (None: no limit known). OGBench's
    manipulation environments take 25–170 MB each, so one per row of a large evaluation can exhaust a machine."""
    per_env, available = env_memory_bytes(make_env), available_memory_bytes()
    if per_env is None or available is None:
        return None
    return max(1, int(fraction * available) // max(per_env, 2**20))  # At least 1 MiB each: growth can read 0.


def default_workers(num_rows: int) -> int:
    """One worker per core, but no more workers than rows; 0 (this process) when a single core is available."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
    return 0 if cores < 2 else min(cores, num_rows)


def make_env_batch(make_env: Callable[[], object], num_workers: int):
    """`LocalEnvs` for num_workers = 0, else `SubprocessEnvs` (make_env must then be picklable, e.g. EnvFactory)."""
    return LocalEnvs(make_env) if num_workers == 0 else SubprocessEnvs(make_env, num_workers)


if __name__ == '__main__':  # A SubprocessEnvs worker; argv[1] is its end of the socket pair.
    _serve(Connection(int(sys.argv[1])))
