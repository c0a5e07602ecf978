"""Every agent: creation, one update, learning on a tiny dataset, sampling; CFGRL's dropout and guidance."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import AGENTS, flow, get_agent_class, get_config, is_guided, pixel_agents, variants
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from experiment.trainer import ChunkedTrainer
from tests.conftest import tiny_config

VARIANTS = variants()  # Every registered agent and each baseline it declares.
# The fast path (pytest -m "not slow") takes every agent at its defaults; the baselines run in the full suite.
VARIANT_PARAMS = [pytest.param(name, overrides, marks=[pytest.mark.slow] if overrides else [])
                  for name, overrides in VARIANTS]


def single_task(name):
    return get_agent_class(name).single_task


@pytest.fixture
def dataset_for(tiny_dataset, tiny_singletask_dataset):
    return lambda name: tiny_singletask_dataset if single_task(name) else tiny_dataset


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
    exorl = get_config('cfgrl_exorl')  # The authors' ExORL settings (Table 1): 3 × 512 networks, 32 flow steps.
    assert tuple(exorl.actor_hidden_dims) == tuple(exorl.value_hidden_dims) == (512, 512, 512)
    assert exorl.flow_steps == 32 and exorl.uncond_weight == 0.1 and exorl.expectile == 0.9
    for name in set(AGENTS) - {'cfgrl_exorl'}:
        if 'value_hidden_dims' in get_config(name):
            assert tuple(get_config(name).value_hidden_dims) == (512, 512, 512, 512)
        config = get_config(name)
        assert tuple(config.actor_hidden_dims) == (512, 512, 512, 512)
        assert config.lr == 3e-4 and config.batch_size == 1024
    assert get_config('cfgrl').p_uncond == 0.1 and get_config('cfgrl').flow_steps == 16


@pytest.mark.parametrize('name,overrides', VARIANT_PARAMS)
def test_update_changes_every_parameter(dataset_for, name, overrides):
    agent, _, _, example = _setup(name, dataset_for(name), **overrides)
    before = jax.tree.map(np.array, agent.network.params)
    new_agent, info = jax.jit(lambda a, b: a.update(b))(agent, example)
    changed = jax.tree.map(lambda x, y: not np.allclose(x, y), before, new_agent.network.params)
    if single_task(name):  # The target critic moves by Polyak averaging only (τ = 0.005 of a one-step change).
        changed['modules_target_critic'] = True
    assert all(jax.tree.leaves(changed)), f'every parameter should change: {changed}'
    assert np.isfinite(float(info['actor_loss']))
    assert int(new_agent.network.step) == 1


@pytest.mark.slow
@pytest.mark.parametrize('name,overrides', VARIANTS)
def test_learning_lowers_the_loss(dataset_for, name, overrides):
    agent, sampling, data, _ = _setup(name, dataset_for(name), **overrides)
    trainer = ChunkedTrainer(sampling, data, chunk_size=20)
    agent, rng, infos = trainer.run(agent, jax.random.PRNGKey(1), 20)
    key = 'critic_loss' if single_task(name) else 'actor_loss'  # AWR's actor loss re-weights as A is learnt.
    first = float(np.mean(infos[key]))
    agent, rng, infos = trainer.run(agent, rng, 60)
    last = float(np.mean(infos[key]))
    assert last < first, (first, last)


@pytest.mark.parametrize('name,overrides', VARIANT_PARAMS)
def test_sample_actions_shape_and_range(dataset_for, name, overrides):
    agent, _, _, example = _setup(name, dataset_for(name), **overrides)
    kwargs = {'guidance': 3.0} if agent.guided else {}
    actions = agent.sample_actions(example['observations'], example['goals'], jax.random.PRNGKey(0), **kwargs)
    assert actions.shape == example['actions'].shape
    assert float(jnp.abs(actions).max()) <= 1.0


@pytest.mark.slow
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
        per_row = np.linspace(0, w, obs.shape[0], dtype=np.float32)
        agent.sample_actions(obs, goals, rng, guidance=per_row).block_until_ready()
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


def test_guided_property_follows_condition_dropout(tiny_dataset):
    assert _setup('cfgrl', tiny_dataset)[0].guided and not _setup('cfgrl', tiny_dataset, p_uncond=0.0)[0].guided
    assert _setup('hcfgrl', tiny_dataset)[0].guided and not _setup('hcfgrl', tiny_dataset, p_uncond=0.0)[0].guided
    assert not _setup('gcbc', tiny_dataset)[0].guided and not _setup('hgcbc', tiny_dataset)[0].guided


def test_optimality_labels_match_the_hand_computed_advantage_sign(tiny_singletask_dataset):
    from agents.cfgrl_iql import optimality_labels
    from networks.labels import LABEL_NEGATIVE, LABEL_OPTIMAL

    np.testing.assert_array_equal(optimality_labels(jnp.array([-0.5, 0.0, 2.0, -1e-6])),
                                  [LABEL_NEGATIVE, LABEL_OPTIMAL, LABEL_OPTIMAL, LABEL_NEGATIVE])
    agent, _, _, example = _setup('cfgrl_iql', tiny_singletask_dataset)
    net = agent.network
    obs, actions = example['observations'], example['actions']
    q = np.minimum(*np.asarray(net.select('critic')(obs, actions)))
    advantage = q - np.asarray(net.select('value')(obs))
    expected = np.where(advantage >= 0, LABEL_OPTIMAL, LABEL_NEGATIVE)
    np.testing.assert_array_equal(optimality_labels(agent.advantages(example)), expected)


@pytest.mark.slow
def test_awr_actor_loss_does_not_train_the_critic(tiny_singletask_dataset, monkeypatch):
    agent, _, _, example = _setup('awr', tiny_singletask_dataset)
    net = agent.network

    def critic_grads():
        grads = jax.grad(lambda p: agent.replace(network=net.replace(params=p)).actor_loss(
            example, net.params, jax.random.PRNGKey(0))[0])(net.params)
        return [float(jnp.abs(g).max()) for g in jax.tree.leaves(grads['modules_critic'])]

    assert max(critic_grads()) == 0  # The advantage weights are a stop-gradient for the actor.
    monkeypatch.setattr(jax.lax, 'stop_gradient', lambda x: x)
    assert max(critic_grads()) > 0  # Without it the weights would train the critic: the check above can fail.


@pytest.mark.slow
def test_target_critic_follows_by_polyak_averaging(tiny_singletask_dataset):
    agent, _, _, example = _setup('awr', tiny_singletask_dataset)
    target0 = jax.tree.map(np.array, agent.network.params['modules_target_critic'])
    new, _ = agent.update(example)
    tau = agent.config.tau
    jax.tree.map(lambda t0, c, t1: np.testing.assert_allclose(t1, tau * c + (1 - tau) * t0, rtol=1e-5, atol=1e-7),
                 target0, new.network.params['modules_critic'], new.network.params['modules_target_critic'])


def test_a_registered_agent_is_picked_up_by_tests_sweeps_and_aggregation(monkeypatch, tiny_dataset):
    from scripts.aggregate import variant_label

    monkeypatch.setitem(AGENTS, 'toy', ('tests.toy_agent:ToyAgent', 'tests.toy_agent'))
    assert get_config('toy').agent_name == 'toy'
    assert ('toy', {}) in variants() and ('toy', {'p_uncond': 0.0}) in variants()
    test_update_changes_every_parameter(lambda name: tiny_dataset, 'toy', {})
    test_sample_actions_shape_and_range(lambda name: tiny_dataset, 'toy', {})
    assert is_guided('toy') and not is_guided('toy', {'p_uncond': 0.0})
    assert variant_label('toy', {'p_uncond': 0.0}) == 'toy_nodrop' and variant_label('toy', {}) == 'toy'
    assert 'toy' not in pixel_agents() and 'cfgrl' in pixel_agents()


def test_a_registered_agent_sets_or_inherits_on_purpose_each_capability(monkeypatch):
    from agents.base import CAPABILITIES
    from tests.toy_agent import ToyAgent

    monkeypatch.setitem(AGENTS, 'copied', ('tests.toy_agent:CopiedToyAgent', 'tests.toy_agent'))
    with pytest.raises(TypeError, match='CopiedToyAgent: supports_pixels, single_task, baselines, label_keys, '
                                        'w1_label, guided_by neither set in the class body nor named in its'):
        get_agent_class('copied')
    with pytest.raises(TypeError, match='CopiedToyAgent'):
        variants()  # Every user of the registry goes through get_agent_class.

    class OnPurpose(ToyAgent):
        inherits = CAPABILITIES

    OnPurpose.check_capabilities()
    assert OnPurpose.baselines == ToyAgent.baselines

    class Muddled(ToyAgent):
        baselines = {}
        inherits = ('baselines', 'pixels') + tuple(c for c in CAPABILITIES if c != 'baselines')

    with pytest.raises(TypeError, match=r"names \['pixels'\], which are not capabilities.*\['baselines'\] are both"):
        Muddled.check_capabilities()
