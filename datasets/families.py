"""Environment families: what differs between OGBench goal-conditioned datasets, OGBench single-task datasets and
ExORL tasks, one object each. A family loads its data, makes its evaluation environments, names its metric, says
whether it evaluates one fixed task and which agents' configs it changes. `family_of(name)` picks the family of a
dataset name; a new benchmark is one new family here.
"""
import os
import sys
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from configs.exorl import AWR_EXORL
from datasets import exorl, exorl_tasks
from datasets.files import CorruptDatasetError, dataset_paths, ensure_dataset
from datasets.names import DATASET_TYPES, OGBenchName, is_exorl, is_ogbench_name

Arrays = Dict[str, np.ndarray]


class Family:
    """What a benchmark family decides; subclasses fill it in."""

    name = ''
    metric = 'success'  # An episode's score: final-step success in {0, 1} (tables show %), or 'return'.
    single_task = False  # Whether every episode is of the one task the environment is made for.
    # agent -> config changes the family implies for it, applied to a new run's defaults (--config.<key> wins).
    config_overrides: Mapping[str, Mapping[str, Any]] = {}

    def check_name(self, env_name: str) -> None:
        """Raises ValueError naming the valid choices if `env_name` is not a dataset of this family."""
        raise NotImplementedError

    def load(self, env_name: str, dataset_dir: str | None = None, regenerate: bool = True, exorl_algo: str = '',
             **env_kwargs) -> Tuple[object, Arrays, Arrays]:
        """(evaluation-style env, train, val) in the compact layout the sampler reads."""
        raise NotImplementedError

    def make_env(self, env_name: str, max_episode_steps: int | None = None):
        """One evaluation environment; `max_episode_steps` overrides the episode limit (a debugging aid)."""
        raise NotImplementedError

    def eval_task_ids(self, env_name: str, requested: Tuple[int, ...]) -> Tuple[int, ...]:
        """The tasks an evaluation runs: those requested (single-task families: their one task)."""
        return requested


class OGBenchGoals(Family):
    """OGBench goal-conditioned datasets (`<env>-<type>[-oraclerep]-v0`): evaluated on the environment's five tasks,
    scored by final-step success."""

    name = 'OGBench goal-conditioned'

    def check_name(self, env_name: str) -> None:
        if not is_ogbench_name(env_name):
            import gymnasium

            bases = sorted({k for k in gymnasium.registry if k.endswith('-v0') and 'singletask' not in k
                            and any(w in k for w in ('maze', 'cube', 'scene', 'puzzle', 'soccer'))})
            raise ValueError(
                f'Unknown OGBench dataset {env_name!r}. A name is <env>-<type>[-oraclerep|-singletask[-taskN]]-v0 '
                f'with type in {DATASET_TYPES} and env one of: {", ".join(b[:-3] for b in bases)}. '
                'Example: pointmaze-medium-navigate-v0, cube-single-play-oraclerep-v0, puzzle-3x3-play-singletask-v0.')

    def load(self, env_name: str, dataset_dir: str | None = None, regenerate: bool = True, exorl_algo: str = '',
             **env_kwargs) -> Tuple[object, Arrays, Arrays]:
        """(env, train, val) in the compact layout (`valids` marks each trajectory's last row), read by ogbench's
        own loader. A missing dataset is downloaded, or regenerated offline when possible (files.ensure_dataset)."""
        import ogbench

        del exorl_algo
        self.check_name(env_name)
        if any(k in env_name for k in ('cube', 'scene', 'puzzle')):
            os.environ.setdefault('MUJOCO_GL', 'egl')  # Headless rendering for the manipulation environments.
        path = ensure_dataset(env_name, dataset_dir=dataset_dir, regenerate=regenerate)
        env, train, val = ogbench.make_env_and_datasets(env_name, dataset_path=path, compact_dataset=True,
                                                        **env_kwargs)
        train_path, val_path = dataset_paths(env_name, os.path.dirname(path))
        check_finite(train, train_path)
        check_finite(val, val_path)
        return env, train, val

    def make_env(self, env_name: str, max_episode_steps: int | None = None):
        import mujoco
        import ogbench

        # MuJoCo's default warning handler appends to MUJOCO_LOG.TXT in the working directory: print instead.
        mujoco.set_mju_user_warning(_log_mujoco_warning)
        kwargs = {} if max_episode_steps is None else {'max_episode_steps': int(max_episode_steps)}
        return ogbench.make_env_and_datasets(env_name, env_only=True, **kwargs)


class OGBenchSingleTask(OGBenchGoals):
    """OGBench single-task datasets (`<env>-<type>-singletask[-taskN]-v0`): rewards of one task, whose episodes
    the environment always resets to."""

    name = 'OGBench single-task'
    single_task = True

    def eval_task_ids(self, env_name: str, requested: Tuple[int, ...]) -> Tuple[int, ...]:
        env = self.make_env(env_name)
        env.reset()
        task_id = int(env.unwrapped.cur_task_id)
        env.close()
        return (task_id,)


class Exorl(Family):
    """ExORL's DeepMind Control tasks (`exorl-<domain>-<task>`, datasets.exorl): one task each, scored by episode
    return; AWR takes the authors' ExORL settings (configs/exorl.py)."""

    name = 'ExORL'
    metric = 'return'
    single_task = True
    config_overrides = {'awr': AWR_EXORL}

    def check_name(self, env_name: str) -> None:
        exorl_tasks.parse_env_name(env_name)

    def load(self, env_name: str, dataset_dir: str | None = None, regenerate: bool = True,
             exorl_algo: str = exorl.DEFAULT_ALGO, **env_kwargs) -> Tuple[object, Arrays, Arrays]:
        """(env, train, {}): `<dataset_dir>/<domain>/<exorl_algo>/buffer/` relabelled; no validation split."""
        del regenerate, env_kwargs
        env, train = exorl.load_dataset(env_name, dataset_dir, algo=exorl_algo)
        return env, train, {}

    def make_env(self, env_name: str, max_episode_steps: int | None = None):
        return exorl_tasks.ExorlEnv(env_name, max_episode_steps)

    def eval_task_ids(self, env_name: str, requested: Tuple[int, ...]) -> Tuple[int, ...]:
        return (exorl_tasks.ExorlEnv.cur_task_id,)


def family_of(env_name: str) -> Family:
    """The family of a dataset name (ExORL by its prefix, OGBench single-task by its variant, else OGBench)."""
    if is_exorl(env_name):
        return Exorl()
    return OGBenchSingleTask() if OGBenchName.parse(env_name).single_task else OGBenchGoals()


def load_env_and_datasets(env_name: str, dataset_dir: str | None = None, regenerate: bool = True,
                          exorl_algo: str = exorl.DEFAULT_ALGO, **env_kwargs) -> Tuple[object, Arrays, Arrays]:
    """(env, train, val) of any dataset name, as its family loads it."""
    return family_of(env_name).load(env_name, dataset_dir, regenerate, exorl_algo, **env_kwargs)


def check_dataset_name(env_name: str) -> None:
    """Fails at once (ValueError), naming the valid choices, if `env_name` is no dataset of any family."""
    family_of(env_name).check_name(env_name)


def check_finite(arrays: Arrays, path: str) -> None:
    """Raises CorruptDatasetError naming `path` if a float array holds NaN or inf: training on it would fail
    later with a non-finite loss that says nothing about the data."""
    for key, array in arrays.items():
        if np.issubdtype(array.dtype, np.floating):
            bad = np.flatnonzero(~np.isfinite(array).reshape(len(array), -1).all(axis=1))
            if bad.size:
                raise CorruptDatasetError(f'Dataset file {path} has non-finite values (NaN or inf) in {key!r}, in '
                                          f'{bad.size} rows (first: row {bad[0]}). Regenerate or re-download it.')


def _log_mujoco_warning(message: str) -> None:
    print(f'MuJoCo warning: {message}', file=sys.stderr, flush=True)
