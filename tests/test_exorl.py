"""ExORL tasks, the relabelling loader and the collector's buffer (datasets/exorl.py, datasets/exorl_tasks.py,
datasets/exorl_gen/).

Rewards are checked on physics states built by hand, against values worked out from each task's definition
(dm_control's tolerance: linear sigmoid 1 − d·(1 − v_m) clipped at 0, gaussian v_m^(d²), d the distance to the
bounds in units of the margin, v_m the value at the margin).
"""
import numpy as np
import pytest

from datasets import exorl, exorl_tasks


def make(task):
    return exorl_tasks.ExorlEnv(exorl_tasks.EXORL_PREFIX + task)


def state(env, qpos=None, qvel=None):
    """The physics state with the given named joint positions / velocities (others at their model defaults:
    qpos0, zero velocity)."""
    physics = env.dm_env.physics
    with physics.reset_context():
        physics.data.qpos[:] = physics.model.qpos0
        physics.data.qvel[:] = 0.0
        for name, value in (qpos or {}).items():
            physics.named.data.qpos[name] = value
        for name, value in (qvel or {}).items():
            physics.named.data.qvel[name] = value
    return physics.get_state().copy()


def reward(env, s):
    return exorl_tasks.task_reward(env.dm_env, s)


def test_names():
    assert exorl_tasks.parse_env_name('exorl-cheetah-run-backward') == ('cheetah', 'run-backward')
    assert exorl_tasks.parse_env_name('exorl-jaco-reach-top-left') == ('jaco', 'reach-top-left')
    with pytest.raises(ValueError, match='exorl-walker-stand'):
        exorl_tasks.parse_env_name('exorl-walker-fly')


@pytest.mark.slow
def test_walker_rewards():
    # Upright at the model's standing height (torso at 1.3 > 1.2): stand pays 1; fallen 1 m lower (torso 0.3):
    # standing = 0.1^(1.5²), reward (3·standing + upright)/4.
    stand, walk, run = make('walker-stand'), make('walker-walk'), make('walker-run')
    upright = state(stand)
    fallen = state(stand, qpos={'rootz': -1.0})
    assert reward(stand, upright) == pytest.approx(1.0)
    assert reward(stand, fallen) == pytest.approx((3 * 0.1 ** 2.25 + 1) / 4, rel=1e-4)
    # walk: stand·(5·move + 1)/6, move 1 at ≥ the speed (1 m/s; run 8 m/s), linear with margin speed/2 and v_m 0.5.
    assert reward(walk, state(walk, qvel={'rootx': 1.0})) == pytest.approx(1.0)
    assert reward(walk, state(walk)) == pytest.approx(1 / 6)
    assert reward(run, state(run, qvel={'rootx': 8.0})) == pytest.approx(1.0)
    assert reward(run, state(run, qvel={'rootx': 4.0})) == pytest.approx(3.5 / 6)  # One margin short: 0.5.


def test_cheetah_rewards():
    run, backward = make('cheetah-run'), make('cheetah-run-backward')
    for env, forward in ((run, 1.0), (backward, -1.0)):
        assert reward(env, state(env, qvel={'rootx': 10.0 * forward})) == pytest.approx(1.0)
        assert reward(env, state(env, qvel={'rootx': 5.0 * forward})) == pytest.approx(0.5)
        assert reward(env, state(env, qvel={'rootx': -10.0 * forward})) == pytest.approx(0.0)
    # URLB's longer floor for running backwards.
    assert backward.dm_env.physics.named.model.geom_size['ground'][0] == pytest.approx(200.0)


def test_quadruped_rewards():
    # upright (1 at the default orientation) × move, move = 1 at ≥ the task's speed, 0.5 at rest (linear, v_m 0.5).
    walk, run = make('quadruped-walk'), make('quadruped-run')
    assert reward(walk, state(walk, qvel={'root': [0.5, 0, 0, 0, 0, 0]})) == pytest.approx(1.0, abs=1e-6)
    assert reward(walk, state(walk)) == pytest.approx(0.5, abs=1e-6)
    assert reward(run, state(run, qvel={'root': [5.0, 0, 0, 0, 0, 0]})) == pytest.approx(1.0, abs=1e-6)
    assert reward(run, state(run, qvel={'root': [2.5, 0, 0, 0, 0, 0]})) == pytest.approx(0.75, abs=1e-6)


def hand_at(env, point):
    """The physics state after the arm's inverse kinematics puts the tool centre point at `point`, pointing down."""
    from dm_control.composer import initializers
    from dm_control.composer.variation import distributions
    from dm_control.manipulation.shared import workspaces

    reach_task, physics = env.dm_env.task, env.dm_env.physics
    place = initializers.ToolCenterPointInitializer(reach_task.hand, reach_task.arm,
                                                    position=distributions.Uniform(point, point),
                                                    quaternion=workspaces.DOWN_QUATERNION)
    place(physics, np.random.RandomState(0))
    return physics.get_state().copy(), physics.bind(reach_task.hand.tool_center_point).xpos.copy()


def test_jaco_rewards_read_each_tasks_fixed_target():
    left, right = make('jaco-reach-top-left'), make('jaco-reach-top-right')
    for env, x in ((left, -0.09), (right, 0.09)):
        env.reset(seed=0)
        reach_task = env.dm_env.task
        assert reach_task._prop is None  # A site, as ExORL's reach; URLB's Duplo brick would move with the state.
        assert env.dm_env.physics.bind(reach_task._target).xpos == pytest.approx([x, 0.09, 0.001])
        assert 'target_position' not in reach_task.task_observables  # Fixed per task: not observed (ExORL).
    assert left.reset(seed=0)[0].shape == (42,)

    # The hand 3 cm above the left target: inside the 0.05 radius for top-left (1); for top-right 0.18 away, the
    # gaussian tolerance 0.1^((d − 0.05)/0.05)² is 0 to 1e-6. The same state, relabelled for the two tasks.
    s, hand = hand_at(left, (-0.09, 0.09, 0.031))
    assert hand == pytest.approx([-0.09, 0.09, 0.031], abs=2e-3)
    assert reward(left, s) == pytest.approx(1.0)
    d = np.linalg.norm(hand - np.array([0.09, 0.09, 0.001]))
    assert reward(right, s) == pytest.approx(0.1 ** (((d - 0.05) / 0.05) ** 2), abs=1e-9) and reward(right, s) < 1e-6
    # 0.1 from the target (one margin past the bound): the value at the margin, 0.1.
    s, hand = hand_at(left, (-0.09, 0.09, 0.101))
    d = np.linalg.norm(hand - np.array([-0.09, 0.09, 0.001]))
    assert reward(left, s) == pytest.approx(0.1 ** (((d - 0.05) / 0.05) ** 2), rel=1e-6)
    assert 0.05 < reward(left, s) < 0.2


def write_buffer(directory, states, actions, obs_dim=17):
    """One ExORL episode file with the given physics rows (T + 1 of them) and actions (observations: cheetah's
    width, placeholder values)."""
    directory.mkdir(parents=True, exist_ok=True)
    n = len(states)
    obs = np.arange(n * obs_dim, dtype=np.float32).reshape(n, obs_dim)
    np.savez(directory / f'20250101T000000_0_{n - 1}.npz', observation=obs, action=np.asarray(actions, np.float32),
             reward=np.full((n, 1), -7.0, np.float32), discount=np.ones((n, 1), np.float32),
             physics=np.asarray(states))
    return obs


def test_relabelling_and_alignment(tmp_path):
    env = make('cheetah-run-backward')
    speeds = [0.0, -10.0, -5.0, 10.0]  # Physics rows 0..3 of a 3-step episode.
    states = [state(env, qvel={'rootx': v}) for v in speeds]
    actions = np.arange(4 * 6, dtype=np.float32).reshape(4, 6) / 100
    obs = write_buffer(tmp_path / 'cheetah' / 'rnd' / 'buffer', states, actions)
    _, data = exorl.load_dataset('exorl-cheetah-run-backward', str(tmp_path), try_download=False, progress=False)
    # Row t: observation t, action t + 1, reward of physics t + 1 (the task's, not the stored −7); last row ends.
    np.testing.assert_array_equal(data['observations'], obs)
    np.testing.assert_array_equal(data['actions'][:3], actions[1:])
    np.testing.assert_allclose(data['rewards'][:3], [1.0, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(data['rewards'][:3], [reward(env, s) for s in states[1:]])
    np.testing.assert_array_equal(data['valids'], [1, 1, 1, 0])
    np.testing.assert_array_equal(data['terminals'], [0, 0, 0, 1])
    np.testing.assert_array_equal(data['masks'], 1)
    # Cached per task; another task of the same buffer is relabelled with its own reward.
    assert (tmp_path / 'cheetah' / 'rnd' / 'relabelled_run-backward.npz').exists()
    _, forward = exorl.load_dataset('exorl-cheetah-run', str(tmp_path), try_download=False, progress=False)
    np.testing.assert_allclose(forward['rewards'][:3], [0.0, 0.0, 1.0], atol=1e-6)
    _, cached = exorl.load_dataset('exorl-cheetah-run-backward', str(tmp_path), try_download=False, progress=False)
    np.testing.assert_array_equal(cached['rewards'], data['rewards'])


def test_buffer_of_another_domain_version_is_refused(tmp_path):
    from datasets.files import CorruptDatasetError

    env = make('cheetah-run')
    states = [np.concatenate([state(env), [0.0]]) for _ in range(3)]  # One value too many per physics row.
    write_buffer(tmp_path / 'cheetah' / 'rnd' / 'buffer', states, np.zeros((3, 6), np.float32))
    with pytest.raises(CorruptDatasetError, match='physics rows of 19 values .* this task has 18 and 17: it was '
                                                  'collected for another version'):
        exorl.load_dataset('exorl-cheetah-run', str(tmp_path), try_download=False, progress=False)


def test_missing_buffer_says_what_to_do(tmp_path):
    from datasets.files import DatasetUnavailableError

    with pytest.raises(DatasetUnavailableError, match='exorl_gen.collect --domain=walker'):
        exorl.load_dataset('exorl-walker-walk', str(tmp_path), try_download=False)
