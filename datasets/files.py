"""Where a dataset's files are, whether they are complete, and the errors training reports about them.

The training path imports only this module: `ensure_dataset` returns the file of any OGBench dataset name, checking
it when present, downloading it otherwise, and regenerating it (datasets.ogbench_gen.generate, imported only then)
when the download fails and the recipe allows (docs/datasets.md).
"""
from __future__ import annotations

import http.client
import os
import sys
import tempfile
import zipfile
import zlib
from typing import Any, Callable, Dict, Tuple

import numpy as np

DEFAULT_DATASET_DIR = '~/.ogbench/data'  # Where ogbench looks (ogbench.utils.DEFAULT_DATASET_DIR).
REQUIRED_KEYS = ('observations', 'actions', 'terminals')  # What ogbench.load_dataset cannot do without.
DATASET_TYPES = ('navigate', 'stitch', 'explore', 'play', 'noisy')  # Every OGBench dataset name has one.


class CorruptDatasetError(RuntimeError):
    """A dataset file exists but cannot be read completely; it is never overwritten automatically."""


class DatasetUnavailableError(RuntimeError):
    """A dataset is missing, cannot be downloaded here and is not regenerated; the message says what to do."""


class UnknownDatasetError(ValueError):
    """A dataset name this module cannot regenerate; the message says why and what to do instead."""


def base_dataset_name(name: str) -> str:
    """The dataset file stem behind an OGBench name, derived exactly as `ogbench.make_env_and_datasets` does.

    `-oraclerep` and `-singletask[-taskN]` variants read the plain dataset's file, so they need no file of their own:
    pointmaze-medium-navigate-oraclerep-v0 → pointmaze-medium-navigate-v0,
    cube-single-play-singletask-task2-v0 → cube-single-play-v0.
    """
    splits = name.split('-')
    if 'singletask' in splits:
        pos = splits.index('singletask')
        return '-'.join(splits[:pos] + splits[-1:])
    if 'oraclerep' in splits:
        return '-'.join(splits[:-2] + splits[-1:])
    return name


def dataset_paths(name: str, dataset_dir: str) -> Tuple[str, str]:
    """(train, val) file paths of a dataset (variants map to their base file)."""
    base = base_dataset_name(name)
    return os.path.join(dataset_dir, f'{base}.npz'), os.path.join(dataset_dir, f'{base}-val.npz')


def resolve_dataset_dir(dataset_dir: str | None) -> str:
    """The absolute dataset folder; None means ogbench's default, ~/.ogbench/data."""
    return os.path.abspath(os.path.expanduser(dataset_dir or DEFAULT_DATASET_DIR))


def _read_npy_header(f) -> Tuple[tuple, np.dtype]:
    major, _ = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(f)
    assert not fortran_order, 'shards are written C-ordered'
    return shape, dtype


def check_npz_file(path: str) -> Dict[str, tuple]:
    """Checks that `path` is a complete dataset file (zip directory, every CRC, required keys, equal row counts).

    Returns {key: shape}. Raises CorruptDatasetError naming the file otherwise; the file is left untouched.
    """
    advice = ('It was left untouched: inspect it, or delete it (and its train/-val partner) so that it can be '
              'downloaded or regenerated.')
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise CorruptDatasetError(f'Dataset file {path} is corrupt (bad CRC in {bad}). {advice}')
            shapes = {}
            for name in zf.namelist():
                with zf.open(name) as f:
                    shapes[name.removesuffix('.npy')] = _read_npy_header(f)[0]
    except CorruptDatasetError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, zlib.error) as e:
        raise CorruptDatasetError(f'Dataset file {path} is corrupt or truncated ({type(e).__name__}: {e}). '
                                  f'{advice}') from e
    missing = [k for k in REQUIRED_KEYS if k not in shapes]
    if missing:
        raise CorruptDatasetError(f'Dataset file {path} lacks the arrays {missing} (has {sorted(shapes)}). {advice}')
    rows = {k: s[0] if s else None for k, s in shapes.items()}
    if len(set(rows.values())) != 1:
        raise CorruptDatasetError(f'Dataset file {path} has arrays of different lengths {rows}. {advice}')
    return shapes


def _is_ogbench_name(dataset_name: str, registry) -> bool:
    """Whether a plain dataset name is <registered env>-<dataset type>-v0, as ogbench derives the env id."""
    splits = dataset_name.split('-')
    return len(splits) >= 3 and splits[-2] in DATASET_TYPES and '-'.join(splits[:-2] + splits[-1:]) in registry


def ensure_dataset(name: str, dataset_dir: str | None = None, regenerate: bool = True,
                   num_episodes: int | None = None, episode_length: int | None = None, seed: int = 0,
                   workers: int | None = None) -> str:
    """The train .npz path of any OGBench dataset name (variants included), making the files exist if needed.

    Existing files are checked (a corrupt or truncated one raises CorruptDatasetError naming it, never
    overwritten). Missing files are downloaded with ogbench; if that fails (no network) and the dataset is
    regenerable and regenerate=True, they are regenerated with the published recipe. A custom num_episodes /
    episode_length asks for a regeneration of that size, so the download (always published size) is skipped.
    """
    import gymnasium
    import ogbench

    base = base_dataset_name(name)
    if not _is_ogbench_name(base, gymnasium.registry):
        from datasets.ogbench_gen.recipes import get_recipe

        get_recipe(base)  # Not an OGBench name at all: fail at once, listing the valid ones, without a download.
    dataset_dir = resolve_dataset_dir(dataset_dir)
    train_path, val_path = dataset_paths(base, dataset_dir)
    present = [p for p in (train_path, val_path) if os.path.exists(p)]
    if len(present) == 2:
        check_npz_file(train_path)
        check_npz_file(val_path)
        return train_path
    if present:
        missing = train_path if present[0] == val_path else val_path
        raise CorruptDatasetError(f'Dataset {base} is incomplete: {present[0]} exists but {missing} does not '
                                  f'(an interrupted download?). Delete {present[0]} to download or regenerate the '
                                  f'pair, or copy the missing file into {dataset_dir}.')

    custom_size = num_episodes is not None or episode_length is not None
    failure = 'skipped (a custom size was asked for)'
    if not custom_size:
        try:
            ogbench.download_datasets([base], dataset_dir)
            check_npz_file(train_path)
            check_npz_file(val_path)
            return train_path
        except (OSError, http.client.HTTPException) as e:
            failure = f'failed ({type(e).__name__}: {e})'
    from datasets.ogbench_gen.generate import REGENERABLE, generate, get_recipe  # Only now: regeneration.

    if base not in REGENERABLE:
        try:
            get_recipe(base)
        except UnknownDatasetError as e:
            raise DatasetUnavailableError(f'Dataset {base} is not in {dataset_dir} and the download {failure}. '
                                          f'{e}') from None
    if not regenerate:
        raise DatasetUnavailableError(
            f'Dataset {base} is not in {dataset_dir} and the download {failure}. Regenerate it offline with '
            f'`python -m datasets.ogbench_gen.generate --dataset={base} --dataset_dir={dataset_dir}`, or copy '
            f'{base}.npz and {base}-val.npz there from a machine with internet.')
    print(f'Dataset {base}: not in {dataset_dir}, download {failure}. Regenerating it offline with OGBench\'s '
          f'environment and scripted oracle (published recipe, seed {seed}); this matches the published data in '
          f'distribution, not byte for byte.', file=sys.stderr, flush=True)
    try:
        return generate(base, num_episodes=num_episodes, episode_length=episode_length, dataset_dir=dataset_dir,
                        seed=seed, workers=workers)[0]
    except FileExistsError:
        # Another process (a second training run started alongside) finished the same files first: use them.
        check_npz_file(train_path)
        check_npz_file(val_path)
        return train_path


def write_atomic(path: str, write: Callable[[Any], None]) -> None:
    """Calls write(binary file) on a temporary file beside `path`, then renames it to `path`: readers see the old
    file or the whole new one, never a part. The temporary file is removed if `write` fails."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the data from other users.
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
