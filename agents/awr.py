"""AWR baseline (docs/method.md#variants): IQL value + a unit-std Gaussian actor trained by advantage-weighted
regression, weights min(exp(A/β), max_weight) with `alpha` = 1/β; evaluated at the mean action."""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents.base import Batch, Info
from agents.iql import IQLAgent, create_iql_agent
from networks import GaussianActor, unit_gaussian_nll


class AWRAgent(IQLAgent):
    label_keys = ('alpha',)

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'AWRAgent':
        actor = GaussianActor(tuple(config.actor_hidden_dims), example_batch['actions'].shape[-1])
        return create_iql_agent(cls, seed, example_batch, config, actor, (example_batch['observations'],))

    def actor_loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        del rng
        weights = jnp.minimum(jnp.exp(self.advantages(batch) * self.config.alpha), self.config.max_weight)
        means = self.network.select('actor')(batch['observations'], params=grad_params)
        loss = jnp.mean(weights * unit_gaussian_nll(batch['actions'], means))
        return loss, {'adv_weight_mean': weights.mean(), 'adv_weight_max': weights.max(),
                      'adv_weight_clipped_fraction': jnp.mean(weights >= self.config.max_weight)}

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: Any, seed: jnp.ndarray) -> jnp.ndarray:
        """The mean action, clipped; `goals` and `seed` are part of the common interface and unused here."""
        del goals, seed
        return jnp.clip(self.network.select('actor')(observations), -1.0, 1.0)
