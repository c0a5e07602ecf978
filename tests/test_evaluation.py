"""The lockstep evaluator: same episodes as the sequential loop and in worker processes, finished episodes never
stepped, one compile per batch shape, and results in the schema of docs/outputs.md."""
import gymnasium
import jax
import numpy as np
import pytest

from evaluation.envs import EnvFactory, LocalEnvs, SubprocessEnvs
from evaluation.results import EvalResult, format_table, seeds_csv_rows, seeds_summary
from evaluation.rollout import (
    EvalPlan,
    Evaluator,
    bucket_size,
    default_eval_device,
    evaluate_lockstep,
    evaluate_lockstep_seeds,
    evaluate_sequential,
    policy_on,
)

ENV = 'pointmaze-medium-navigate-v0'
MAX_STEPS = 140  # Tasks 1 and 2 are reachable by heading straight for the goal in ~120 steps; task 3 is not.


class StepCounter(gymnasium.Wrapper):
    """Counts the steps taken since the last reset (to check that finished episodes are not stepped)."""

    def reset(self, **kwargs):
        self.steps = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        self.steps += 1
        return self.env.step(action)


def counting_envs(max_steps=MAX_STEPS):
    make = EnvFactory(ENV, max_episode_steps=max_steps)
    return LocalEnvs(lambda: StepCounter(make()))


class GoToGoal:
    """A deterministic policy heading straight for the goal at speed w·gain: some episodes reach it early (at
    different steps), others stay stuck on a wall, so episodes end at different times. Records each call's batch."""

    def __init__(self, gain=1.0):
        self.calls, self.gain = [], gain

    def __call__(self, obs, goals, key, guidance):
        self.calls.append((obs.copy(), guidance.copy()))
        return np.clip((goals - obs) * guidance[:, None] * self.gain, -1.0, 1.0)


class StackedGoToGoal:
    """GoToGoal for stacked seeds, seed k with its own gain: a row evaluated under the wrong seed would show."""

    def __init__(self, gains):
        self.gains, self.batches = np.asarray(gains, np.float32), []

    def __call__(self, obs, goals, keys, guidance):
        assert obs.ndim == 3 and keys.shape == (len(self.gains), 2)
        self.batches.append(obs.shape[1])
        return np.clip((goals - obs) * guidance[..., None] * self.gains[:, None, None], -1.0, 1.0)


PLAN = EvalPlan(task_ids=(1, 2, 3), num_episodes=2, guidance=(0.5, 1.0, 3.0))


def test_lockstep_equals_sequential_and_worker_processes_for_a_deterministic_policy():
    lockstep = evaluate_lockstep(GoToGoal(), counting_envs(), PLAN, seed=3, step=7, progress=False)
    sequential = evaluate_sequential(GoToGoal(), EnvFactory(ENV, MAX_STEPS)(), PLAN, seed=3, step=7, progress=False)
    workers = SubprocessEnvs(EnvFactory(ENV, MAX_STEPS), num_workers=2)
    try:
        in_workers = evaluate_lockstep(GoToGoal(), workers, PLAN, seed=3, step=7, progress=False)
    finally:
        workers.close()
    for other in (sequential, in_workers):
        np.testing.assert_array_equal(lockstep.scores, other.scores)
        np.testing.assert_array_equal(lockstep.lengths, other.lengths)
    # The test is only meaningful if episodes end at different times and some succeed.
    assert lockstep.scores.any() and len(np.unique(lockstep.lengths)) > 2, lockstep.lengths


def test_stacked_seeds_in_one_lockstep_equal_each_seed_alone():
    gains, seeds = (1.0, 0.6), (3, 4)
    policy = StackedGoToGoal(gains)
    together = evaluate_lockstep_seeds(policy, counting_envs(), PLAN, seeds, step=7, progress=False)
    for k, (gain, seed) in enumerate(zip(gains, seeds)):
        alone = evaluate_lockstep(GoToGoal(gain), counting_envs(), PLAN, seed=seed, step=7, progress=False)
        np.testing.assert_array_equal(together[k].scores, alone.scores)
        np.testing.assert_array_equal(together[k].lengths, alone.lengths)
    # Meaningful only if the seeds' episodes differ and the batch shrank while they finished at different times.
    assert not np.array_equal(together[0].lengths, together[1].lengths)
    assert min(policy.batches) < PLAN.num_rows
    rows = seeds_csv_rows(together)
    overall = [r.overall_scores for r in together]
    np.testing.assert_allclose([r['overall_success'] for r in rows], np.mean(overall, axis=0), rtol=1e-6)
    np.testing.assert_allclose([r['overall_success_std'] for r in rows], np.std(overall, axis=0), rtol=1e-6)
    summary = seeds_summary(together, seeds, 'env', 'cfgrl')
    assert summary['seeds'] == [3, 4] and set(summary['guidance']) == {'0.5', '1', '3'}
    assert summary['guidance']['1']['overall_success_per_seed'] == [float(r.overall_scores[1]) for r in together]
    assert '± std' in format_table(rows)


def test_few_environments_run_the_same_episodes_one_after_another():
    """max_envs below the number of rows: slots are reset to the next rows as episodes end, results unchanged."""
    full = evaluate_lockstep(GoToGoal(), counting_envs(), PLAN, seed=3, step=7, progress=False)
    envs = counting_envs()
    capped = evaluate_lockstep(GoToGoal(), envs, PLAN, seed=3, step=7, progress=False, max_envs=4)
    assert len(envs.envs) == 4 < PLAN.num_rows
    np.testing.assert_array_equal(capped.scores, full.scores)
    np.testing.assert_array_equal(capped.lengths, full.lengths)
    gains, seeds = (1.0, 0.6), (3, 4)
    envs = counting_envs()
    together = evaluate_lockstep_seeds(StackedGoToGoal(gains), envs, PLAN, seeds, step=7, progress=False,
                                       max_envs=6)
    assert len(envs.envs) == 6  # Three slots per seed.
    for k, (gain, seed) in enumerate(zip(gains, seeds)):
        alone = evaluate_lockstep(GoToGoal(gain), counting_envs(), PLAN, seed=seed, step=7, progress=False)
        np.testing.assert_array_equal(together[k].scores, alone.scores)
        np.testing.assert_array_equal(together[k].lengths, alone.lengths)


def test_memory_bound_on_environments():
    from evaluation.envs import env_memory_bytes, max_envs_for_memory

    per_env = env_memory_bytes(EnvFactory(ENV))
    assert per_env is not None and 0 <= per_env < 2**30
    assert max_envs_for_memory(lambda: EnvFactory(ENV)(), fraction=1e-12) == 1  # Never fewer than one.


def test_finished_episodes_are_not_stepped_and_leave_the_batch():
    envs, policy = counting_envs(), GoToGoal()
    result = evaluate_lockstep(policy, envs, PLAN, seed=0, step=0, progress=False)
    steps = np.array([env.steps for env in envs.envs]).reshape(PLAN.shape)
    np.testing.assert_array_equal(steps, result.lengths)
    assert (result.lengths[result.scores == 0] == MAX_STEPS).all()  # Failures run to the (shortened) limit.
    n = PLAN.num_rows
    live = [(result.lengths.ravel() > t).sum() for t in range(len(policy.calls))]
    batches = [len(obs) for obs, _ in policy.calls]
    assert batches == [bucket_size(k, n) for k in live]
    assert min(batches) < n  # Compaction happened.


def test_episodes_are_shared_across_guidance_weights_and_seeded():
    policy = GoToGoal()
    first = evaluate_lockstep(policy, counting_envs(), PLAN, seed=5, step=100, progress=False)
    start_obs = policy.calls[0][0].reshape(*PLAN.shape, -1)
    for w in range(1, len(PLAN.guidance)):
        np.testing.assert_array_equal(start_obs[w], start_obs[0])  # Same start states at every weight...
    assert not np.array_equal(start_obs[0, :, 0], start_obs[0, :, 1])  # ...but episodes of a task differ.
    np.testing.assert_array_equal(policy.calls[0][1], np.repeat(np.float32(PLAN.guidance), 6))
    again = evaluate_lockstep(GoToGoal(), counting_envs(), PLAN, seed=5, step=100, progress=False)
    np.testing.assert_array_equal(first.lengths, again.lengths)


def test_bucket_sizes():
    assert [bucket_size(k, 30) for k in (30, 16, 15, 9, 8, 5, 1)] == [30, 30, 16, 16, 8, 8, 1]


def test_agent_evaluation_compiles_once_per_batch_shape(tiny_pointmaze_agent):
    agent = tiny_pointmaze_agent
    plan = EvalPlan(task_ids=(1, 2), num_episodes=1, guidance=(0.0, 1.0, 2.0))
    with Evaluator(plan, EnvFactory(ENV, max_episode_steps=5), seed=0, workers=0, progress=False) as evaluator:
        first, = evaluator(agent, step=1)
        compiled = type(agent).sample_actions._cache_size()
        evaluator(agent, step=2)  # New seeds, same shapes: nothing to compile.
        assert type(agent).sample_actions._cache_size() == compiled
    assert first.scores.shape == (3, 2, 1) and (first.lengths == 5).all()


def test_summary_rows_and_table_follow_the_schema():
    success = np.array([[[1, 0], [0, 0]], [[1, 1], [1, 0]]], np.float32)
    result = EvalResult(step=10, task_ids=(1, 3), guidance=(0.0, 1.5), scores=success,
                        lengths=np.ones_like(success, int))
    summary = result.summary('env', 'cfgrl')
    assert summary == {'env_name': 'env', 'agent': 'cfgrl', 'step': 10, 'guidance': {
        '0': {'overall_success': 0.25, 'task_success': {'task1': 0.5, 'task3': 0.0}},
        '1.5': {'overall_success': 0.75, 'task_success': {'task1': 1.0, 'task3': 0.5}}}}
    assert result.csv_rows()[1] == {'step': 10, 'guidance': '1.5', 'overall_success': 0.75, 'task1': 1.0,
                                    'task3': 0.5}
    table = format_table(result.csv_rows())
    assert 'task3' in table and '75.0' in table
    unguided = EvalResult(step=1, task_ids=(2,), guidance=(None,), scores=success[:1, :1], lengths=success[:1, :1])
    assert list(unguided.summary('env', 'gcbc')['guidance']) == ['none']


@pytest.fixture(scope='module')
def tiny_pointmaze_agent():
    from agents import get_agent_class
    from tests.conftest import tiny_config

    example = {k: np.zeros((4, 2), np.float32) for k in ('observations', 'goals', 'actions')}
    return get_agent_class('cfgrl').create(0, example, tiny_config('cfgrl', actor_hidden_dims=(16, 16)))


def test_eval_device_cpu_and_the_default_give_identical_results(tiny_pointmaze_agent):
    plan = EvalPlan(task_ids=(1,), num_episodes=2, guidance=(0.0, 2.0))
    results = []
    for device in ('cpu', None):
        with Evaluator(plan, EnvFactory(ENV, max_episode_steps=5), seed=0, workers=0, progress=False,
                       device=device) as evaluator:
            results.append(evaluator(tiny_pointmaze_agent, step=1))
    assert len(results[0]) == 1  # One result per seed, also for a single seed.
    np.testing.assert_array_equal(results[0][0].scores, results[1][0].scores)
    np.testing.assert_array_equal(results[0][0].lengths, results[1][0].lengths)
    obs, goals, w = np.zeros((3, 2), np.float32), np.ones((3, 2), np.float32), np.full(3, 2.0, np.float32)
    actions = [policy_on(tiny_pointmaze_agent, device)(obs, goals, jax.random.PRNGKey(0), w)
               for device in ('cpu', default_eval_device())]
    np.testing.assert_array_equal(*actions)
