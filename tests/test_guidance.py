"""Guidance rules (agents/guidance.py): the registry, each rule's definition, the default's bitwise equality with a
reference sampler that hard-codes classifier-free guidance, training and sampling with another rule, and refusal of
unknown names."""
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import AGENTS, flow, get_agent_class, get_config, guidance
from agents.base import freeze_config
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from experiment import cli, restore, settings
from experiment.trainer import ChunkedTrainer
from tests.conftest import tiny_config

REPO = Path(__file__).resolve().parents[1]
GUIDED = [name for name in AGENTS if 'guidance_rule' in get_config(name)]


def _setup(name, dataset, **overrides):
    config = tiny_config(name, flow_steps=4, **overrides)
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(dataset)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(0), sampling))
    return get_agent_class(name).create(0, example, config), sampling, data, example


def test_every_guided_agent_has_the_key_at_the_default():
    assert set(GUIDED) == {'cfgrl', 'hcfgrl', 'cfgrl_iql', 'cfgrl_exorl'}
    assert all(get_config(name).guidance_rule == guidance.DEFAULT_RULE == 'cfg' for name in GUIDED)


@pytest.mark.parametrize('rule', sorted(guidance.RULES))
def test_w_1_is_the_conditional_field_under_every_rule(rule):
    """Every rule keeps w = 1 as the conditional policy (flow GCBC), at every flow time."""
    v_c, v_u = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 3))
    for t in (0.0, 0.3, 0.5, 0.9):
        out = guidance.get_rule(rule)(v_c, v_u, jnp.ones((5, 1)), jnp.full((5, 1), t))
        np.testing.assert_allclose(out, v_c, rtol=1e-6, atol=1e-6)


def test_interval_guides_inside_the_interval_only():
    v_c, v_u, w = jnp.array([[1.0, 2.0]] * 3), jnp.array([[-1.0, 0.5]] * 3), jnp.full((3, 1), 3.0)
    t = jnp.array([[0.25], [0.5], [0.75]])  # The default interval is [0.5, 1).
    out = guidance.interval(v_c, v_u, w, t)
    np.testing.assert_allclose(out[0], v_c[0])  # Before the interval: the conditional field.
    np.testing.assert_allclose(out[1:], guidance.cfg(v_c, v_u, w, t)[1:])  # Inside: classifier-free guidance.


def test_rescaled_keeps_the_conditional_speed_in_its_rescaled_part():
    v_c, v_u, w, t = jnp.array([[3.0, 4.0]]), jnp.array([[0.0, 1.0]]), jnp.full((1, 1), 4.0), jnp.zeros((1, 1))
    guided = guidance.cfg(v_c, v_u, w, t)  # (12, 13): norm √313 against the conditional field's 5.
    expected = 0.7 * guided * 5.0 / np.linalg.norm(guided) + 0.3 * guided  # The default mix is 0.7.
    np.testing.assert_allclose(guidance.rescaled(v_c, v_u, w, t), expected, rtol=1e-6)


def test_unknown_rule_names_the_valid_ones():
    with pytest.raises(ValueError, match='valid rules: cfg, interval, rescaled'):
        guidance.get_rule('no_such_rule')
    config = get_config('cfgrl')
    config.guidance_rule = 'no_such_rule'
    with pytest.raises(cli.UsageError, match="config.guidance_rule: unknown guidance rule 'no_such_rule'"):
        cli.check_config(config, 'cfgrl')


def test_a_new_rule_is_one_registry_line(monkeypatch, tiny_dataset):
    monkeypatch.setitem(guidance.RULES, 'interval_early', functools.partial(guidance.interval, start=0.0, stop=0.5))
    agent, _, _, example = _setup('cfgrl', tiny_dataset, guidance_rule='interval_early')
    cli.check_config(agent.config, 'cfgrl')
    actions = agent.sample_actions(example['observations'], example['goals'], jax.random.PRNGKey(0), guidance=3.0)
    assert actions.shape == example['actions'].shape and np.isfinite(actions).all()


def _sample_as_before(velocity_net, observations, conds, w, rng, out_dim, num_steps):
    """A reference guided sampler with the rule hard-coded: v_unc + w·(v_cond − v_unc) in one fused pass."""
    b = observations.shape[0]
    w = jnp.broadcast_to(jnp.asarray(w, jnp.float32), (b,))[:, None]
    uncond = jnp.concatenate([jnp.zeros(b, bool), jnp.ones(b, bool)])
    obs2, conds2 = jnp.concatenate([observations] * 2), jnp.concatenate([conds] * 2)

    def field(actions, times):
        v = velocity_net(obs2, conds2, jnp.concatenate([actions] * 2), jnp.concatenate([times] * 2), uncond)
        return v[b:] + w * (v[:b] - v[b:])

    noise = jax.random.normal(rng, (b, out_dim))
    return jnp.clip(flow.euler_integrate(field, noise, num_steps), -1.0, 1.0)


def test_the_default_rule_samples_bitwise_as_before(tiny_dataset, tiny_singletask_dataset):
    """Same seed, same actions: the default rule reproduces the hard-coded reference exactly (scalar and per-row w)."""
    from agents.cfgrl_iql import LABEL_OPTIMAL

    for name, dataset in (('cfgrl', tiny_dataset), ('cfgrl_iql', tiny_singletask_dataset)):
        agent, _, _, example = _setup(name, dataset)
        obs, goals, rng = example['observations'], example['goals'], jax.random.PRNGKey(3)
        module = 'velocity' if name == 'cfgrl' else 'actor'
        conds = goals if name == 'cfgrl' else jnp.full(obs.shape[0], LABEL_OPTIMAL, jnp.int32)
        # Jitted like sample_actions (the agent a traced argument), so XLA compiles the same computation.
        before = jax.jit(lambda agent, obs, conds, w, rng: _sample_as_before(agent.network.select(module), obs, conds,
                                                                             w, rng, agent.action_dim, 4))
        for w in (0.0, 1.0, 3.0, np.linspace(0, 3, obs.shape[0], dtype=np.float32)):
            now = agent.sample_actions(obs, goals, rng, guidance=w)
            np.testing.assert_array_equal(now, before(agent, obs, conds, w, rng), err_msg=name)


@pytest.mark.parametrize('name', ['cfgrl', pytest.param('cfgrl_iql', marks=pytest.mark.slow)])
def test_training_then_sampling_with_another_rule(name, tiny_dataset, tiny_singletask_dataset):
    dataset = tiny_singletask_dataset if get_agent_class(name).single_task else tiny_dataset
    agent, sampling, data, example = _setup(name, dataset, guidance_rule='interval')
    agent, _, infos = ChunkedTrainer(sampling, data, chunk_size=10).run(agent, jax.random.PRNGKey(1), 20)
    assert np.isfinite(infos['actor_loss']).all()
    obs, goals, rng = example['observations'], example['goals'], jax.random.PRNGKey(2)
    interval = agent.sample_actions(obs, goals, rng, guidance=3.0)
    cfg_agent = agent.replace(config=freeze_config(tiny_config(name, flow_steps=4)))  # Same parameters, rule 'cfg'.
    plain = cfg_agent.sample_actions(obs, goals, rng, guidance=3.0)
    assert interval.shape == example['actions'].shape and float(jnp.abs(interval).max()) <= 1.0
    assert not np.allclose(interval, plain)  # The rule changes what w = 3 samples...
    np.testing.assert_allclose(agent.sample_actions(obs, goals, rng, guidance=1.0),  # ...but not w = 1.
                               cfg_agent.sample_actions(obs, goals, rng, guidance=1.0), atol=1e-5)


def test_a_run_saved_before_the_key_existed_resumes_under_the_default():
    config = settings.config_to_dict(get_config('cfgrl'))
    older = {k: v for k, v in config.items() if k != 'guidance_rule'}
    assert settings.config_from_dict(older).guidance_rule == 'cfg'  # --resume and --eval_only read it so.
    assert restore.config_differences(older, config) == []
    assert restore.config_differences(older, {**config, 'guidance_rule': 'interval'}) == [
        'config.guidance_rule: <absent> -> interval']


def test_an_unknown_rule_is_one_usage_line_and_exit_2_before_any_run_directory(tmp_path):
    result = subprocess.run([sys.executable, 'main.py', '--config.guidance_rule=no_such_rule',
                             f'--save_dir={tmp_path / "runs"}', f'--dataset_dir={tmp_path / "data"}'],
                            cwd=REPO, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, MUJOCO_GL='egl'))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "error: config.guidance_rule: unknown guidance rule 'no_such_rule'; valid rules: cfg, interval, rescaled."]
    assert not (tmp_path / 'runs').exists()


@pytest.mark.slow
def test_main_trains_and_evaluates_with_another_rule(tmp_path):
    """main.py end to end with --config.guidance_rule=interval on a regenerated 2-episode dataset, then --eval_only
    under another rule."""
    from datasets.ogbench_gen.generate import generate

    env = 'pointmaze-medium-navigate-v0'
    generate(env, num_episodes=2, episode_length=201, dataset_dir=str(tmp_path / 'data'), seed=0, workers=1,
             progress=False)
    result = subprocess.run([sys.executable, 'main.py', f'--dataset_dir={tmp_path / "data"}', f'--env_name={env}',
                             f'--save_dir={tmp_path / "runs"}', '--train_steps=20', '--log_interval=10',
                             '--eval_interval=20', '--save_interval=20', '--eval_episodes=1', '--eval_tasks=1',
                             '--eval_guidance=1,3', '--eval_max_steps=10', '--config.actor_hidden_dims=32,32',
                             '--config.batch_size=32', '--config.flow_steps=4', '--config.guidance_rule=interval'],
                            cwd=REPO, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, MUJOCO_GL='egl'))
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / 'runs' / env / 'cfgrl').iterdir()
    assert json.loads((run / 'config.json').read_text())['guidance_rule'] == 'interval'
    assert set(json.loads((run / 'summary.json').read_text())['guidance']) == {'1', '3'}
    # The same checkpoint re-evaluated under another rule: rules shape sampling only.
    result = subprocess.run([sys.executable, 'main.py', '--eval_only', f'--restore_path={run}',
                             '--config.guidance_rule=rescaled'], cwd=REPO, capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, MUJOCO_GL='egl'))
    assert result.returncode == 0, result.stderr[-3000:]
    (out,) = (run / 'evals').iterdir()
    assert json.loads((out / 'config.json').read_text())['guidance_rule'] == 'rescaled'
    assert 'config override: config.guidance_rule: interval -> rescaled' in (out / 'meta.json').read_text()
