"""Antmaze regeneration: the ant expert driven through the maze, OGBench's file layout, validation and the CLI.

A tiny randomly initialised expert stands in for the trained one, so these tests do not depend on the shipped file;
the last test checks the shipped expert itself when the repository has one.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from datasets.ogbench_gen import expert
from datasets.ogbench_gen import generate as gen
from datasets.ogbench_gen import validate as val
from datasets.ogbench_gen.recipes import ExpertMazeOracle, get_recipe, make_collection_env, sized

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENGTH = 60


@pytest.fixture(scope='module')
def tiny_expert(tmp_path_factory):
    rng = np.random.default_rng(0)
    shapes = {'MLP_0/Dense_0/kernel': (29, 16), 'MLP_0/Dense_0/bias': (16,), 'MLP_0/Dense_1/kernel': (16, 16),
              'MLP_0/Dense_1/bias': (16,), 'mean/kernel': (16, 8), 'mean/bias': (8,), 'log_std/kernel': (16, 8),
              'log_std/bias': (8,)}
    params = {k: rng.normal(0, 0.5, s).astype(np.float32) for k, s in shapes.items()}
    path = str(tmp_path_factory.mktemp('expert') / 'tiny.npz')
    nested = {}
    for key, value in params.items():
        *parents, leaf = key.split('/')
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    expert.save_expert(path, nested, {'expert': 'ant', 'note': 'random test expert'})
    return path


def test_antmaze_recipes_follow_ogbench():
    navigate, giant = get_recipe('antmaze-large-navigate-v0'), get_recipe('antmaze-giant-navigate-v0')
    stitch, explore = get_recipe('antmaze-teleport-stitch-v0'), get_recipe('antmaze-medium-explore-v0')
    assert (navigate.num_episodes, navigate.episode_length, navigate.action_noise) == (1000, 1001, 0.2)
    assert (giant.num_episodes, giant.episode_length) == (500, 2001)
    assert (stitch.num_episodes, stitch.episode_length, stitch.action_noise) == (5000, 201, 0.2)
    assert (explore.num_episodes, explore.episode_length, explore.action_noise) == (10000, 501, 1.0)
    assert explore.direction_interval == 10 and navigate.direction_interval is None
    assert navigate.expert_path == expert.SHIPPED_ANT
    assert get_recipe('antmaze-large-navigate-oraclerep-v0') == navigate
    assert get_recipe('antmaze-large-navigate-singletask-task3-v0') == navigate
    with pytest.raises(ValueError, match='without an expert'):
        sized(get_recipe('pointmaze-large-navigate-v0'), expert_path='x.npz')


def test_expert_sees_state_without_xy_and_a_unit_direction(tiny_expert):
    recipe = sized(get_recipe('antmaze-medium-navigate-v0'), expert_path=tiny_expert)
    env = make_collection_env(recipe)
    seen = []

    class Spy(expert.NumpyActor):
        def __call__(self, observations):
            seen.append(np.array(observations))
            return super().__call__(observations)

    oracle = ExpertMazeOracle(env, Spy(dict(np.load(tiny_expert))))
    env.reset(seed=0)
    maze = env.unwrapped
    action = oracle.action(np.asarray(maze.cur_goal_xy))
    state = np.concatenate([maze.data.qpos, maze.data.qvel])
    assert action.shape == (8,) and np.all(np.abs(action) < 1)
    (ob,) = seen
    assert ob.shape == (29,)
    np.testing.assert_allclose(ob[:27], state[2:], atol=1e-6)
    assert abs(np.linalg.norm(ob[27:]) - 1) < 1e-5
    env.close()


@pytest.mark.parametrize('name', ['antmaze-large-navigate-v0', 'antmaze-teleport-explore-v0'])
def test_generated_antmaze_has_ogbench_layout_and_validates(name, tiny_expert, tmp_path):
    import ogbench

    train, val_path = gen.generate(name, num_episodes=2, episode_length=LENGTH, dataset_dir=str(tmp_path),
                                   workers=1, progress=False, expert_path=tiny_expert)
    data = ogbench.load_dataset(train)
    assert data['observations'].shape == (2 * (LENGTH - 1), 29)  # load_dataset drops each episode's last row.
    assert data['actions'].shape[1] == 8
    arrays = val.load_arrays(train)
    np.testing.assert_array_equal(arrays['observations'][:, :2], arrays['qpos'][:, :2])
    step = np.linalg.norm(np.diff(arrays['observations'][:LENGTH, :2], axis=0), axis=1)
    assert 0 < step.max() < val.ANT_MAX_XY_STEP  # x-y moves, smoothly.
    recipe, env = get_recipe(name), val.make_env(get_recipe(name).env_id)
    assert val.check_arrays(arrays, recipe, env) == []
    assert val.check_arrays(val.load_arrays(val_path), recipe, env) == []
    env.close()
    if 'navigate' in name:
        assert val.check_variants_load(name, train) == []
        broken = dict(arrays, observations=arrays['observations'].copy())
        broken['observations'][5, 0] += 1.0  # An observation that disagrees with its state, and a jump.
        problems = ' '.join(val.check_arrays(broken, recipe, env))
        assert 'differ from the recorded qpos' in problems and 'x-y steps exceed' in problems


def test_generate_cli_offline_and_missing_expert(tiny_expert, tmp_path):
    args = [sys.executable, '-m', 'datasets.ogbench_gen.generate', '--dataset=antmaze-large-navigate-v0',
            '--num_episodes=2',
            f'--episode_length={LENGTH}', f'--dataset_dir={tmp_path}', '--workers=2']
    missing = subprocess.run(args + ['--expert_path=/nonexistent/ant.npz'], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=300)
    assert missing.returncode == 2 and 'train_expert' in missing.stderr
    ok = subprocess.run(args + [f'--expert_path={tiny_expert}'], cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert os.path.exists(tmp_path / 'antmaze-large-navigate-v0.npz')
    # Two workers give the bytes one worker gives.
    other = tmp_path / 'one_worker'
    gen.generate('antmaze-large-navigate-v0', num_episodes=2, episode_length=LENGTH, dataset_dir=str(other),
                 workers=1, progress=False, expert_path=tiny_expert)
    for suffix in ('', '-val'):
        assert ((tmp_path / f'antmaze-large-navigate-v0{suffix}.npz').read_bytes()
                == (other / f'antmaze-large-navigate-v0{suffix}.npz').read_bytes())


@pytest.mark.skipif(not os.path.exists(expert.SHIPPED_ANT), reason='no expert shipped yet')
def test_shipped_expert_walks_where_it_is_told(tmp_path):
    actor = expert.load_expert()
    recorded = actor.metadata['validation']
    assert recorded['velocity']['velocity'] > 0 and recorded['oracle_success']['antmaze-large-navigate-v0'][
        'overall'] >= 0.5
    scores = expert.directional_velocity(actor, episodes=2, seed=123)
    assert scores['velocity'] > 0.5 * recorded['velocity']['velocity']
    # The plain command uses it: no --expert_path.
    train, _ = gen.generate('antmaze-large-navigate-v0', num_episodes=2, episode_length=LENGTH,
                            dataset_dir=str(tmp_path), workers=1, progress=False)
    assert val.check_arrays(val.load_arrays(train), get_recipe('antmaze-large-navigate-v0')) == []
