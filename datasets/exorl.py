"""ExORL's data as published, relabelled with a task's reward, in the compact layout the sampler reads.

A dataset is `<root>/<domain>/<algorithm>/buffer/*.npz`, one episode per file named `<time>_<index>_<length>.npz`,
holding T + 1 rows of `observation`, `action`, `reward`, `discount` and `physics` (the MuJoCo state). Row 0 is the
reset: its action is a zero placeholder, and row t ≥ 1 holds the action taken in observation t − 1 and the state
it led to. So transition t is (observation[t], action[t + 1], observation[t + 1]), and its reward is the task's
reward of physics[t + 1] (DMC rewards depend on the state reached). The stored `reward` (the exploration agent's)
is ignored; episodes end at the time limit, never at a terminal, so every mask is 1.

Compact layout (datasets/sampler.py): an episode contributes its T + 1 observations as rows; row t < T carries
transition t's action and reward and is valid, the last row only ends the episode (terminal, not valid).

Relabelling takes a while for ExORL's 10M-step buffers, so the result is cached next to the buffer as
`<root>/<domain>/<algorithm>/relabelled_<task>.npz`, written atomically and keyed by the task and by the buffer's
files (names and sizes): a buffer that grows (a resumed collection) is relabelled again.
"""
import glob
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from typing import Dict, List, Tuple

import numpy as np
from tqdm.auto import tqdm

from datasets.exorl_tasks import ExorlEnv, parse_env_name, task_reward
from datasets.files import CorruptDatasetError, DatasetUnavailableError, write_atomic

Arrays = Dict[str, np.ndarray]
DEFAULT_ALGO = 'rnd'  # The exploration data the paper trains on.
DEFAULT_ROOT = os.path.expanduser('~/.exorl/data')
DOWNLOAD_URL = 'https://dl.fbaipublicfiles.com/exorl/{domain}/{algo}.zip'  # ExORL's published archives.
CACHE_VERSION = 2  # Bump when the relabelled layout or a task's reward changes: older caches are then rebuilt.


def buffer_dir(root: str, domain: str, algo: str) -> str:
    return os.path.join(root, domain, algo, 'buffer')


def episode_files(directory: str) -> List[str]:
    """The buffer's episode files in episode-index order (names `<time>_<index>_<length>.npz`)."""
    def index(path):
        parts = os.path.splitext(os.path.basename(path))[0].split('_')
        return (int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else -1, os.path.basename(path))

    return sorted(glob.glob(os.path.join(directory, '*.npz')), key=index)


def buffer_fingerprint(files: List[str]) -> str:
    """Identifies a buffer's content cheaply: the names and sizes of its files."""
    digest = hashlib.sha1()
    for path in files:
        digest.update(f'{os.path.basename(path)}:{os.path.getsize(path)};'.encode())
    return digest.hexdigest()


def relabel_episode(dm_env, episode: Arrays) -> Arrays:
    """One episode file's rows in the compact layout, rewards recomputed in `dm_env` (see the module docstring)."""
    obs, actions, physics = episode['observation'], episode['action'], episode['physics']
    n = obs.shape[0]
    if n < 2 or actions.shape[0] != n or physics.shape[0] != n:
        raise ValueError(f'an episode needs T + 1 ≥ 2 rows of observation, action and physics; got '
                         f'{obs.shape[0]}, {actions.shape[0]}, {physics.shape[0]}.')
    rewards = np.zeros(n, np.float32)
    rewards[:-1] = [task_reward(dm_env, physics[t + 1]) for t in range(n - 1)]
    shifted = np.zeros_like(actions, dtype=np.float32)
    shifted[:-1] = actions[1:]
    valids = np.ones(n, np.float32)
    valids[-1] = 0.0
    return {'observations': obs.astype(np.float32), 'actions': shifted, 'rewards': rewards,
            'masks': np.ones(n, np.float32), 'terminals': 1.0 - valids, 'valids': valids}


def relabel_buffer(dm_env, files: List[str], progress: bool = True) -> Arrays:
    """Every episode of `files` relabelled and concatenated in the compact layout."""
    parts, widths = [], _task_widths(dm_env)
    for path in tqdm(files, desc='relabelling', unit='episode', disable=not progress, dynamic_ncols=True):
        try:
            with np.load(path) as f:
                episode = {k: f[k] for k in ('observation', 'action', 'physics')}
        except Exception as e:  # A truncated download or an interrupted write.
            raise CorruptDatasetError(f'cannot read ExORL episode {path}: {e}. Delete it (or the buffer) and '
                                      'fetch or collect it again.') from e
        _check_widths(path, episode, widths)
        parts.append(relabel_episode(dm_env, episode))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _task_widths(dm_env) -> Tuple[int, int]:
    """(physics state, flat observation) widths of the task's episodes."""
    return (dm_env.physics.get_state().size,
            sum(int(np.prod(spec.shape)) for spec in dm_env.observation_spec().values()))


def _check_widths(path: str, episode: Arrays, widths: Tuple[int, int]) -> None:
    """Refuses an episode whose physics or observation rows do not fit the task's `widths` (another version of the
    domain, e.g. jaco collected with URLB's Duplo reach where ExORL's has a fixed site), which would otherwise
    relabel to nonsense or fail inside MuJoCo."""
    got = (episode['physics'].shape[-1], episode['observation'].shape[-1])
    if got != widths:
        raise CorruptDatasetError(
            f'ExORL episode {path} has physics rows of {got[0]} values and observations of {got[1]}, where this '
            f'task has {widths[0]} and {widths[1]}: it was collected for another version of the domain. Move the '
            'buffer aside and fetch or collect it again.')


def _unavailable(root: str, domain: str, algo: str, reason: str) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f'No ExORL {algo} data for {domain} in {buffer_dir(root, domain, algo)} ({reason}). Either put ExORL\'s '
        f'episode files there (unzip {DOWNLOAD_URL.format(domain=domain, algo=algo)} into '
        f'{os.path.join(root, domain, algo)}), or collect data here with '
        f'`python -m datasets.exorl_gen.collect --domain={domain} --num_steps=N --dataset_dir={root}` (our own RND '
        'data, not ExORL\'s; see README).')


def download(root: str, domain: str, algo: str, timeout: float = 30.0) -> None:
    """Fetches and unzips ExORL's archive into `<root>/<domain>/<algo>/` (raises DatasetUnavailableError when the
    server cannot be reached). The archive unpacks to `buffer/*.npz`."""
    url, target = DOWNLOAD_URL.format(domain=domain, algo=algo), os.path.join(root, domain, algo)
    os.makedirs(target, exist_ok=True)
    fd, archive = tempfile.mkstemp(dir=target, suffix='.zip.tmp')
    try:
        with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out)
        with zipfile.ZipFile(archive) as z:
            z.extractall(target)
    except (OSError, zipfile.BadZipFile) as e:
        raise _unavailable(root, domain, algo, f'download from {url} failed: {e}') from None
    finally:
        if os.path.exists(archive):
            os.remove(archive)


def load_dataset(env_name: str, dataset_dir: str | None = None, algo: str = DEFAULT_ALGO,
                 try_download: bool = True, progress: bool = True) -> Tuple[ExorlEnv, Arrays]:
    """(evaluation environment, relabelled dataset) of an `exorl-<domain>-<task>` name.

    The buffer is `<dataset_dir>/<domain>/<algo>/buffer/`; when it holds no episode, ExORL's archive is downloaded
    first (where the network allows), and otherwise a DatasetUnavailableError says where to put files or how to
    collect them. The relabelled dataset comes from the cache when its key matches.
    """
    domain, task = parse_env_name(env_name)
    root = os.path.expanduser(dataset_dir or DEFAULT_ROOT)
    files = episode_files(buffer_dir(root, domain, algo))
    if not files:
        if not try_download:
            raise _unavailable(root, domain, algo, 'no episode files')
        download(root, domain, algo)
        files = episode_files(buffer_dir(root, domain, algo))
        if not files:
            raise _unavailable(root, domain, algo, 'the downloaded archive held no buffer/*.npz')
    env = ExorlEnv(env_name)
    cache = os.path.join(root, domain, algo, f'relabelled_{task}.npz')
    key = np.array(f'v{CACHE_VERSION}:{env_name}:{buffer_fingerprint(files)}')
    if os.path.exists(cache):
        try:
            with np.load(cache) as f:
                if str(f['key']) == str(key):
                    return env, {k: f[k] for k in f.files if k != 'key'}
        except Exception:  # An unreadable cache is rebuilt from the buffer (the buffer is the data).
            pass
    dataset = relabel_buffer(env.dm_env, files, progress)
    write_atomic(cache, lambda f: np.savez(f, **dataset, key=key))
    return env, dataset
