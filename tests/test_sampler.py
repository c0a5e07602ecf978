"""Goal relabelling: boundaries, probabilities, and the compiled sampler against the numpy reference."""
import jax
import numpy as np
import pytest

from datasets.sampler import GoalSamplingConfig, HostGoalSampler, device_dataset, index_arrays, sample_goal_batch


def _compiled_batch(dataset, cfg, seed=0):
    data = device_dataset(dataset)
    batch = jax.jit(sample_goal_batch, static_argnums=2)(data, jax.random.PRNGKey(seed), cfg)
    return jax.tree.map(np.asarray, batch)


def test_index_arrays_follow_ogbench_compact_layout(tiny_dataset):
    helpers = index_arrays(tiny_dataset)
    # Episodes of 41 rows: row 40 is invalid (no successor); the last valid row of episode 0 is 39.
    assert 40 not in helpers['valid_idxs'] and 39 in helpers['valid_idxs']
    assert helpers['final_idxs'][0] == 39 and helpers['final_idxs'][39] == 39 and helpers['final_idxs'][41] == 80


def test_probabilities_must_sum_to_one():
    with pytest.raises(ValueError, match='must be 1'):
        GoalSamplingConfig(batch_size=8, p_curgoal=0.5, p_trajgoal=0.6, p_randomgoal=0.0)


@pytest.mark.parametrize('geom', [False, True])
def test_trajectory_goals_never_cross_the_boundary(tiny_dataset, geom):
    cfg = GoalSamplingConfig(batch_size=4096, geom_sample=geom, discount=0.9)
    batch = _compiled_batch(tiny_dataset, cfg)
    idxs, goals = batch['idxs'], batch['goal_idxs']
    final = index_arrays(tiny_dataset)['final_idxs'][idxs]
    assert np.all(goals >= np.minimum(idxs + 1, final)) and np.all(goals <= final)
    assert np.all(tiny_dataset['valids'][idxs] == 1)
    np.testing.assert_array_equal(batch['goals'], tiny_dataset['observations'][goals])


def test_mixture_follows_the_configured_probabilities(tiny_dataset):
    cfg = GoalSamplingConfig(batch_size=20000, p_curgoal=0.2, p_trajgoal=0.5, p_randomgoal=0.3)
    batch = _compiled_batch(tiny_dataset, cfg, seed=1)
    idxs, goals = batch['idxs'], batch['goal_idxs']
    final = index_arrays(tiny_dataset)['final_idxs'][idxs]
    current = goals == idxs
    in_future = (goals > idxs) & (goals <= final)
    # Random goals land in the same trajectory's future with probability ≈ (final − t)/N; account for it.
    n = len(tiny_dataset['observations'])
    expected_future = 0.5 + 0.3 * np.mean((final - idxs) / n)
    assert abs(current.mean() - 0.2) < 0.02
    assert abs(in_future.mean() - expected_future) < 0.02


@pytest.mark.parametrize('geom', [False, True])
def test_compiled_sampler_matches_numpy_reference_in_distribution(tiny_dataset, geom):
    cfg = GoalSamplingConfig(batch_size=20000, p_curgoal=0.1, p_trajgoal=0.6, p_randomgoal=0.3, geom_sample=geom,
                             discount=0.9)
    ours = _compiled_batch(tiny_dataset, cfg, seed=2)
    ref = HostGoalSampler(tiny_dataset, cfg).sample(np.random.default_rng(2))
    for name, f in {'goal offset': lambda b: b['goal_idxs'] - b['idxs'],
                    'state index': lambda b: b['idxs'],
                    'goal value': lambda b: b['goals'][:, 0]}.items():
        x, y = f(ours).astype(np.float64), f(ref).astype(np.float64)
        # Two-sample Kolmogorov–Smirnov statistic: the critical value at α = 0.001 for n = m = 20000 is ≈ 0.0195.
        grid = np.sort(np.concatenate([x, y]))
        ks = np.max(np.abs(np.searchsorted(np.sort(x), grid, 'right') / len(x)
                           - np.searchsorted(np.sort(y), grid, 'right') / len(y)))
        assert ks < 0.0195, (name, ks)


def test_oracle_reps_are_the_goal_source(tiny_dataset):
    dataset = dict(tiny_dataset)
    dataset['oracle_reps'] = dataset['observations'][:, :2] * 10
    cfg = GoalSamplingConfig(batch_size=256)
    batch = _compiled_batch(dataset, cfg)
    np.testing.assert_allclose(batch['goals'], dataset['oracle_reps'][batch['goal_idxs']])


def test_hierarchical_subgoal_targets_respect_trajectory_and_goal(tiny_dataset):
    cfg = GoalSamplingConfig(batch_size=8192, p_curgoal=0.2, p_trajgoal=0.5, p_randomgoal=0.3, subgoal_steps=5)
    batch = _compiled_batch(tiny_dataset, cfg, seed=3)
    idxs, goals = batch['idxs'], batch['goal_idxs']
    final = index_arrays(tiny_dataset)['final_idxs'][idxs]
    obs = tiny_dataset['observations']
    np.testing.assert_array_equal(batch['low_goals'], obs[np.minimum(idxs + 5, final)])
    in_traj = (goals >= idxs) & (goals <= final)
    expected_high = np.where(in_traj, np.minimum(idxs + 5, goals), np.minimum(idxs + 5, final))
    np.testing.assert_array_equal(batch['high_targets'], obs[expected_high])
    # The target never passes the goal (same trajectory) nor the trajectory's end.
    assert np.all(expected_high <= final) and np.all(expected_high[in_traj] <= goals[in_traj])
    assert np.all(expected_high >= idxs)
    ref = HostGoalSampler(tiny_dataset, cfg).sample(np.random.default_rng(0))
    assert ref['low_goals'].shape == batch['low_goals'].shape
    assert ref['high_targets'].shape == batch['high_targets'].shape


def test_next_observations_and_rewards(tiny_singletask_dataset):
    cfg = GoalSamplingConfig(batch_size=512, with_next_observations=True)
    batch = _compiled_batch(tiny_singletask_dataset, cfg)
    obs = tiny_singletask_dataset['observations']
    np.testing.assert_array_equal(batch['next_observations'], obs[batch['idxs'] + 1])
    np.testing.assert_array_equal(batch['rewards'], tiny_singletask_dataset['rewards'][batch['idxs']])
    np.testing.assert_array_equal(batch['masks'], tiny_singletask_dataset['masks'][batch['idxs']])
