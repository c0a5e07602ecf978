"""ExORL end to end: the RND collector (seeded, resumable), the ExORL agents' settings, and main.py training and
evaluating on a buffer the collector wrote (tiny networks, short episodes)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from datasets.exorl import episode_files
from datasets.exorl_gen import collect as exorl_collect

REPO = Path(__file__).resolve().parents[1]


def tiny_collector_config():
    config = exorl_collect.get_config()
    config.hidden_dim, config.rnd_rep_dim, config.batch_size = 16, 16, 16
    return config


@pytest.fixture(scope='module')
def buffer_root(tmp_path_factory):
    """Two 100-step walker episodes: the first with random actions, the second from the RND actor after its
    updates."""
    root = tmp_path_factory.mktemp('exorl')
    collect(root, 100)
    # What a collection stopped after its first episode leaves: the resume test continues from it.
    shutil.copytree(root / 'walker', root.parent / 'stopped_after_one' / 'walker')
    collect(root, 200)
    return root


def collect(root, num_steps):
    exorl_collect.collect('walker', num_steps, str(root), seed=0, schedule=exorl_collect.Schedule(50, 100, 2),
                          config=tiny_collector_config(), progress=False, episode_steps=100)


@pytest.mark.slow
def test_collector_writes_exorl_format_and_resumes(buffer_root):
    files = episode_files(str(buffer_root / 'walker' / 'rnd' / 'buffer'))
    assert [os.path.basename(f).split('_', 1)[1] for f in files] == ['0_100.npz', '1_100.npz']
    with np.load(files[1]) as f:
        assert f['observation'].shape == (101, 24) and f['physics'].shape == (101, 18)
        assert f['action'].shape == (101, 6) and not f['action'][0].any() and np.abs(f['action']).max() <= 1
    # Stopped after the first episode and resumed: the same second episode as the uninterrupted collection.
    stopped = buffer_root.parent / 'stopped_after_one'
    collect(stopped, 200)
    resumed = episode_files(str(stopped / 'walker' / 'rnd' / 'buffer'))
    assert len(resumed) == 2
    with np.load(files[1]) as a, np.load(resumed[1]) as b:
        np.testing.assert_array_equal(a['physics'], b['physics'])


@pytest.mark.slow
def test_collector_refuses_to_continue_another_collection(buffer_root, tmp_path):
    shutil.copytree(buffer_root / 'walker', tmp_path / 'walker')
    config = tiny_collector_config()
    config.batch_size = 32  # Another collector setting: continuing would mix two collections in one buffer.
    with pytest.raises(exorl_collect.CollectionMismatchError, match='other settings'):
        exorl_collect.collect('walker', 300, str(tmp_path), seed=0, schedule=exorl_collect.Schedule(50, 100, 2),
                              config=config, progress=False, episode_steps=100)
    assert len(episode_files(str(tmp_path / 'walker' / 'rnd' / 'buffer'))) == 2  # Nothing written.


def _urlb_layers(obs_dim, action_dim, hidden, rep_dim=512):
    """URLB's state networks (agent/ddpg.py, agent/rnd.py) as (layer, kernel shape) lists, LayerNorms as (width,)."""
    actor = [('trunk', (obs_dim, hidden)), ('trunk_norm', (hidden,)), ('hidden', (hidden, hidden)),
             ('out', (hidden, action_dim))]
    critic = [('trunk', (obs_dim + action_dim, hidden)), ('trunk_norm', (hidden,))]
    for q in ('q1', 'q2'):
        critic += [(f'{q}_hidden', (hidden, hidden)), (f'{q}_out', (hidden, 1))]
    rnd = [('l1', (obs_dim, hidden)), ('l2', (hidden, hidden)), ('l3', (hidden, rep_dim))]
    return {'actor': actor, 'critic': critic, 'predictor': rnd}


def _count(layers):
    """Parameters of Linear (kernel + bias) and LayerNorm (scale + bias) layers."""
    return sum(shape[0] * shape[1] + shape[1] if len(shape) == 2 else 2 * shape[0] for _, shape in layers)


def test_collector_networks_match_urlb_at_width_1024():
    from datasets.exorl_gen.rnd_ddpg import RNDDDPG

    config = exorl_collect.get_config()
    config.hidden_dim = 1024
    agent = jax.eval_shape(lambda: RNDDDPG.create(0, 24, 6, config))  # Walker: 24-d observations, 6-d actions.
    urlb = _urlb_layers(24, 6, 1024)
    nets = {'actor': agent.actor.params, 'critic': agent.critic.params, 'predictor': agent.predictor.params}
    for name, params in nets.items():
        shapes = {layer: (p['kernel'].shape if 'kernel' in p else p['scale'].shape) for layer, p in params.items()}
        assert shapes == dict(urlb[name]), name
        assert sum(x.size for x in jax.tree.leaves(params)) == _count(urlb[name]), name
    # URLB's own counts for walker at width 1024: actor 1,083,398, critic 2,135,042, RND predictor 1,600,000.
    assert [_count(urlb[n]) for n in ('actor', 'critic', 'predictor')] == [1_083_398, 2_135_042, 1_600_000]
    assert jax.tree.structure(agent.rnd_target) == jax.tree.structure(agent.predictor.params)


def test_collector_kernels_are_orthogonal_and_biases_zero():
    from datasets.exorl_gen.rnd_ddpg import RNDDDPG

    agent = RNDDDPG.create(0, 24, 6, tiny_collector_config())  # Width 16.
    kernel = np.asarray(agent.critic.params['q1_hidden']['kernel'])
    np.testing.assert_allclose(kernel.T @ kernel, np.eye(kernel.shape[1]), atol=1e-4)
    trunk = np.asarray(agent.actor.params['trunk']['kernel'])  # 24 × 16: orthonormal columns.
    np.testing.assert_allclose(trunk.T @ trunk, np.eye(16), atol=1e-4)
    assert not np.asarray(agent.actor.params['out']['bias']).any()


def test_action_clamp_passes_the_gradient_through():
    from datasets.exorl_gen.rnd_ddpg import ACTION_LIMIT, clamp_straight_through

    x = jnp.array([-1.7, -0.2, 0.5, 1.3])
    np.testing.assert_allclose(clamp_straight_through(x), [-ACTION_LIMIT, -0.2, 0.5, ACTION_LIMIT], rtol=1e-6)
    grad = jax.grad(lambda v: jnp.sum(clamp_straight_through(v) * jnp.arange(1.0, 5.0)))(x)
    np.testing.assert_allclose(grad, [1.0, 2.0, 3.0, 4.0])  # jnp.clip would give 0 at ±1.7 and 1.3.


def test_collector_update_follows_urlbs_order():
    """RND first, and the reward from the predictor AFTER its step; the actor sees the critic after its step."""
    from datasets.exorl_gen.rnd_ddpg import RNDDDPG, rnd_moments

    config = tiny_collector_config()
    agent = RNDDDPG.create(0, 5, 3, config)
    rng = np.random.default_rng(0)
    batch = {'observations': rng.normal(size=(16, 5)).astype(np.float32),
             'actions': rng.uniform(-1, 1, (16, 3)).astype(np.float32),
             'next_observations': rng.normal(size=(16, 5)).astype(np.float32)}
    new, info = agent.update(batch)
    errors = new.rnd_error(jnp.asarray(batch['observations']), new.predictor.params)
    moments = rnd_moments(agent.reward_moments, errors)
    np.testing.assert_allclose(info['intrinsic_reward'], np.mean(errors / np.sqrt(moments[1])), rtol=1e-5)
    np.testing.assert_allclose(new.reward_moments, moments, rtol=1e-6)
    for name in ('actor', 'critic', 'predictor'):
        assert int(getattr(new, name).step) == 1


def test_exorl_settings_for_awr():
    from experiment.settings import default_config

    exorl = default_config('awr', 'exorl-walker-walk')
    ogbench = default_config('awr', 'pointmaze-large-navigate-singletask-v0')
    assert exorl.exorl_settings and tuple(exorl.value_hidden_dims) == (512, 512, 512)
    assert not ogbench.exorl_settings


def _tiny_batch(obs_dim=5, action_dim=3, n=64, seed=0):
    rng = np.random.default_rng(seed)
    return {'observations': rng.normal(size=(n, obs_dim)).astype(np.float32),
            'actions': rng.uniform(-1, 1, (n, action_dim)).astype(np.float32),
            'next_observations': rng.normal(size=(n, obs_dim)).astype(np.float32),
            'rewards': rng.normal(size=n).astype(np.float32), 'masks': np.ones(n, np.float32)}


@pytest.mark.slow
def test_cfgrl_exorl_labels_from_the_target_critic():
    from agents import get_agent_class, get_config

    config = get_config('cfgrl_exorl')
    config.actor_hidden_dims = config.value_hidden_dims = (16, 16)
    batch = _tiny_batch()
    agent = get_agent_class('cfgrl_exorl').create(0, batch, config)
    params = dict(agent.network.params)
    # Move the online critic far from its target: the label must follow the target.
    params['modules_critic'] = jax.tree.map(lambda p: p + 3.0, params['modules_critic'])
    agent = agent.replace(network=agent.network.replace(params=params))
    obs, actions = batch['observations'], batch['actions']
    v = agent.network.select('value')(obs)
    target_positive = jnp.mean(jnp.min(agent.network.select('target_critic')(obs, actions), axis=0) - v > 0)
    online_positive = jnp.mean(jnp.min(agent.network.select('critic')(obs, actions), axis=0) - v > 0)
    assert float(target_positive) != float(online_positive)
    _, info = jax.jit(lambda a, b: a.update(b))(agent, batch)
    assert float(info['positive_fraction']) == pytest.approx(float(target_positive))


@pytest.mark.slow
def test_main_trains_and_evaluates_on_collected_data(buffer_root, tmp_path):
    common = [f'--dataset_dir={buffer_root}', f'--save_dir={tmp_path}', '--train_steps=20', '--log_interval=20',
              '--eval_interval=20', '--save_interval=20', '--eval_episodes=1', '--eval_max_steps=10',
              '--eval_workers=0', '--config.batch_size=32', '--config.actor_hidden_dims=16,16',
              '--config.value_hidden_dims=16,16']
    result = subprocess.run([sys.executable, 'main.py', '--agent=cfgrl_exorl', '--env_name=exorl-walker-stand',
                             '--eval_guidance=1,3', *common], cwd=REPO, env=dict(os.environ, MUJOCO_GL='egl'),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / 'exorl-walker-stand' / 'cfgrl_exorl').iterdir()
    summary = json.loads((run / 'summary.json').read_text())
    assert sorted(summary['guidance']) == ['1', '3']
    for entry in summary['guidance'].values():
        # A 10-step walker-stand episode returns between 0 and 10 (rewards in [0, 1]).
        assert 0.0 < entry['overall_return'] <= 10.0 and 'overall_success' not in entry
    assert (run / 'eval.csv').read_text().splitlines()[0] == 'step,guidance,overall_return,task1'


@pytest.mark.slow
def test_exorl_awr_trains_on_relabelled_data(buffer_root):
    """AWR with the ExORL settings (main.py gives them to --agent=awr on exorl-* envs, see above): a learned
    log-std that the loss moves, and mean actions in [−1, 1]."""
    from agents import get_agent_class
    from datasets.families import load_env_and_datasets
    from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
    from experiment.settings import default_config

    config = default_config('awr', 'exorl-walker-walk')
    config.actor_hidden_dims = config.value_hidden_dims = (16, 16)
    config.batch_size = 32
    env, train, _ = load_env_and_datasets('exorl-walker-walk', str(buffer_root))
    env.close()
    batch = sample_goal_batch(device_dataset(train), jax.random.PRNGKey(0), GoalSamplingConfig.from_config(config))
    agent = get_agent_class('awr').create(0, batch, config)
    updated, info = jax.jit(lambda a, b: a.update(b))(agent, batch)
    log_stds = lambda a: a.network.params['modules_actor']['log_stds']
    assert not np.allclose(log_stds(updated), log_stds(agent)) and np.isfinite(float(info['actor_loss']))
    actions = updated.sample_actions(batch['observations'][:4], None, jax.random.PRNGKey(0))
    assert actions.shape == (4, 6) and bool(jnp.all(jnp.abs(actions) <= 1))
