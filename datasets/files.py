"""Where a dataset's files are, whether they are complete, and the errors training reports about them.

`ensure_dataset` returns the file of any OGBench dataset name, checking it when present, downloading it otherwise,
and regenerating it when the download fails and the recipe allows (docs/datasets.md): training runs the data
factory's command for that, and never imports the factory.
"""
from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib
from typing import Any, Callable, Dict, Tuple

import numpy as np

from datasets.names import base_dataset_name

DEFAULT_DATASET_DIR = '~/.ogbench/data'  # Where ogbench looks (ogbench.utils.DEFAULT_DATASET_DIR).
REQUIRED_KEYS = ('observations', 'actions', 'terminals')  # What ogbench.load_dataset cannot do without.
GENERATE_COMMAND = 'datasets.ogbench_gen.generate'  # The data factory's regeneration command (python -m).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (base name, num_episodes=, episode_length=, dataset_dir=, seed=, workers=) -> train path.
Regenerate = Callable[..., str]


class CorruptDatasetError(RuntimeError):
    """A dataset file exists but cannot be read completely; it is never overwritten automatically."""


class DatasetUnavailableError(RuntimeError):
    """A dataset is missing, cannot be downloaded here and is not regenerated; the message says what to do."""


class UnknownDatasetError(ValueError):
    """A dataset name this module cannot regenerate; the message says why and what to do instead."""


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


def ensure_dataset(name: str, dataset_dir: str | None = None, regenerate: bool | Regenerate = True,
                   num_episodes: int | None = None, episode_length: int | None = None, seed: int = 0,
                   workers: int | None = None) -> str:
    """The train .npz path of any OGBench dataset name (variants included), making the files exist if needed.

    Existing files are checked (a corrupt or truncated one raises CorruptDatasetError naming it, never
    overwritten). Missing files are downloaded with ogbench; if that fails (no network) they are regenerated with
    the published recipe: by the data factory's command in a child process (`regenerate=True`, what training does:
    it never imports the factory), by the function `regenerate` (the factory's own
    `datasets.ogbench_gen.ensure.ensure_dataset`), or not at all (False). A custom num_episodes / episode_length
    asks for a regeneration of that size, so the download (always published size) is skipped.
    """
    import ogbench

    base = base_dataset_name(name)
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
    unavailable = f'Dataset {base} is not in {dataset_dir} and the download {failure}.'
    if regenerate is False:
        raise DatasetUnavailableError(
            f'{unavailable} Regenerate it offline with `python -m {GENERATE_COMMAND} --dataset={base} '
            f'--dataset_dir={dataset_dir}`, or copy {base}.npz and {base}-val.npz there from a machine with internet.')
    sizes = dict(num_episodes=num_episodes, episode_length=episode_length, dataset_dir=dataset_dir, seed=seed,
                 workers=workers)
    if regenerate is True:
        print(f'{unavailable} Regenerating it offline with OGBench\'s environment and scripted oracle (published '
              f'recipe, seed {seed}; `python -m {GENERATE_COMMAND}`); this matches the published data in '
              'distribution, not byte for byte.', file=sys.stderr, flush=True)
    try:
        return (_run_generate_command if regenerate is True else regenerate)(base, **sizes)
    except UnknownDatasetError as e:
        raise DatasetUnavailableError(f'{unavailable} {e}') from None
    except FileExistsError:
        # Another process (a second training run started alongside) finished the same files first: use them.
        check_npz_file(train_path)
        check_npz_file(val_path)
        return train_path


def _run_generate_command(base: str, dataset_dir: str, seed: int, num_episodes: int | None = None,
                          episode_length: int | None = None, workers: int | None = None) -> str:
    """Regenerates `base` with the data factory's command in a child process, whose progress and errors show as
    they come; returns the train path."""
    options = dict(num_episodes=num_episodes, episode_length=episode_length, workers=workers)
    command = [sys.executable, '-m', GENERATE_COMMAND, f'--dataset={base}', f'--dataset_dir={dataset_dir}',
               f'--seed={seed}', *(f'--{k}={v}' for k, v in options.items() if v is not None)]
    status = subprocess.run(command, cwd=REPO_ROOT).returncode
    train_path, val_path = dataset_paths(base, dataset_dir)
    if status != 0:
        if os.path.exists(train_path) and os.path.exists(val_path):
            raise FileExistsError(train_path)  # A concurrent run wrote them first.
        raise DatasetUnavailableError(f'Dataset {base} is not in {dataset_dir} and could not be regenerated '
                                      f'(`python -m {GENERATE_COMMAND}` exited with status {status}, see above).')
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
