"""HGCBC: hierarchical Gaussian GCBC (docs/method.md#variants): a high level (s, g) → subgoal mean and a low level
(s, subgoal) → action mean, each a unit-std Gaussian MLP; evaluation uses the means."""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents.base import Agent, Batch, Info, freeze_config, init_network
from agents.hierarchical import level_inputs
from networks import GaussianActor, unit_gaussian_nll


class HGCBCAgent(Agent):
    inherits = ('supports_pixels', 'single_task', 'baselines', 'label_keys', 'w1_label', 'guided_by')  # Agent's.
    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'HGCBCAgent':
        goal_dim, action_dim = example_batch['goals'].shape[-1], example_batch['actions'].shape[-1]
        hidden = tuple(config.actor_hidden_dims)
        modules = {'high': GaussianActor(hidden, goal_dim), 'low': GaussianActor(hidden, action_dim)}
        rng, network = init_network(seed, modules, level_inputs(example_batch, with_times=False), config)
        return cls(rng=rng, network=network, config=freeze_config(config), action_dim=action_dim)

    def loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        del rng  # Deterministic loss.
        obs = batch['observations']
        high = self.network.select('high')(obs, batch['goals'], params=grad_params)
        low = self.network.select('low')(obs, batch['low_goals'], params=grad_params)
        high_loss = unit_gaussian_nll(batch['high_targets'], high).mean()
        low_loss = unit_gaussian_nll(batch['actions'], low).mean()
        return high_loss + low_loss, {'high_loss': high_loss, 'low_loss': low_loss, 'actor_loss': low_loss}

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: jnp.ndarray, seed: jnp.ndarray) -> jnp.ndarray:
        """The low level's mean action toward the high level's mean subgoal; `seed` is unused (deterministic)."""
        del seed
        subgoals = self.network.select('high')(observations, goals)
        return jnp.clip(self.network.select('low')(observations, subgoals), -1.0, 1.0)
