"""Offline dataset regeneration: every family loads through ogbench's own loader, output is reproducible byte for
byte across worker counts, files are written atomically and never clobbered, and bad input fails clearly.

Episodes are tiny (2-3 episodes of 51 steps); the whole module runs in about a minute and a half on 2 cores.
"""
import os

os.environ.setdefault('MUJOCO_GL', 'egl')  # Before any manipulation env is imported: headless rendering backend.

import re
import subprocess
import sys
import urllib.error

import numpy as np
import ogbench
import pytest

from datasets import files
from datasets.ogbench_gen import ensure, oracle_eval
from datasets.ogbench_gen import generate as gen
from datasets.ogbench_gen import validate as val
from datasets.ogbench_gen.recipes import (
    REGENERABLE,
    UnknownDatasetError,
    base_dataset_name,
    get_recipe,
    make_env,
    scene_episode_healthy,
)

EPISODES = 2
LENGTH = 51
pytestmark = pytest.mark.filterwarnings('ignore:.*precision lowered by casting to float32:UserWarning')
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAST_FAMILIES = ('pointmaze-medium-navigate-v0',)  # The rest run in the full suite.
FAMILIES = [
    'pointmaze-medium-navigate-v0',
    'pointmaze-teleport-stitch-v0',
    'cube-single-play-v0',
    'cube-double-noisy-v0',
    'scene-play-v0',
    'puzzle-3x3-play-v0',
    'puzzle-3x3-noisy-v0',
]


def _tiny(name, dataset_dir, **kw):
    kw = dict(num_episodes=EPISODES, episode_length=LENGTH, dataset_dir=str(dataset_dir), workers=1,
              progress=False) | kw
    return gen.generate(name, **kw)


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    """name → train path of a tiny generated dataset, each generated once for the module."""
    root = tmp_path_factory.mktemp('generated')
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _tiny(name, root)[0]
        return cache[name]

    return get


@pytest.fixture
def offline(monkeypatch):
    """ogbench's download fails as it does without network (and never downloads for real in a test)."""
    calls = []

    def fail(names, dataset_dir='~/.ogbench/data'):
        calls.append(list(names))
        raise urllib.error.URLError('[Errno -2] Name or service not known')

    monkeypatch.setattr(ogbench, 'download_datasets', fail)
    return calls


@pytest.mark.parametrize('name', [pytest.param(name, marks=[] if name in FAST_FAMILIES else [pytest.mark.slow])
                                  for name in FAMILIES])
def test_family_generates_and_loads_with_ogbench(generated, name):
    train_path = generated(name)
    assert train_path.endswith(f'{name}.npz') and os.path.exists(train_path.replace('.npz', '-val.npz'))
    stem = name.removesuffix('-v0')
    for variant, extra_key in ((name, None), (f'{stem}-oraclerep-v0', 'oracle_reps'),
                               (f'{stem}-singletask-v0', 'rewards')):
        env, train, valid = ogbench.make_env_and_datasets(variant, dataset_path=train_path, compact_dataset=True)
        assert train['observations'].shape == (EPISODES * LENGTH, *env.observation_space.shape)
        assert valid['observations'].shape[0] == LENGTH  # max(1, 2 // 10) = 1 val episode.
        assert train['valids'].sum() == EPISODES * (LENGTH - 1)
        if extra_key:
            assert len(train[extra_key]) == EPISODES * LENGTH
        env.close()
    recipe = get_recipe(name)
    env = make_env(recipe.env_id)
    arrays = val.load_arrays(train_path)
    assert val.check_arrays(arrays, recipe, env, expected_length=LENGTH) == []
    assert set(arrays) == ({'observations', 'actions', 'terminals', 'qpos', 'qvel'}
                           | ({'button_states'} if name.startswith(('scene', 'puzzle')) else set()))
    env.close()


@pytest.mark.parametrize('name', ['pointmaze-teleport-navigate-v0',
                                  pytest.param('scene-noisy-v0', marks=pytest.mark.slow)])
def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path, name):
    """Episodes are seeded by (seed, index) alone: 1 or 2 workers, and whichever episode a worker ran before,
    the files are identical; another seed changes them."""
    kw = dict(num_episodes=3, episode_length=31)
    one = _tiny(name, tmp_path / 'one', workers=1, **kw)
    two = _tiny(name, tmp_path / 'two', workers=2, **kw)
    other = _tiny(name, tmp_path / 'other', workers=1, seed=1, **kw)
    for a, b in zip(one, two):
        with open(a, 'rb') as fa, open(b, 'rb') as fb:
            assert fa.read() == fb.read(), f'{a} and {b} differ'
    assert not np.array_equal(np.load(one[0])['actions'], np.load(other[0])['actions'])


def test_existing_dataset_is_never_overwritten(tmp_path, monkeypatch):
    name = 'pointmaze-medium-stitch-v0'
    train, valid = _tiny(name, tmp_path)
    before = open(train, 'rb').read()
    monkeypatch.setattr(gen, '_run_blocks', lambda *a, **k: pytest.fail('work started before the refusal'))
    with pytest.raises(FileExistsError, match='--overwrite'):
        _tiny(name, tmp_path, seed=5)
    assert open(train, 'rb').read() == before
    monkeypatch.undo()
    _tiny(name, tmp_path, seed=5, overwrite=True)
    assert open(train, 'rb').read() != before


def test_interrupted_write_leaves_no_complete_looking_file(tmp_path, monkeypatch):
    written = []
    real_write = gen.write_npz

    def write_then_die(path, folders):
        written.append(path)
        real_write(path, folders)
        raise KeyboardInterrupt  # Interrupted after the bytes are out, before the rename.

    monkeypatch.setattr(gen, 'write_npz', write_then_die)
    with pytest.raises(KeyboardInterrupt):
        _tiny('pointmaze-medium-navigate-v0', tmp_path)
    assert written and all(os.path.basename(p).startswith('.') and not p.endswith('.npz') for p in written)
    assert os.listdir(tmp_path) == []  # Partial file and shard folder are cleaned up too.

    def die_mid_collection(self, seed, index):
        raise RuntimeError('worker crashed')

    monkeypatch.setattr(gen.Collector, 'episode', die_mid_collection)
    with pytest.raises(RuntimeError, match='worker crashed'):
        _tiny('pointmaze-medium-navigate-v0', tmp_path)
    assert os.listdir(tmp_path) == []


def test_corrupt_or_incomplete_files_give_a_clear_error_and_are_kept(tmp_path, generated, offline):
    name = 'pointmaze-medium-navigate-v0'
    good = open(generated(name), 'rb').read()
    train = tmp_path / f'{name}.npz'
    valid = tmp_path / f'{name}-val.npz'
    valid.write_bytes(open(generated(name).replace('.npz', '-val.npz'), 'rb').read())

    train.write_bytes(good[: len(good) // 2])  # Truncated.
    with pytest.raises(files.CorruptDatasetError, match=re.escape(str(train))):
        files.ensure_dataset(name, dataset_dir=str(tmp_path))
    assert train.read_bytes() == good[: len(good) // 2]

    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF  # Bit rot inside a compressed array.
    train.write_bytes(bytes(flipped))
    with pytest.raises(files.CorruptDatasetError, match=re.escape(str(train))):
        files.ensure_dataset(name, dataset_dir=str(tmp_path))

    np.savez_compressed(train, observations=np.zeros((3, 2), np.float32))  # No actions/terminals.
    with pytest.raises(files.CorruptDatasetError, match='lacks'):
        files.check_npz_file(str(train))

    train.unlink()  # Half a pair: an interrupted download.
    with pytest.raises(files.CorruptDatasetError, match='incomplete'):
        files.ensure_dataset(name, dataset_dir=str(tmp_path))
    assert offline == []


def test_unknown_and_expert_only_names_fail_at_once_with_help(tmp_path, offline):
    with pytest.raises(UnknownDatasetError, match='authors') as err:
        gen.generate('humanoidmaze-large-navigate-v0', dataset_dir=str(tmp_path))
    assert 'pointmaze-medium-navigate-v0' in str(err.value)
    with pytest.raises(UnknownDatasetError, match='Regenerable datasets') as err:
        gen.generate('pointmaze-huge-navigate-v0', dataset_dir=str(tmp_path))
    assert 'cube-single-play-v0' in str(err.value)
    for name in ('humanoidmaze-medium-navigate-v0', 'visual-cube-single-play-v0', 'antsoccer-arena-stitch-v0'):
        with pytest.raises(UnknownDatasetError, match='authors'):
            get_recipe(name)
    with pytest.raises(files.DatasetUnavailableError, match=r'download failed.*copy .*humanoidmaze-medium-navigate-v0'):
        ensure.ensure_dataset('humanoidmaze-medium-navigate-v0', dataset_dir=str(tmp_path))
    assert offline == [['humanoidmaze-medium-navigate-v0']]  # A real OGBench name: it did try the download first.
    with pytest.raises(UnknownDatasetError, match='Regenerable datasets'):
        ensure.ensure_dataset('pointmaze-medium-nav-v0', dataset_dir=str(tmp_path))
    assert len(offline) == 1  # A typo fails at once, without a download.


def test_ensure_dataset_downloads_then_regenerates(tmp_path, offline, monkeypatch):
    name = 'cube-single-play-singletask-task2-v0'
    asked = []
    monkeypatch.setattr(gen, 'generate', lambda base, **kw: asked.append((base, kw)) or ('t', 'v'))
    assert ensure.ensure_dataset(name, dataset_dir=str(tmp_path), workers=2) == 't'
    assert offline == [['cube-single-play-v0']]
    assert asked == [('cube-single-play-v0', dict(num_episodes=None, episode_length=None,
                                                  dataset_dir=str(tmp_path), seed=0, workers=2))]
    with pytest.raises(files.DatasetUnavailableError,
                       match='python -m datasets.ogbench_gen.generate --dataset=cube-single-play'):
        files.ensure_dataset(name, dataset_dir=str(tmp_path), regenerate=False)


def test_ensure_dataset_accepts_files_a_concurrent_run_just_wrote(tmp_path, offline, generated, monkeypatch):
    name = 'pointmaze-medium-navigate-v0'
    source = generated(name)

    def other_process_wins(base, **kw):
        for suffix in ('', '-val'):
            src = source.replace('.npz', f'{suffix}.npz')
            (tmp_path / f'{name}{suffix}.npz').write_bytes(open(src, 'rb').read())
        raise FileExistsError('Refusing to overwrite')

    monkeypatch.setattr(gen, 'generate', other_process_wins)
    assert ensure.ensure_dataset(name, dataset_dir=str(tmp_path)) == str(tmp_path / f'{name}.npz')


def test_ensure_dataset_tiny_regeneration_is_then_reused(tmp_path, offline):
    name = 'pointmaze-large-navigate-oraclerep-v0'
    path = files.ensure_dataset(name, dataset_dir=str(tmp_path), num_episodes=2, episode_length=LENGTH, workers=1)
    assert path == str(tmp_path / 'pointmaze-large-navigate-v0.npz')
    assert offline == []  # A custom size is a regeneration request: no download of the published size.
    mtime = os.path.getmtime(path)
    assert files.ensure_dataset(name, dataset_dir=str(tmp_path)) == path
    assert os.path.getmtime(path) == mtime and offline == []
    ogbench.make_env_and_datasets(name, dataset_path=path, compact_dataset=True)


@pytest.mark.parametrize('name, base', [
    ('pointmaze-medium-navigate-oraclerep-v0', 'pointmaze-medium-navigate-v0'),
    ('cube-single-play-singletask-task2-v0', 'cube-single-play-v0'),
    ('pointmaze-large-navigate-singletask-v0', 'pointmaze-large-navigate-v0'),
    ('puzzle-4x6-noisy-singletask-task5-v0', 'puzzle-4x6-noisy-v0'),
    ('scene-play-v0', 'scene-play-v0'),
])
def test_base_dataset_name(name, base):
    assert base_dataset_name(name) == base


def test_regenerable_names_are_all_published_datasets():
    assert len(REGENERABLE) == 8 + 11 + 18 and len(set(REGENERABLE)) == len(REGENERABLE)
    for name in REGENERABLE:
        recipe = get_recipe(name)
        assert recipe.name == name and recipe.episode_length > 0 and recipe.num_episodes >= 500
    assert get_recipe('pointmaze-giant-navigate-v0').episode_length == 2001
    assert get_recipe('cube-quadruple-noisy-v0').num_episodes == 5000


def test_validators_catch_broken_datasets(generated, tmp_path):
    name = 'pointmaze-medium-navigate-v0'
    recipe, env = get_recipe(name), make_env('pointmaze-medium-v0')
    good = val.load_arrays(generated(name))
    assert val.check_arrays(good, recipe, env) == []

    def problems(**changes):
        return ' '.join(val.check_arrays({**good, **changes}, recipe, env))

    assert 'leave [-1, 1]' in problems(actions=good['actions'] * 1.5)
    assert 'NaN' in problems(actions=np.where(good['actions'] > 0.9, np.nan, good['actions']).astype(np.float32))
    early = good['terminals'].copy()
    early[10] = True
    assert 'differ in length' in problems(terminals=early)
    assert 'not terminal' in problems(terminals=np.zeros_like(good['terminals']))
    shuffled = np.random.default_rng(0).permutation(len(good['actions']))
    assert 'misaligned' in problems(observations=good['observations'][shuffled])
    assert 'exceed' in problems(observations=good['observations'] * 3, qpos=good['qpos'] * 3)
    assert 'dtype' in problems(actions=good['actions'].astype(np.float64))
    assert 'expected 77' in ' '.join(val.check_arrays(good, recipe, env, expected_length=77))
    env.close()

    broken_dir = tmp_path / 'broken'
    broken_dir.mkdir()
    for suffix in ('', '-val'):
        arrays = val.load_arrays(generated(name).replace('.npz', f'{suffix}.npz'))
        np.savez_compressed(broken_dir / f'{name}{suffix}.npz', **{**arrays, 'actions': arrays['actions'] * 2})
    with pytest.raises(val.DatasetValidationError, match=r'train: actions leave \[-1, 1\]'):
        val.assert_valid(name, str(broken_dir), check_variants=False)
    assert val.assert_valid(name, os.path.dirname(generated(name)))['train']['episodes'] == EPISODES


def test_validate_entry_point_and_oracle_check(generated):
    train_path = generated('pointmaze-medium-navigate-v0')
    out = subprocess.run([sys.executable, '-m', 'datasets.ogbench_gen.validate', 'pointmaze-medium-navigate-v0',
                          f'--dataset_dir={os.path.dirname(train_path)}', '--eval_oracle_episodes=1'],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'All checks passed' in out.stdout and 'task5=' in out.stdout and 'cells_visited' in out.stdout


def test_generate_entry_point_refuses_clearly(tmp_path):
    args = [sys.executable, '-m', 'datasets.ogbench_gen.generate', '--dataset=pointmaze-medium-navigate-v0',
            '--num_episodes=2',
            f'--episode_length={LENGTH}', f'--dataset_dir={tmp_path}', '--workers=1']
    first = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and 'Refusing to overwrite' in again.stderr
    bad = subprocess.run(args[:3] + ['--dataset=humanoidmaze-medium-navigate-v0'], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and 'authors' in bad.stderr


def test_lights_out_solver_and_scene_health_check():
    rng = np.random.default_rng(0)
    for rows, cols in ((3, 3), (4, 4), (4, 5), (4, 6)):
        start, presses = rng.integers(0, 2, rows * cols), rng.integers(0, 2, rows * cols)
        goal = start.copy()
        for p in np.flatnonzero(presses):  # A goal reachable by construction.
            r, c = divmod(p, cols)
            for dr, dc in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= r + dr < rows and 0 <= c + dc < cols:
                    goal[(r + dr) * cols + c + dc] ^= 1
        state = start.copy()
        for p in oracle_eval.lights_out_presses(start, goal, rows, cols):
            r, c = divmod(p, cols)
            for dr, dc in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= r + dr < rows and 0 <= c + dc < cols:
                    state[(r + dr) * cols + c + dc] ^= 1
        assert np.array_equal(state, goal)
    qpos = np.zeros((5, 21))
    qpos[:, 14:17] = [0.4, 0.0, 0.02]
    assert scene_episode_healthy(qpos, 1)
    off_right = qpos.copy()
    off_right[3, 15] = 0.3
    assert not scene_episode_healthy(off_right, 1)
    in_drawer = qpos.copy()
    in_drawer[3, 15:17] = [-0.32, 0.07]
    assert scene_episode_healthy(in_drawer, 1)


@pytest.mark.slow
@pytest.mark.parametrize('name', ['cube-double-play-v0', 'puzzle-3x3-noisy-v0'])
def test_manipulation_oracle_solves_evaluation_tasks(name):
    scores = oracle_eval.evaluate_oracle(name, episodes_per_task=1)
    assert scores['overall'] >= 0.8, scores


def test_training_imports_no_regeneration_code(generated):
    """What main.py imports, plus resolving and loading a present dataset, leaves generation and oracles out."""
    path = generated('pointmaze-medium-navigate-v0')
    code = ('import sys; sys.argv = ["main.py"]; import main; from datasets.families import load_env_and_datasets; '
            f'load_env_and_datasets("pointmaze-medium-navigate-v0", {os.path.dirname(path)!r}); '
            'print(sorted(m for m in sys.modules if m.startswith(("datasets.", "scripts."))))')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = out.stdout.strip().splitlines()[-1]
    assert 'datasets.files' in loaded
    for module in ('datasets.ogbench_gen.generate', 'datasets.ogbench_gen.recipes', 'datasets.ogbench_gen.validate',
                   'datasets.ogbench_gen.oracle_eval'):
        assert module not in loaded, loaded
