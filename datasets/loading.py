"""Resolve an OGBench dataset name to (environment, train, val) with ogbench's own loader, offline if needed.

Resolution order (docs/datasets.md): the file in the data directory → ogbench's download → regeneration with
OGBench's own environments and oracles (`datasets.ogbench_gen.generate`) when the recipe needs no expert.
`exorl-<domain>-<task>` names are ExORL's DeepMind Control tasks, read and relabelled by `datasets.exorl`.
"""
import os
from typing import Dict, Tuple

import numpy as np

Arrays = Dict[str, np.ndarray]

DATASET_TYPES = ('navigate', 'stitch', 'explore', 'play', 'noisy')


def env_id_for(dataset_name: str) -> str:
    """The gymnasium id of the environment behind an OGBench dataset name, derived as ogbench does."""
    splits = dataset_name.split('-')
    if 'singletask' in splits:
        pos = splits.index('singletask')
        return '-'.join(splits[: pos - 1] + splits[pos:])
    if 'oraclerep' in splits:
        return '-'.join(splits[:-3] + splits[-1:])
    return '-'.join(splits[:-2] + splits[-1:])


def _dataset_type(dataset_name: str) -> str:
    splits = dataset_name.split('-')
    if 'singletask' in splits:
        return splits[splits.index('singletask') - 1]
    return splits[-3] if 'oraclerep' in splits else (splits[-2] if len(splits) >= 2 else '')


def check_dataset_name(dataset_name: str) -> None:
    """Fails at once, naming the valid choices, if `dataset_name` is not an OGBench (or ExORL) dataset name."""
    if dataset_name.startswith('exorl-'):
        from datasets.exorl_tasks import parse_env_name

        parse_env_name(dataset_name)
        return
    import gymnasium
    import ogbench  # noqa: F401  (registers the OGBench environments)

    env_id = env_id_for(dataset_name)
    if env_id not in gymnasium.registry or _dataset_type(dataset_name) not in DATASET_TYPES:
        bases = sorted({k for k in gymnasium.registry if k.endswith('-v0') and 'singletask' not in k
                        and any(w in k for w in ('maze', 'cube', 'scene', 'puzzle', 'soccer'))})
        raise ValueError(
            f'Unknown OGBench dataset {dataset_name!r}. A name is <env>-<type>[-oraclerep|-singletask[-taskN]]-v0 '
            f'with type in {DATASET_TYPES} and env one of: {", ".join(b[:-3] for b in bases)}. '
            'Example: pointmaze-medium-navigate-v0, cube-single-play-oraclerep-v0, puzzle-3x3-play-singletask-v0.')


def load_env_and_datasets(dataset_name: str, dataset_dir: str | None = None, regenerate: bool = True,
                          exorl_algo: str = 'rnd', **env_kwargs) -> Tuple[object, Arrays, Arrays]:
    """(env, train, val) for any OGBench dataset name, compact layout (`valids` marks each trajectory's last row).

    A missing dataset is downloaded, or regenerated offline when possible (`datasets.files.ensure_dataset`).
    ExORL names read `<dataset_dir>/<domain>/<exorl_algo>/buffer/` (datasets/exorl.py); they have no validation
    split (val is empty).
    """
    if dataset_name.startswith('exorl-'):
        from datasets.exorl import load_dataset

        env, train = load_dataset(dataset_name, dataset_dir, algo=exorl_algo)
        return env, train, {}
    import ogbench

    from datasets.files import dataset_paths, ensure_dataset

    check_dataset_name(dataset_name)
    if 'cube' in dataset_name or 'scene' in dataset_name or 'puzzle' in dataset_name:
        os.environ.setdefault('MUJOCO_GL', 'egl')  # Headless rendering for the manipulation environments.
    path = ensure_dataset(dataset_name, dataset_dir=dataset_dir, regenerate=regenerate)
    env, train, val = ogbench.make_env_and_datasets(dataset_name, dataset_path=path, compact_dataset=True,
                                                    **env_kwargs)
    train_path, val_path = dataset_paths(dataset_name, os.path.dirname(path))
    check_finite(train, train_path)
    check_finite(val, val_path)
    return env, train, val


def check_finite(arrays: Arrays, path: str) -> None:
    """Raises CorruptDatasetError naming `path` if a float array holds NaN or inf: training on it would fail
    later with a non-finite loss that says nothing about the data."""
    from datasets.files import CorruptDatasetError

    for key, array in arrays.items():
        if np.issubdtype(array.dtype, np.floating):
            bad = np.flatnonzero(~np.isfinite(array).reshape(len(array), -1).all(axis=1))
            if bad.size:
                raise CorruptDatasetError(f'Dataset file {path} has non-finite values (NaN or inf) in {key!r}, in '
                                          f'{bad.size} rows (first: row {bad[0]}). Regenerate or re-download it.')
