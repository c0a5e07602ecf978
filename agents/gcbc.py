"""Gaussian GCBC / BC: OGBench's GCBC baseline (MLP mean head, constant std 1, mean action at evaluation)."""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents import pixels
from agents.base import Agent, Batch, Info, freeze_config, init_network
from networks import GaussianActor, unit_gaussian_nll


class GCBCAgent(Agent):
    supports_pixels = True
    baselines = {'bc': {'use_goals': False}}
    inherits = ('single_task', 'label_keys', 'w1_label', 'guided_by')  # Agent's defaults.

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'GCBCAgent':
        actions = example_batch['actions']
        obs = pixels.example_features(example_batch['observations'], config)
        goals = example_batch['goals'] if config.use_goals else None
        actor = GaussianActor(tuple(config.actor_hidden_dims), actions.shape[-1])
        rng, network = init_network(seed, {'actor': actor}, {'actor': (obs, goals)}, config,
                                    observations=example_batch['observations'])
        return cls(rng=rng, network=network, config=freeze_config(config), action_dim=actions.shape[-1])

    def _goals(self, goals: jnp.ndarray | None) -> jnp.ndarray | None:
        return goals if self.config.use_goals else None

    def loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        del rng  # Deterministic loss.
        obs = self.encode(batch['observations'], params=grad_params)
        means = self.network.select('actor')(obs, self._goals(batch.get('goals')), params=grad_params)
        # Negative log-likelihood under the constant unit std: 0.5·‖a − μ‖² + const.
        loss = unit_gaussian_nll(batch['actions'], means).mean()
        return loss, {'actor_loss': loss, 'mse': jnp.mean((batch['actions'] - means) ** 2)}

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: jnp.ndarray | None, seed: jnp.ndarray) -> jnp.ndarray:
        """The mean action (deterministic evaluation, as OGBench), clipped to [−1, 1]; `seed` is unused."""
        del seed
        means = self.network.select('actor')(self.encode(observations), self._goals(goals))
        return jnp.clip(means, -1.0, 1.0)
