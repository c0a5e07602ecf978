"""Offline regeneration of OGBench datasets with OGBench's own environments and scripted oracles.

    python -m datasets.ogbench_gen.generate --dataset=pointmaze-medium-navigate-v0 [--num_episodes=N]
        [--episode_length=L] [--dataset_dir=DIR] [--seed=S] [--workers=P] [--overwrite] [--expert_path=PATH]

writes `<name>.npz` and `<name>-val.npz` (the next num_episodes // 10 episodes) in the layout `ogbench.load_dataset`
reads, so the plain, `-oraclerep` and `-singletask` variants all load natively. The recipes are in
`datasets.ogbench_gen.recipes`; the data matches the published datasets in distribution, not byte for byte (the
originals were unseeded). Ant mazes are walked by an ant expert trained here (datasets.ogbench_gen.train_expert; the
shipped one by default), not by OGBench's, so their data follows OGBench's recipe with a different walker.

Guarantees, and how they are kept:
- Reproducible: episode i draws everything from SeedSequence(seed, spawn_key=(i,)), so the same seed gives the same
  bytes whatever the number of workers (the zip entries carry a fixed timestamp too).
- Parallel and memory-bounded: worker processes collect blocks of episodes into shard files in a temporary folder
  next to the output; the merge streams the shards into the zip one at a time, so memory never holds a whole array.
- Atomic: files are written under a hidden temporary name in the target folder and renamed when complete; an
  interrupted run leaves nothing that looks like a dataset, and its temporary files (tagged with its process id)
  are removed by the next generation in that folder. Existing datasets are never overwritten without `--overwrite`.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import warnings
import zipfile
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from datasets.files import DEFAULT_DATASET_DIR, _read_npy_header, dataset_paths, resolve_dataset_dir
from datasets.ogbench_gen import expert
from datasets.ogbench_gen.recipes import (
    REGENERABLE,
    STITCH_GOAL_BFS_STEPS,
    ExpertMazeOracle,
    MazeOracle,
    Recipe,
    UnknownDatasetError,
    cells_at_bfs_distance,
    free_cells,
    get_recipe,
    make_collection_env,
    make_manipulation_oracles,
    make_maze_oracle,
    noisy_action_std,
    num_val_episodes,
    scene_episode_healthy,
    sized,
    vertex_cells,
)
from datasets.seeding import EpisodeRngs, episode_rngs, legacy_global_seed
from experiment import faults

__all__ = ['REGENERABLE', 'generate', 'UnknownDatasetError']

KEYS = ('observations', 'actions', 'terminals', 'qpos', 'qvel', 'button_states')  # File order; buttons optional.
DTYPES = dict(observations=np.float32, actions=np.float32, terminals=bool, qpos=np.float32, qvel=np.float32,
              button_states=np.int64)
BLOCK_ROWS = 10_000  # Rows per shard block: small enough for a lively progress bar and little memory per worker...
BLOCKS_PER_WORKER = 8  # ...and at least this many blocks per worker so that the last block does not run alone.
MAX_SCENE_ATTEMPTS = 100  # Scene episodes whose cube falls off the table are redone; give up after this many.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # Fixed zip entry time (the earliest zip allows) so bytes depend on data only.




# ====================================================================================================================
# The oracle-driving loops: one per family, shared by generation and oracle_eval.py.
# ====================================================================================================================
class EpisodeBuffer:
    """The rows of one episode in ogbench's npz layout: the observation *before* each action, and the state
    (`prev_qpos`, `prev_qvel`, `prev_button_states`) that observation came from."""

    def __init__(self, with_buttons: bool):
        self._rows: Dict[str, list] = {k: [] for k in KEYS if with_buttons or k != 'button_states'}

    def add(self, ob: np.ndarray, action: np.ndarray, done: bool, info: dict) -> None:
        self._rows['observations'].append(ob)
        self._rows['actions'].append(action)
        self._rows['terminals'].append(done)
        self._rows['qpos'].append(info['prev_qpos'])
        self._rows['qvel'].append(info['prev_qvel'])
        if 'button_states' in self._rows:
            self._rows['button_states'].append(info['prev_button_states'])

    def arrays(self) -> Dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=DTYPES[k]) for k, v in self._rows.items()}


def step_and_record(env, ob: np.ndarray, action: np.ndarray,
                    buffer: EpisodeBuffer | None) -> Tuple[np.ndarray, bool, float, dict]:
    """One environment step with the action clipped to [-1, 1], recorded in `buffer` (if any) as OGBench stores
    it; returns (next observation, episode over, info['success'] as a float, info)."""
    action = np.clip(action, -1.0, 1.0)
    next_ob, _, terminated, truncated, info = env.step(action)
    done = terminated or truncated
    if buffer is not None:
        buffer.add(ob, action, done, info)
    return next_ob, done, float(info['success']), info


def run_maze_episode(env, oracle: MazeOracle | ExpertMazeOracle, ob: np.ndarray, rng: np.random.Generator,
                     noise: float, regoal: Callable[[], None] | None = None,
                     buffer: EpisodeBuffer | None = None) -> float:
    """Steps the maze oracle (plus N(0, noise²), clipped) from a reset env until the episode ends.

    regoal is called whenever the goal is reached (navigate datasets move the goal); returns the final
    info['success'] as a float, which is OGBench's evaluation score.
    """
    maze = env.unwrapped
    done, success = False, 0.0
    while not done:
        action = oracle.action(np.asarray(maze.cur_goal_xy))
        if noise > 0:
            action = action + rng.normal(0.0, noise, size=action.shape)
        next_ob, done, success, _ = step_and_record(env, ob, action, buffer)
        if success and regoal is not None:
            regoal()
        ob = next_ob
    return success


def run_explore_episode(env, oracle: ExpertMazeOracle, ob: np.ndarray, rng: np.random.Generator, noise: float,
                        direction_interval: int, buffer: EpisodeBuffer | None = None) -> None:
    """explore datasets: the expert walks a fresh random direction every `direction_interval` steps, whatever
    the maze, with N(0, noise²) added to its action (clipped)."""
    done, step, direction = False, 0, None
    while not done:
        if step % direction_interval == 0:
            direction = rng.normal(size=2)
            direction = direction / (np.linalg.norm(direction) + 1e-6)
        action = oracle.walk(direction) + rng.normal(0.0, noise, size=env.action_space.shape)
        ob, done, _, _ = step_and_record(env, ob, action, buffer)
        step += 1


def run_manipulation_episode(env, oracles: Dict[str, object], ob: np.ndarray, info: dict, rng: np.random.Generator,
                             next_target: Callable[[], Tuple[np.ndarray, dict] | None], p_random_action: float = 0.0,
                             action_std: np.ndarray | None = None, augment_info: Callable[[dict], dict] | None = None,
                             buffer: EpisodeBuffer | None = None) -> float:
    """Steps OGBench's scripted oracles from a reset env until the episode ends; returns the final success.

    The oracle is picked by `info['privileged/target_task']`; with probability p_random_action a step's action is
    uniform random instead, otherwise N(0, action_std²) noise is added (noisy datasets). When the oracle is done,
    next_target() sets a new target and returns (ob, info) for it (None: keep going). augment_info lets the
    evaluation supply the privileged target keys that the env only reports in data-collection mode.
    """
    augment = augment_info or (lambda i: i)
    act_dim = env.action_space.shape[0]
    info = augment(info)
    oracle = oracles[info['privileged/target_task']]
    oracle.reset(ob, info)
    done, success = False, 0.0
    while not done:
        if rng.random() < p_random_action:
            action = rng.uniform(-1.0, 1.0, size=act_dim)
        else:
            action = np.asarray(oracle.select_action(ob, info), dtype=np.float64)
            if action_std is not None:
                action = action + rng.normal(0.0, action_std)
        next_ob, done, success, info = step_and_record(env, ob, action, buffer)
        ob, info = next_ob, augment(info)
        if oracle.done and not done:
            target = next_target()
            if target is not None:
                ob, info = target[0], augment(target[1])
                oracle = oracles[info['privileged/target_task']]
                oracle.reset(ob, info)
    return success


# ====================================================================================================================
# One episode of a dataset.
# ====================================================================================================================
class Collector:
    """A collection env and its oracles for one recipe: built once per worker (a manipulation env takes seconds)."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.env = make_collection_env(recipe)
        if recipe.family == 'maze':
            maze_map = self.env.unwrapped.maze_map
            self.oracle = make_maze_oracle(self.env, recipe)
            self.cells, self.vertices = free_cells(maze_map), vertex_cells(maze_map)
        else:
            self.env.reset(seed=0)  # Builds the MuJoCo model, which the oracles and attribute lookups need.
            self.oracles = make_manipulation_oracles(self.env, recipe)
            self.with_buttons = hasattr(self.env.unwrapped, '_cur_button_states')

    def episode(self, seed: int, index: int) -> Dict[str, np.ndarray]:
        rngs = episode_rngs(seed, index)
        with legacy_global_seed(rngs.legacy_seed):
            if self.recipe.family == 'maze':
                return self._maze_episode(rngs)
            return self._manipulation_episode(rngs)

    def _maze_episode(self, rngs: EpisodeRngs) -> Dict[str, np.ndarray]:
        recipe, maze, rng = self.recipe, self.env.unwrapped, rngs.policy
        init = self.cells[rng.integers(len(self.cells))]
        if recipe.dataset_type in ('navigate', 'explore'):  # explore ignores its goal; the env needs one.
            goal = self.vertices[rng.integers(len(self.vertices))]
        else:
            ring = cells_at_bfs_distance(maze.maze_map, init, STITCH_GOAL_BFS_STEPS)
            goal = ring[rng.integers(len(ring))] if ring else init

        def regoal() -> None:  # navigate: a new random vertex goal, jittered like the env jitters its goals.
            cell = self.vertices[rng.integers(len(self.vertices))]
            maze.set_goal(goal_xy=maze.add_noise(maze.ij_to_xy(cell)))

        maze.action_space.seed(rngs.env_seed)  # ogbench's reset takes a few random-action steps.
        ob, _ = self.env.reset(seed=rngs.env_seed, options=dict(task_info=dict(init_ij=init, goal_ij=goal)))
        buffer = EpisodeBuffer(with_buttons=False)
        if recipe.direction_interval is not None:
            run_explore_episode(self.env, self.oracle, ob, rng, recipe.action_noise, recipe.direction_interval, buffer)
        else:
            run_maze_episode(self.env, self.oracle, ob, rng, recipe.action_noise,
                             regoal=regoal if recipe.dataset_type == 'navigate' else None, buffer=buffer)
        return buffer.arrays()

    def _manipulation_episode(self, rngs: EpisodeRngs) -> Dict[str, np.ndarray]:
        recipe, env, rng = self.recipe, self.env, rngs.policy
        for attempt in range(MAX_SCENE_ATTEMPTS):
            ob, info = env.reset(seed=rngs.env_seed if attempt == 0 else None)
            p_stack = rng.uniform(*recipe.p_stack_range)
            buffer = EpisodeBuffer(self.with_buttons)
            run_manipulation_episode(
                env, self.oracles, ob, info, rng,
                next_target=lambda: env.unwrapped.set_new_target(p_stack=p_stack),
                p_random_action=recipe.p_random_action, action_std=noisy_action_std(recipe, rng), buffer=buffer)
            arrays = buffer.arrays()
            if recipe.env_family != 'scene' or scene_episode_healthy(arrays['qpos'], env.unwrapped._num_cubes):
                return arrays
        raise RuntimeError(f'{recipe.name}: {MAX_SCENE_ATTEMPTS} attempts in a row knocked a cube off the table')


_COLLECTOR: Collector | None = None  # Per process: the worker's env, kept across blocks of the same recipe.


def _collector(recipe: Recipe) -> Collector:
    global _COLLECTOR
    if _COLLECTOR is None or _COLLECTOR.recipe != recipe:
        _release_collector()
        _COLLECTOR = Collector(recipe)
    return _COLLECTOR


def _release_collector() -> None:
    global _COLLECTOR
    if _COLLECTOR is not None:
        _COLLECTOR.env.close()
        _COLLECTOR = None


# ====================================================================================================================
# Blocks of episodes → shard files → one streamed npz.
# ====================================================================================================================
@dataclasses.dataclass(frozen=True)
class Block:
    """Episodes [start, stop) of one run, written as one .npy per key into `folder`."""

    recipe: Recipe
    seed: int
    start: int
    stop: int
    folder: str


def collect_block(block: Block) -> Block:
    """Worker entry point: collect the block's episodes and save them as its shard files."""
    with warnings.catch_warnings():
        # ogbench's manipulation action space is a float32 Box built from float64 bounds: harmless, said per worker.
        warnings.filterwarnings('ignore', message='.*precision lowered by casting to float32', category=UserWarning)
        collector = _collector(block.recipe)
        episodes = [collector.episode(block.seed, i) for i in range(block.start, block.stop)]
    os.makedirs(block.folder)
    for key in episodes[0]:
        path = os.path.join(block.folder, f'{key}.npy')
        with _naming(path):
            np.save(path, np.concatenate([e[key] for e in episodes]))
    return block


class _naming:
    """Adds `path` to an OSError raised without a file name (a failed write through numpy or zipfile)."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind, error, traceback) -> None:
        if isinstance(error, OSError) and not error.filename and error.errno:
            raise OSError(error.errno, error.strerror, self.path) from error


def plan_blocks(recipe: Recipe, seed: int, start: int, stop: int, workers: int, shard_dir: str) -> List[Block]:
    """Split episodes [start, stop) into blocks; the split never changes the output, only speed and memory."""
    per_block = max(1, min(BLOCK_ROWS // recipe.episode_length,
                           math.ceil((stop - start) / (workers * BLOCKS_PER_WORKER))))
    return [Block(recipe, seed, a, min(a + per_block, stop), os.path.join(shard_dir, f'episodes_{a:07d}'))
            for a in range(start, stop, per_block)]




def write_npz(path: str, folders: Sequence[str]) -> None:
    """Concatenate the shard folders' arrays into one compressed npz at `path`, key by key, shard by shard.

    Produces exactly what np.savez_compressed would (a deflated zip of .npy files, zip64 forced), but streams the
    data so that memory holds one shard, and stamps a fixed time so that the bytes depend on the data only.
    """
    keys = [k for k in KEYS if os.path.exists(os.path.join(folders[0], f'{k}.npy'))]
    with _naming(path), zipfile.ZipFile(path, mode='w', compression=zipfile.ZIP_DEFLATED) as zf:
        for key in keys:
            shards = [os.path.join(folder, f'{key}.npy') for folder in folders]
            headers = []
            for shard in shards:
                with open(shard, 'rb') as f:
                    headers.append(_read_npy_header(f))
            if len({(shape[1:], dtype) for shape, dtype in headers}) != 1:
                raise ValueError(f'{key}: shards disagree on row shape or dtype: {set(headers)}')
            (shape, dtype), rows = headers[0], sum(shape[0] for shape, _ in headers)
            header = dict(descr=np.lib.format.dtype_to_descr(dtype), fortran_order=False, shape=(rows, *shape[1:]))
            info = zipfile.ZipInfo(f'{key}.npy', date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            with zf.open(info, mode='w', force_zip64=True) as out:
                np.lib.format.write_array_header_1_0(out, header)
                for shard in shards:
                    with open(shard, 'rb') as f:
                        _read_npy_header(f)
                        shutil.copyfileobj(f, out)








def _refuse_overwrite(paths: Sequence[str]) -> None:
    existing = [p for p in paths if os.path.exists(p)]
    if existing:
        raise FileExistsError(f'Refusing to overwrite existing dataset file(s) {existing}; pass --overwrite '
                              f'(overwrite=True) to replace them.')


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _format_size(num_bytes: int) -> str:
    return f'{num_bytes / 1e6:.1f} MB' if num_bytes >= 1e5 else f'{num_bytes / 1e3:.1f} kB'




def _run_blocks(blocks: List[Block], workers: int, progress: bool) -> None:
    """Collect all blocks, in worker processes when workers > 1, with an episodes/s + ETA progress bar."""
    from tqdm import tqdm

    total = sum(b.stop - b.start for b in blocks)
    with tqdm(total=total, unit='ep', desc=blocks[0].recipe.name, disable=not progress, dynamic_ncols=True) as bar:
        if workers == 1:
            try:
                for block in blocks:
                    collect_block(block)
                    bar.update(block.stop - block.start)
            finally:
                _release_collector()  # The caller (a training run) should not keep a simulator around.
            return
        # spawn, not fork: the caller may have JAX (multithreaded) loaded, and forking it can deadlock.
        # Workers leave Ctrl-C to this process and end with it, however it ends; leaving the block terminates them.
        with multiprocessing.get_context('spawn').Pool(workers, initializer=faults.end_with_parent) as pool:
            for block in pool.imap_unordered(collect_block, blocks):
                bar.update(block.stop - block.start)


_LEFTOVER = re.compile(r'^\..+\.pid(\d+)@([^.]+)\..*\.(shards|partial)$')


def _owner() -> str:
    """Tags a generation's temporary files with their process, so a later run can tell a killed one's leftovers."""
    return f'pid{os.getpid()}@{socket.gethostname().split(".")[0]}'


def remove_stale_leftovers(dataset_dir: str) -> List[str]:
    """Removes the temporary shard folders and partial files of generations killed on this host (their process
    is gone); a running generation's, or another host's, are kept. Returns the removed paths."""
    host, removed = socket.gethostname().split('.')[0], []
    for entry in sorted(os.listdir(dataset_dir)):
        match = _LEFTOVER.match(entry)
        if not match or match.group(2) != host or _alive(int(match.group(1))):
            continue
        path = os.path.join(dataset_dir, entry)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
        removed.append(path)
    if removed:
        print(f'Removed {len(removed)} leftovers of interrupted generations in {dataset_dir}.', file=sys.stderr)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Another user's live process.
        return True
    return True


def generate(name: str, num_episodes: int | None = None, episode_length: int | None = None,
             dataset_dir: str | None = None, seed: int = 0, workers: int | None = None, overwrite: bool = False,
             progress: bool = True, expert_path: str | None = None) -> Tuple[str, str]:
    """Regenerate a dataset (train + val files) with the published recipe; returns (train path, val path).

    num_episodes / episode_length default to the published sizes; the val file holds the next
    max(1, num_episodes // 10) episodes. workers defaults to every core. Ant mazes use the expert shipped in
    datasets/ogbench_gen/experts unless expert_path names another (datasets.ogbench_gen.train_expert's expert.npz).
    Refuses, before any work, to overwrite an existing file unless overwrite=True.
    """
    recipe = sized(get_recipe(name), num_episodes, episode_length, expert_path)
    if getattr(recipe, 'expert_path', None) is not None:
        expert.load_expert(recipe.expert_path)  # A missing or wrong expert fails here, before any worker starts.
    dataset_dir = resolve_dataset_dir(dataset_dir)
    os.makedirs(dataset_dir, exist_ok=True)
    train_path, val_path = dataset_paths(recipe.name, dataset_dir)
    if not overwrite:
        _refuse_overwrite([train_path, val_path])
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    n_train, n_val = recipe.num_episodes, num_val_episodes(recipe.num_episodes)

    remove_stale_leftovers(dataset_dir)
    shard_dir = tempfile.mkdtemp(prefix=f'.{recipe.name}.{_owner()}.', suffix='.shards', dir=dataset_dir)
    partials: List[str] = []
    try:
        train_blocks = plan_blocks(recipe, seed, 0, n_train, workers, shard_dir)
        val_blocks = plan_blocks(recipe, seed, n_train, n_train + n_val, workers, shard_dir)
        _run_blocks(train_blocks + val_blocks, min(workers, len(train_blocks) + len(val_blocks)), progress)
        for blocks, final in ((val_blocks, val_path), (train_blocks, train_path)):
            fd, partial = tempfile.mkstemp(prefix=f'.{os.path.basename(final)}.{_owner()}.', suffix='.partial',
                                           dir=dataset_dir)
            os.close(fd)
            partials.append(partial)
            write_npz(partial, [b.folder for b in blocks])
            os.chmod(partial, 0o666 & ~_umask())  # mkstemp makes it owner-only; a dataset is ordinary data.
            with open(partial, 'rb') as f:
                os.fsync(f.fileno())
        if not overwrite:  # Another process may have written the files meanwhile.
            _refuse_overwrite([train_path, val_path])
        # Val first: the train file is the one loaders look for, so it appears only once the pair is complete.
        os.replace(partials[0], val_path)
        os.replace(partials[1], train_path)
    finally:
        for partial in partials:
            if os.path.exists(partial):
                os.remove(partial)
        shutil.rmtree(shard_dir, ignore_errors=True)
    return train_path, val_path




def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m datasets.ogbench_gen.generate',
                                     description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='Regenerable datasets: ' + ', '.join(REGENERABLE))
    parser.add_argument('--dataset', required=True, help='OGBench dataset name, e.g. pointmaze-medium-navigate-v0')
    parser.add_argument('--num_episodes', type=int, default=None, help='train episodes (default: published size)')
    parser.add_argument('--episode_length', type=int, default=None, help='steps per episode (default: published)')
    parser.add_argument('--dataset_dir', default=DEFAULT_DATASET_DIR, help='output folder (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='seed; the same seed gives the same bytes')
    parser.add_argument('--workers', type=int, default=None, help='worker processes (default: all cores)')
    parser.add_argument('--overwrite', action='store_true', help='replace existing dataset files')
    parser.add_argument('--expert_path', default=None,
                        help=f'ant mazes: the walking expert (default: the shipped {expert.SHIPPED_ANT})')
    args = parser.parse_args(argv)
    # SIGINT / SIGTERM: the workers are stopped, the temporary files removed, and one line says so.
    faults.stop_on_signals({signal.SIGINT: 130, signal.SIGTERM: 143})
    cleaned = 'no dataset file was written and the temporary files were removed'
    try:
        faults.check_writable(resolve_dataset_dir(args.dataset_dir), '--dataset_dir')
        train, val = generate(args.dataset, args.num_episodes, args.episode_length, args.dataset_dir, args.seed,
                              args.workers, args.overwrite, expert_path=args.expert_path)
    except faults.Interrupted as e:
        parser.exit(e.status, f'error: generation stopped by {e.name}; {cleaned}.\n')
    except (UnknownDatasetError, FileExistsError, FileNotFoundError, PermissionError, ValueError) as e:
        parser.exit(2, f'error: {e}\n')
    except Exception as e:  # noqa: BLE001  (anything that is not a write fault is re-raised)
        fault = faults.write_fault(e)
        if fault is None:
            raise
        parser.exit(faults.EXIT_WRITE_FAULT, f'error: {fault}; {cleaned}; free space (or choose another '
                                             '--dataset_dir) and run again.\n')
    for path in (train, val):
        print(f'{path}: {_format_size(os.path.getsize(path))}')


if __name__ == '__main__':
    main()
