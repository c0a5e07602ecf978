"""Flow GCBC / flow BC: a flow-matching policy trained with no condition dropout and sampled without guidance.

Flow GCBC equals CFGRL at w = 1 in expectation but trains every example conditionally; `use_goals=False` gives
flow BC (CFGRL's w = 0 analogue).
"""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents import flow, pixels
from agents.base import Agent, Batch, Info, freeze_config, init_network
from networks import VelocityField


class GCFBCAgent(Agent):
    supports_pixels = True
    baselines = {'flow_bc': {'use_goals': False}}
    inherits = ('single_task', 'label_keys', 'w1_label', 'guided_by')  # Agent's defaults.

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'GCFBCAgent':
        actions = example_batch['actions']
        obs = pixels.example_features(example_batch['observations'], config)
        goals = example_batch['goals'] if config.use_goals else None
        velocity = VelocityField(tuple(config.actor_hidden_dims), actions.shape[-1],
                                 cond_dim=None if goals is None else goals.shape[-1])
        times = jnp.zeros((actions.shape[0], 1))
        rng, network = init_network(seed, {'velocity': velocity}, {'velocity': (obs, goals, actions, times)}, config,
                                    observations=example_batch['observations'])
        return cls(rng=rng, network=network, config=freeze_config(config), action_dim=actions.shape[-1])

    def _goals(self, goals: jnp.ndarray | None) -> jnp.ndarray | None:
        return goals if self.config.use_goals else None

    def loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        actions = batch['actions']
        noise, times, noisy_actions = flow.sample_flow_inputs(rng, actions)
        obs = self.encode(batch['observations'], params=grad_params)
        velocity = self.network.select('velocity')(obs, self._goals(batch.get('goals')), noisy_actions, times,
                                                   params=grad_params)
        loss = flow.flow_matching_loss(velocity, noise, actions)
        return loss, {'actor_loss': loss}

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: jnp.ndarray | None, seed: jnp.ndarray) -> jnp.ndarray:
        """Flow samples for a batch (stochastic: random initial noise), clipped to [−1, 1]. Pixel observations are
        encoded once, before the flow steps."""
        goals, observations = self._goals(goals), self.encode(observations)
        net = self.network.select('velocity')
        noise = jax.random.normal(seed, (observations.shape[0], self.action_dim))
        actions = flow.euler_integrate(lambda a, t: net(observations, goals, a, t), noise, self.config.flow_steps)
        return jnp.clip(actions, -1.0, 1.0)
