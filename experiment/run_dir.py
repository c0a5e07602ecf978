"""A run directory: everything one training run (or one re-evaluation) records, never clobbered. Its layout is
described in docs/outputs.md. A new run always gets a new folder (created atomically with mkdir; a suffix avoids
name clashes); only `--resume` writes into an existing one. Every file is written to a temporary name and renamed.
"""
import csv
import datetime
import io
import json
import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from typing import Any, Dict, List, Optional

from agents import AGENTS, get_agent_class
from evaluation.plots import plot_success
from evaluation.results import EvalResult, seeds_csv_rows, seeds_summary
from experiment.checkpoints import CHECKPOINT_DIR

PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'ml_collections', 'ogbench', 'mujoco', 'gymnasium',
            'numpy')
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RunDir:
    FLAGS, CONFIG, META = 'flags.json', 'config.json', 'meta.json'
    EVAL_CSV, TRAIN_CSV, SUMMARY, PLOT = 'eval.csv', 'train.csv', 'summary.json', 'success.png'
    TENSORBOARD, VIDEOS, EVALS = 'tb', 'videos', 'evals'
    PART_OF = 'part_of_run'  # flags.json key of a seed_<k>/ folder: the multi-seed run it belongs to.

    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    @classmethod
    def create(cls, parent: str, name: str) -> 'RunDir':
        """A new, empty folder `parent/name` (or `name_1`, `name_2`, ... if taken): never an existing one."""
        parent = os.path.abspath(os.path.expanduser(parent))
        os.makedirs(parent, exist_ok=True)
        for k in range(1000):
            path = os.path.join(parent, name if k == 0 else f'{name}_{k}')
            try:
                os.mkdir(path)  # Atomic: two runs started in the same second cannot share a folder.
                return cls(path)
            except FileExistsError:
                continue
        raise FileExistsError(f'could not find a free run directory name for {name} in {parent}')

    @classmethod
    def open(cls, path: str) -> 'RunDir':
        """An existing run directory (one holding config.json), for --resume."""
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(os.path.join(path, cls.CONFIG)):
            raise FileNotFoundError(f'{path} is not a run directory (it has no {cls.CONFIG}).')
        run = cls(path)
        if os.path.isfile(run.file(cls.FLAGS)) and cls.PART_OF in run.read_json(cls.FLAGS):
            raise FileNotFoundError(f'{path} holds the results of one seed of the multi-seed run '
                                    f'{run.read_json(cls.FLAGS)[cls.PART_OF]}; use that run directory.')
        return run

    @staticmethod
    def default_name(seed: int, num_seeds: int = 1) -> str:
        seeds = f'{seed}' if num_seeds == 1 else f'{seed}-{seed + num_seeds - 1}'
        return f'{time.strftime("%Y%m%d-%H%M%S")}_s{seeds}'

    def seed_dir(self, seed: int) -> 'RunDir':
        """The results folder of one seed of a multi-seed run (created if missing)."""
        path = self.file(f'seed_{seed}')
        os.makedirs(path, exist_ok=True)
        return RunDir(path)

    def seed_dirs(self) -> List['RunDir']:
        return [RunDir(self.file(name)) for name in sorted(os.listdir(self.path))
                if name.startswith('seed_') and os.path.isdir(self.file(name))]

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def checkpoint_dir(self) -> str:
        return self.file(CHECKPOINT_DIR)

    # -- JSON files ---------------------------------------------------------------------------------------------
    def write_json(self, name: str, obj: Any) -> None:
        self._write_text(name, json.dumps(obj, indent=2, sort_keys=False) + '\n')

    def read_json(self, name: str) -> Any:
        with open(self.file(name)) as f:
            return json.load(f)

    def _write_text(self, name: str, text: str) -> None:
        tmp = self.file(f'.{name}.tmp')
        try:
            with open(tmp, 'w') as f:
                f.write(text)
            os.replace(tmp, self.file(name))
        except BaseException as e:  # A failed write (disk full) leaves no temporary file behind.
            if os.path.exists(tmp):
                os.remove(tmp)
            if isinstance(e, OSError) and e.errno and not e.filename:  # Name the file in the one-line error.
                raise OSError(e.errno, e.strerror, self.file(name)) from e
            raise

    def record_session(self, flags: Dict[str, Any], config: Dict[str, Any], start_step: int,
                       notes: Optional[List[str]] = None) -> None:
        """Writes flags.json and config.json (the settings in force) and appends this session to meta.json."""
        self.write_json(self.FLAGS, flags)
        self.write_json(self.CONFIG, config)
        meta = self.read_json(self.META) if os.path.exists(self.file(self.META)) else {'sessions': []}
        meta['sessions'].append({**environment_info(), 'start_step': int(start_step), 'notes': notes or []})
        self.write_json(self.META, meta)
        num_seeds = int(flags.get('num_seeds', 1))
        for seed in range(flags['seed'], flags['seed'] + num_seeds) if num_seeds > 1 else ():
            child = self.seed_dir(seed)
            child.write_json(self.FLAGS, {**flags, 'seed': seed, 'num_seeds': 1, self.PART_OF: self.path})
            child.write_json(self.CONFIG, config)

    # -- Evaluation results -------------------------------------------------------------------------------------
    def eval_rows(self) -> List[Dict[str, str]]:
        return self._read_rows(self.EVAL_CSV)

    def train_rows(self) -> List[Dict[str, str]]:
        return self._read_rows(self.TRAIN_CSV)

    def _read_rows(self, name: str) -> List[Dict[str, str]]:
        if not os.path.exists(self.file(name)):
            return []
        with open(self.file(name), newline='') as f:
            return list(csv.DictReader(f))

    def record_train(self, step: int, metrics: Dict[str, float]) -> None:
        """Appends one log step's training and validation metrics to train.csv."""
        row = {'step': str(step), **{k: f'{v:.6g}' for k, v in metrics.items()}}
        self._write_rows(self.train_rows() + [row], self.TRAIN_CSV)

    def evaluated_steps(self) -> set:
        return {int(row['step']) for row in self.eval_rows()}

    def discard_evals_after(self, step: int) -> None:
        """Drops eval.csv and train.csv rows past `step`: a resumed run redoes those steps (from the same
        parameters)."""
        for run, name in [(self, self.TRAIN_CSV)] + [(run, self.EVAL_CSV) for run in [self] + self.seed_dirs()]:
            rows = run._read_rows(name)
            kept = [row for row in rows if int(row['step']) <= step]
            if len(kept) != len(rows):
                run._write_rows(kept, name)

    def record_results(self, results: List[EvalResult], seeds: List[int], env_name: str,
                       agent: str) -> List[Dict[str, Any]]:
        """Records one evaluation (one result per seed) and returns its eval.csv rows (the mean over seeds)."""
        if len(results) == 1:
            self.record_eval(results[0], env_name, agent)
            return results[0].csv_rows()
        self.record_seed_evals(results, seeds, env_name, agent)
        return seeds_csv_rows(results)

    def record_eval(self, result: EvalResult, env_name: str, agent: str) -> None:
        """Appends the result to eval.csv, rewrites summary.json and the plot."""
        rows = self.eval_rows() + [{k: str(v) for k, v in row.items()} for row in result.csv_rows()]
        self._write_rows(rows)
        self.write_json(self.SUMMARY, result.summary(env_name, agent))
        plot_success(rows, self.file(self.PLOT), title=f'{agent} on {env_name} ({os.path.basename(self.path)})',
                     w1_label=w1_label(agent))

    def record_seed_evals(self, results: List[EvalResult], seeds: List[int], env_name: str, agent: str) -> None:
        """One evaluation of a multi-seed run: each seed's result into its seed_<k>/ folder, and the mean over
        seeds (± std) into this run's eval.csv, summary.json and plot."""
        for seed, result in zip(seeds, results):
            self.seed_dir(seed).record_eval(result, env_name, agent)
        rows = self.eval_rows() + [{k: str(v) for k, v in row.items()} for row in seeds_csv_rows(results)]
        self._write_rows(rows)
        self.write_json(self.SUMMARY, seeds_summary(results, seeds, env_name, agent))
        plot_success(rows, self.file(self.PLOT),
                     title=f'{agent} on {env_name}, mean of {len(seeds)} seeds ({os.path.basename(self.path)})',
                     w1_label=w1_label(agent))

    def _write_rows(self, rows: List[Dict[str, str]], name: str = EVAL_CSV) -> None:
        # Columns are the union over rows, so a resumed run evaluating other tasks still writes one table.
        columns = list(dict.fromkeys(k for row in rows for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, restval='')
        writer.writeheader()
        writer.writerows(rows)
        self._write_text(name, buffer.getvalue())

    def summary_writer(self, purge_step: int):
        """TensorBoard writer; `purge_step` hides events a killed session wrote past its last checkpoint."""
        from tensorboardX import SummaryWriter

        return SummaryWriter(self.file(self.TENSORBOARD), purge_step=purge_step or None)


def w1_label(agent: str) -> str:
    """What guidance weight 1 samples for `agent` (its class's `w1_label`), for the plot."""
    return get_agent_class(agent).w1_label if agent in AGENTS else 'w = 1'


def environment_info() -> Dict[str, Any]:
    """What produced a result: time, command and the folder it ran in, git revision, python and package versions,
    devices."""
    import jax

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        'time': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'argv': sys.argv,
        'cwd': os.getcwd(),  # Relative paths among the flags (--dataset_dir) mean something only with it.
        'host': socket.gethostname(),
        'git': _git_info(),
        'python': platform.python_version(),
        'packages': versions,
        'devices': [f'{d.platform}:{d.device_kind}' for d in jax.devices()],
    }


def _git_info() -> Dict[str, Any]:
    def git(*args):
        return subprocess.run(['git', *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        return {'revision': git('rev-parse', 'HEAD'),
                'dirty': bool(git('status', '--porcelain', '--untracked-files=no'))}
    except (OSError, subprocess.SubprocessError):
        return {'revision': None, 'dirty': None}
