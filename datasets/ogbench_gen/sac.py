"""Soft actor-critic: the online agent that trains the ant expert of the antmaze datasets
(datasets.ogbench_gen.train_expert).

One ModuleDict holds the actor, twin critics, their target copy and the entropy temperature α; the shared update
step differentiates a single total loss:
    critic:      (Q_i(s, a) − [r + γ·mask·(min_j Q̄_j(s', a') − α·log π(a'|s'))])², a' ~ π(·|s')
    actor:       α·log π(ã|s) − min_j Q_j(s, ã), ã ~ π(·|s) (reparameterised, gradients reach the actor only)
    temperature: α·(H − H_target), H = −log π(ã|s) held fixed, H_target = −multiplier·|A|
The target critic follows by Polyak averaging in `after_update`. SAC learns online, not from a dataset, so it is
not in `agents.AGENTS` (main.py's offline agents and their parametrised tests).
"""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents.base import Agent, Batch, Info, freeze_config, init_network, polyak_update
from networks import LogScalar, TanhGaussianActor, ValueNet


def actor_module(config: ml_collections.ConfigDict, action_dim: int) -> TanhGaussianActor:
    return TanhGaussianActor(tuple(config.actor_hidden_dims), action_dim,
                             final_init_scale=config.actor_final_init_scale)


def squashed_sample(mean: jnp.ndarray, log_std: jnp.ndarray, rng: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """An action tanh(u), u ~ N(mean, exp(log_std)²), and its log-density (with the tanh change of variables).

    log(1 − tanh(u)²) is written as 2·(log 2 − u − softplus(−2u)): finite even where tanh(u) rounds to ±1.
    """
    noise = jax.random.normal(rng, mean.shape)
    u = mean + jnp.exp(log_std) * noise
    gaussian = -0.5 * noise ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), jnp.sum(gaussian - log_det, axis=-1)


class SACAgent(Agent):
    """SAC with twin critics (min), a tanh-squashed Gaussian actor and an automatically tuned temperature."""

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'SACAgent':
        obs, actions = example_batch['observations'], example_batch['actions']
        action_dim = actions.shape[-1]
        hidden = tuple(config.value_hidden_dims)
        modules = {'actor': actor_module(config, action_dim),
                   'critic': ValueNet(hidden, num_ensemble=2, layer_norm=False),
                   'target_critic': ValueNet(hidden, num_ensemble=2, layer_norm=False),
                   'alpha': LogScalar()}
        inputs = {'actor': (obs,), 'critic': (obs, actions), 'target_critic': (obs, actions), 'alpha': ()}
        rng, network = init_network(seed, modules, inputs, config)
        params = dict(network.params)
        # The target starts equal to the critic, in buffers of its own (donated training states cannot alias).
        params['modules_target_critic'] = jax.tree.map(jnp.copy, params['modules_critic'])
        network = network.replace(params=params)
        return cls(rng=rng, network=network, config=freeze_config(config), action_dim=action_dim)

    @property
    def target_entropy(self) -> float:
        return -self.config.target_entropy_multiplier * self.action_dim

    def loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        critic_rng, actor_rng = jax.random.split(rng)
        alpha = self.network.select('alpha')()

        next_actions, next_log_probs = squashed_sample(
            *self.network.select('actor')(batch['next_observations']), critic_rng)
        next_q = jnp.min(self.network.select('target_critic')(batch['next_observations'], next_actions), axis=0)
        target = batch['rewards'] + self.config.discount * batch['masks'] * (next_q - alpha * next_log_probs)
        q = self.network.select('critic')(batch['observations'], batch['actions'], params=grad_params)
        critic_loss = jnp.mean((q - target[None]) ** 2)

        mean, log_std = self.network.select('actor')(batch['observations'], params=grad_params)
        actions, log_probs = squashed_sample(mean, log_std, actor_rng)
        q_pi = jnp.min(self.network.select('critic')(batch['observations'], actions), axis=0)
        actor_loss = jnp.mean(alpha * log_probs - q_pi)

        entropy = -jax.lax.stop_gradient(log_probs).mean()
        alpha_loss = self.network.select('alpha')(params=grad_params) * (entropy - self.target_entropy)

        return critic_loss + actor_loss + alpha_loss, {
            'critic_loss': critic_loss, 'actor_loss': actor_loss, 'alpha_loss': alpha_loss, 'alpha': alpha,
            'entropy': entropy, 'std': jnp.exp(log_std).mean(), 'q_mean': q.mean()}

    def after_update(self) -> 'SACAgent':
        return self.replace(network=polyak_update(self.network, self.config.tau))

    def sample_actions(self, observations: jnp.ndarray, seed: jnp.ndarray | None = None) -> jnp.ndarray:
        """A sample of the policy, or its mode tanh(mean) when `seed` is None (the expert's deterministic action)."""
        mean, log_std = self.network.select('actor')(observations)
        if seed is None:
            return jnp.tanh(mean)
        return squashed_sample(mean, log_std, seed)[0]
