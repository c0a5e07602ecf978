"""The SAC agent and the ant-expert trainer: the loss pieces, the temperature, the replay ring and exact resuming."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from datasets.ogbench_gen.expert import NumpyActor, flatten_params
from datasets.ogbench_gen.sac import SACAgent, squashed_sample
from datasets.ogbench_gen.sac_config import get_config
from datasets.ogbench_gen.train_expert import ReplayBuffer, TrainArgs, Trainer

OBS_DIM, ACT_DIM = 29, 8


def small_config():
    config = get_config()
    config.actor_hidden_dims = (64, 64)
    config.value_hidden_dims = (64, 64)
    return config


def random_batch(seed: int, size: int = 256):
    rng = np.random.default_rng(seed)
    return dict(observations=rng.normal(size=(size, OBS_DIM)).astype(np.float32),
                actions=rng.uniform(-1, 1, (size, ACT_DIM)).astype(np.float32),
                rewards=rng.normal(0, 0.1, size).astype(np.float32), masks=np.ones(size, np.float32),
                next_observations=rng.normal(size=(size, OBS_DIM)).astype(np.float32))


def test_squashed_log_prob_matches_change_of_variables():
    mean = jnp.array([[0.3, -2.0, 4.0]])
    log_std = jnp.array([[-1.0, 0.5, 0.0]])
    action, log_prob = squashed_sample(mean, log_std, jax.random.PRNGKey(0))
    u = np.arctanh(np.asarray(action, np.float64))
    std = np.exp(np.asarray(log_std, np.float64))
    gauss = -0.5 * ((u - np.asarray(mean)) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    expected = np.sum(gauss - np.log(1 - np.tanh(u) ** 2))
    # float32 arctanh near ±1 loses digits; the formula under test does not go through it.
    np.testing.assert_allclose(float(log_prob[0]), expected, rtol=2e-3)
    assert np.all(np.abs(np.asarray(action)) < 1)


@pytest.mark.slow
def test_sac_update_moves_critic_actor_and_temperature():
    config = small_config()
    agent = SACAgent.create(0, random_batch(0, 1), config)
    update = jax.jit(lambda a, b: a.update(b))
    batch = random_batch(1)
    old = agent.network.params
    agent, info = update(agent, batch)
    new = agent.network.params
    # The target follows the updated critic by exactly one Polyak step.
    for c, t_old, t_new in zip(jax.tree.leaves(new['modules_critic']), jax.tree.leaves(old['modules_target_critic']),
                               jax.tree.leaves(new['modules_target_critic'])):
        np.testing.assert_allclose(t_new, config.tau * c + (1 - config.tau) * t_old, rtol=1e-5, atol=1e-7)
    first_critic_loss = float(info['critic_loss'])
    infos = []
    for _ in range(100):
        agent, info = update(agent, batch)
        infos.append({k: float(v) for k, v in info.items()})
    for row in infos:
        assert all(np.isfinite(v) for v in row.values()), row
    # The policy starts with std ≈ 1, far above the target entropy −|A|/2: α must fall at every step.
    alphas = np.array([row['alpha'] for row in infos])
    assert infos[0]['entropy'] > agent.target_entropy
    assert np.all(np.diff(alphas) < 0) and alphas[-1] < 0.995  # Adam: log α falls ≈ lr per step.
    assert infos[-1]['critic_loss'] < 0.8 * first_critic_loss  # Fitting a fixed batch.
    for name in ('modules_actor', 'modules_critic'):
        moved = [float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(old[name]),
                                                             jax.tree.leaves(agent.network.params[name]))]
        assert max(moved) > 1e-3, name


def test_replay_buffer_wraps_oldest_first():
    buffer = ReplayBuffer(5, 1, 1)
    for i in range(7):
        buffer.add([i], [i], i, 1.0, [i + 1])
    assert buffer.size == 5 and buffer.ptr == 2
    np.testing.assert_array_equal(buffer.data['rewards'], [5, 6, 2, 3, 4])
    batch = buffer.sample(np.random.default_rng(0), 1000)
    assert set(batch['rewards'].tolist()) == {2, 3, 4, 5, 6}
    np.testing.assert_array_equal(batch['next_observations'][:, 0], batch['observations'][:, 0] + 1)


def make_trainer(out, train_steps):
    args = TrainArgs(out=str(out), seed=3, train_steps=train_steps, seed_steps=100, buffer_size=150,
                     save_interval=200, log_interval=100, eval_episodes=0, episode_length=100, progress=False)
    return Trainer(args, small_config())


@pytest.mark.slow
@pytest.mark.filterwarnings('ignore::DeprecationWarning')
def test_trainer_fills_ring_learns_and_resumes_exactly(tmp_path):
    straight = make_trainer(tmp_path / 'straight', 300)
    straight.train()
    buffer = straight.buffer
    # 300 transitions through a 150-slot ring: full, write position back at 0, holding steps 150..299 in order.
    assert buffer.size == 150 and buffer.ptr == 0
    obs, next_obs = buffer.data['observations'], buffer.data['next_observations']
    continuing = np.ones(150, bool)
    continuing[[49, 149]] = False  # Steps 199 and 299 end their 100-step episodes.
    np.testing.assert_allclose(next_obs[:-1][continuing[:-1]], obs[1:][continuing[:-1]])
    assert np.all(np.abs(np.linalg.norm(obs[:, -2:], axis=1) - 1) < 1e-5)  # The direction z is a unit vector.
    # One update per environment step once the 100 seed steps are in.
    assert int(straight.agent.network.step) == 300 - 100 + 1
    curve = straight.curve
    assert [row['step'] for row in curve] == [100, 200, 300]
    assert curve[-1]['alpha'] < curve[1]['alpha'] < 1.0
    assert all(np.isfinite(row['critic_loss']) for row in curve[1:])
    for name in ('checkpoint.npz', 'expert.npz', 'expert.json', 'curve.csv', 'curve.png'):
        assert os.path.exists(tmp_path / 'straight' / name), name

    make_trainer(tmp_path / 'resumed', 200).train()
    resumed = make_trainer(tmp_path / 'resumed', 300)
    resumed.train()
    assert resumed.episode == straight.episode == 3
    for a, b in zip(jax.tree.leaves(straight.agent), jax.tree.leaves(resumed.agent)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(resumed.buffer.data['observations'], obs)

    # The numpy actor of the exported expert is the agent's deterministic policy.
    actor = NumpyActor(flatten_params(straight.agent.network.params['modules_actor']))
    np.testing.assert_allclose(actor(obs[:10]), np.asarray(straight.agent.sample_actions(jnp.asarray(obs[:10]))),
                               atol=1e-5)
