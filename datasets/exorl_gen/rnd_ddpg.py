"""RND exploration (URLB's reward-free RND agent): DDPG trained on Random Network Distillation's intrinsic reward.

Used only by the ExORL collector (datasets/exorl_collect.py), not by main.py. Networks as URLB builds them for
state observations: actor Linear → LayerNorm → tanh (a 50-d feature) → ReLU MLP → tanh action; twin critic
Linear([s, a]) → LayerNorm → tanh → two ReLU MLP heads; RND predictor and frozen random target ReLU MLPs on
observations normalised by the batch's own mean and std (URLB's affine-free BatchNorm in training mode), clipped to
±5. Per update:
- RND: predictor regresses the target's features; the error e(s) = mean_k (f(s) − f̂(s))_k²;
- reward: e(s) / sqrt(running variance of e) (URLB's running moments, updated with the batch first);
- critic: TD onto r + γ^n · min Q'(s_{t+n}, π(s_{t+n}) + clipped noise) (n-step next state, target critic);
- actor: maximise min(Q1, Q2)(s, π(s) + clipped noise); noise std 0.2 clipped at 0.3.
One Adam over all modules (the same as URLB's separate Adams at one learning rate: the losses share no
parameters); the target critic follows by Polyak averaging.
"""
from typing import Any, Dict, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from agents.base import Agent, Batch, Info, freeze_config, init_network
from networks.mlp import default_init


class _TanhTrunk(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return jnp.tanh(nn.LayerNorm()(nn.Dense(self.width, kernel_init=default_init())(x)))


def _relu_mlp(x, widths: Sequence[int]):
    for i, width in enumerate(widths):
        x = nn.Dense(width, kernel_init=default_init())(x)
        if i + 1 < len(widths):
            x = nn.relu(x)
    return x


class DDPGActor(nn.Module):
    hidden_dim: int
    action_dim: int
    feature_dim: int = 50

    @nn.compact
    def __call__(self, observations):
        return jnp.tanh(_relu_mlp(_TanhTrunk(self.feature_dim)(observations),
                                  (self.hidden_dim, self.hidden_dim, self.action_dim)))


class DDPGCritic(nn.Module):
    """Twin Q over a shared trunk; returns (2, B)."""

    hidden_dim: int

    @nn.compact
    def __call__(self, observations, actions):
        h = _TanhTrunk(self.hidden_dim)(jnp.concatenate([observations, actions], axis=-1))
        return jnp.stack([_relu_mlp(h, (self.hidden_dim, self.hidden_dim, 1))[..., 0] for _ in range(2)])


class RNDNet(nn.Module):
    hidden_dim: int
    rep_dim: int

    @nn.compact
    def __call__(self, observations):
        return _relu_mlp(observations, (self.hidden_dim, self.hidden_dim, self.rep_dim))


def get_config() -> ml_collections.ConfigDict:
    """URLB's RND settings, with the widths and batch cut for CPUs (URLB: hidden 1024, batch 1024)."""
    config = ml_collections.ConfigDict()
    config.agent_name = 'rnd_ddpg'
    config.lr = 1e-4  # Adam learning rate (URLB).
    config.hidden_dim = 256  # Actor, critic and RND widths (URLB: 1024).
    config.rnd_rep_dim = 512  # RND feature width (URLB).
    config.batch_size = 256  # Transitions per update (URLB: 1024).
    config.discount = 0.99
    config.nstep = 3  # n-step TD target (URLB).
    config.tau = 0.01  # Polyak rate of the target critic (URLB).
    config.stddev = 0.2  # Exploration / target-policy noise (URLB's constant schedule).
    config.stddev_clip = 0.3  # Clip of the target-policy noise.
    config.obs_clip = 5.0  # RND input clip after normalisation.
    return config


def _noisy(actions, rng, std, clip):
    noise = jnp.clip(std * jax.random.normal(rng, actions.shape), -clip, clip)
    return jnp.clip(actions + noise, -1.0, 1.0)


class RNDDDPGAgent(Agent):
    reward_moments: jnp.ndarray  # Running (mean, variance, count) of the RND error, URLB's RMS.

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'RNDDDPGAgent':
        obs, actions = example_batch['observations'], example_batch['actions']
        modules = {'actor': DDPGActor(config.hidden_dim, actions.shape[-1]), 'critic': DDPGCritic(config.hidden_dim),
                   'target_critic': DDPGCritic(config.hidden_dim),
                   'rnd_predictor': RNDNet(config.hidden_dim, config.rnd_rep_dim),
                   'rnd_target': RNDNet(config.hidden_dim, config.rnd_rep_dim)}
        inputs = {'actor': (obs,), 'critic': (obs, actions), 'target_critic': (obs, actions),
                  'rnd_predictor': (obs,), 'rnd_target': (obs,)}
        rng, network = init_network(seed, modules, inputs, config)
        params = dict(network.params)
        params['modules_target_critic'] = jax.tree.map(jnp.copy, params['modules_critic'])
        return cls(rng=rng, network=network.replace(params=params), config=freeze_config(config),
                   action_dim=actions.shape[-1], reward_moments=jnp.array([0.0, 1.0, 1e-4]))

    def rnd_error(self, observations: jnp.ndarray, params: Any = None) -> jnp.ndarray:
        mean, std = observations.mean(0), observations.std(0)
        x = jnp.clip((observations - mean) / (std + 1e-5), -self.config.obs_clip, self.config.obs_clip)
        target = jax.lax.stop_gradient(self.network.select('rnd_target')(x))
        return jnp.mean((self.network.select('rnd_predictor')(x, params=params) - target) ** 2, axis=-1)

    def updated_moments(self, errors: jnp.ndarray) -> jnp.ndarray:
        mean, var, count = self.reward_moments
        n = errors.shape[0]
        delta = errors.mean() - mean
        total = count + n
        new_var = (var * count + errors.var() * n + delta ** 2 * count * n / total) / total
        return jnp.stack([mean + delta * n / total, new_var, total])

    def loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        cfg, obs, actions = self.config, batch['observations'], batch['actions']
        errors = self.rnd_error(obs, grad_params)
        rnd_loss = errors.mean()
        moments = self.updated_moments(jax.lax.stop_gradient(errors))
        rewards = jax.lax.stop_gradient(errors) / (jnp.sqrt(moments[1]) + 1e-8)

        next_rng, actor_rng = jax.random.split(rng)
        next_actions = _noisy(self.network.select('actor')(batch['next_observations']), next_rng, cfg.stddev,
                              cfg.stddev_clip)
        next_q = jnp.min(self.network.select('target_critic')(batch['next_observations'], next_actions), axis=0)
        target = rewards + cfg.discount ** cfg.nstep * next_q
        q = self.network.select('critic')(obs, actions, params=grad_params)
        critic_loss = jnp.mean(jnp.sum((q - target[None]) ** 2, axis=0))

        policy = _noisy(self.network.select('actor')(obs, params=grad_params), actor_rng, cfg.stddev,
                        cfg.stddev_clip)
        actor_loss = -jnp.mean(jnp.min(self.network.select('critic')(obs, policy), axis=0))
        info = {'rnd_loss': rnd_loss, 'critic_loss': critic_loss, 'actor_loss': actor_loss,
                'intrinsic_reward': rewards.mean(), 'moments': moments}
        return rnd_loss + critic_loss + actor_loss, info

    def update(self, batch: Batch) -> Tuple['RNDDDPGAgent', Info]:
        agent, info = super().update(batch)
        return agent.replace(reward_moments=info.pop('moments')), info

    def after_update(self) -> 'RNDDDPGAgent':
        params: Dict[str, Any] = dict(self.network.params)
        tau = self.config.tau
        params['modules_target_critic'] = jax.tree.map(lambda c, t: tau * c + (1 - tau) * t,
                                                       params['modules_critic'], params['modules_target_critic'])
        return self.replace(network=self.network.replace(params=params))

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: Any, seed: jnp.ndarray) -> jnp.ndarray:
        """Exploration actions: the actor's action plus N(0, stddev²) noise, clipped to [−1, 1]."""
        del goals
        actions = self.network.select('actor')(observations)
        return jnp.clip(actions + self.config.stddev * jax.random.normal(seed, actions.shape), -1.0, 1.0)
