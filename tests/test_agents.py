"""Every agent: creation, one update, learning on a tiny dataset, sampling; CFGRL's dropout and guidance."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import AGENTS, get_agent_class, get_config
from agents import flow
from agents.trainer import ChunkedTrainer
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from tests.conftest import tiny_config

VARIANTS = [('cfgrl', {}), ('gcfbc', {}), ('gcfbc', {'use_goals': False}), ('gcbc', {}), ('gcbc', {'use_goals': False})]


def _setup(name, dataset, seed=0, **overrides):
    config = tiny_config(name, **overrides)
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(dataset)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(0), sampling))
    return get_agent_class(name).create(seed, example, config), sampling, data, example


def test_unknown_agent_names_the_valid_choices():
    with pytest.raises(ValueError, match='cfgrl'):
        get_config('nope')


def test_defaults_are_the_papers():
    for name in AGENTS:
        config = get_config(name)
        assert tuple(config.actor_hidden_dims) == (512, 512, 512, 512)
        assert config.lr == 3e-4 and config.batch_size == 1024
    assert get_config('cfgrl').p_uncond == 0.1 and get_config('cfgrl').flow_steps == 16


@pytest.mark.parametrize('name,overrides', VARIANTS)
def test_update_changes_params_and_learning_lowers_the_loss(tiny_dataset, name, overrides):
    agent, sampling, data, example = _setup(name, tiny_dataset, **overrides)
    before = jax.tree.map(np.array, agent.network.params)
    new_agent, info = jax.jit(lambda a, b: a.update(b))(agent, example)
    changed = jax.tree.leaves(jax.tree.map(lambda x, y: not np.allclose(x, y), before, new_agent.network.params))
    assert all(changed), 'every parameter should receive a gradient'
    assert np.isfinite(float(info['actor_loss']))
    assert int(new_agent.network.step) == 1

    trainer = ChunkedTrainer(sampling, data, chunk_size=20)
    agent, rng, infos = trainer.run(new_agent, jax.random.PRNGKey(1), 20)
    first = float(np.mean(infos['actor_loss']))
    agent, rng, infos = trainer.run(agent, rng, 60)
    last = float(np.mean(infos['actor_loss']))
    assert last < first, (first, last)


@pytest.mark.parametrize('name,overrides', VARIANTS)
def test_sample_actions_shape_and_range(tiny_dataset, name, overrides):
    agent, _, _, example = _setup(name, tiny_dataset, **overrides)
    kwargs = {'guidance': 3.0} if agent.guided else {}
    actions = agent.sample_actions(example['observations'], example['goals'], jax.random.PRNGKey(0), **kwargs)
    assert actions.shape == example['actions'].shape
    assert float(jnp.abs(actions).max()) <= 1.0


def test_dropout_rate_is_close_to_p_uncond(tiny_dataset):
    agent, _, _, example = _setup('cfgrl', tiny_dataset, batch_size=64)
    fractions = [float(agent.loss(example, agent.network.params, jax.random.PRNGKey(k))[1]['uncond_fraction'])
                 for k in range(200)]
    # 200 × 64 Bernoulli(0.1) draws: std of the mean ≈ 0.0027.
    assert abs(np.mean(fractions) - 0.1) < 0.012


def test_guided_sampling_matches_the_fields_it_mixes(tiny_dataset):
    agent, _, _, example = _setup('cfgrl', tiny_dataset)
    obs, goals = example['observations'], example['goals']
    net, rng, b = agent.network.select('velocity'), jax.random.PRNGKey(3), obs.shape[0]
    noise = jax.random.normal(rng, (b, agent.action_dim))

    def integrate(uncond_flag):
        field = lambda a, t: net(obs, goals, a, t, jnp.full(b, uncond_flag))
        return np.clip(flow.euler_integrate(field, noise, agent.config.flow_steps), -1, 1)

    np.testing.assert_allclose(agent.sample_actions(obs, goals, rng, guidance=1.0), integrate(False), atol=1e-5)
    np.testing.assert_allclose(agent.sample_actions(obs, goals, rng, guidance=0.0), integrate(True), atol=1e-5)
    per_row = jnp.where(jnp.arange(b) % 2 == 0, 0.0, 1.0)
    mixed = agent.sample_actions(obs, goals, rng, guidance=per_row)
    np.testing.assert_allclose(mixed[::2], integrate(True)[::2], atol=1e-5)
    np.testing.assert_allclose(mixed[1::2], integrate(False)[1::2], atol=1e-5)


def test_changing_guidance_does_not_recompile(tiny_dataset):
    agent, _, _, example = _setup('cfgrl', tiny_dataset)
    obs, goals, rng = example['observations'], example['goals'], jax.random.PRNGKey(0)
    sample = type(agent).sample_actions
    agent.sample_actions(obs, goals, rng, guidance=np.full(obs.shape[0], 1.0, np.float32)).block_until_ready()
    agent.sample_actions(obs, goals, rng, guidance=1.0).block_until_ready()
    # A per-row vector (float32, as evaluation passes it) and a Python scalar: two signatures, compiled once each.
    compiled = sample._cache_size()
    for w in (0.0, 1.5, 2.0, 3.0):
        agent.sample_actions(obs, goals, rng, guidance=w).block_until_ready()
        agent.sample_actions(obs, goals, rng, guidance=np.linspace(0, w, obs.shape[0], dtype=np.float32)).block_until_ready()
    assert sample._cache_size() == compiled


def test_chunked_training_equals_step_by_step_updates(tiny_dataset):
    agent, sampling, data, _ = _setup('cfgrl', tiny_dataset)
    step = jax.jit(lambda a, b: a.update(b))
    ref, rng = agent, jax.random.PRNGKey(7)
    for _ in range(5):
        rng, batch_rng = jax.random.split(rng)
        ref, _ = step(ref, sample_goal_batch(data, batch_rng, sampling))
    ref_params = jax.tree.map(np.array, ref.network.params)
    trainer = ChunkedTrainer(sampling, data, chunk_size=2)  # 2 + 2 + 1: also covers the shorter final chunk.
    chunked, chunk_rng, _ = trainer.run(agent, jax.random.PRNGKey(7), 5)
    np.testing.assert_array_equal(np.asarray(chunk_rng), np.asarray(rng))
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), ref_params,
                 chunked.network.params)
