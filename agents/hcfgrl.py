"""HCFGRL: hierarchical CFGRL (docs/method.md#variants). With p_uncond = 0 it is flow HGCBC.

High level: flow over subgoals conditioned on the goal, (s, g) → rep(s_{t+k}); low level: flow over actions
conditioned on the subgoal, (s, subgoal) → a. Each level has its own unconditional embedding and dropout. Sampling
re-plans the subgoal at every call and guides both levels with the same w and rule; the subgoal is not clipped.
"""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents import flow
from agents.base import Agent, Batch, Info, freeze_config, init_network
from agents.guidance import get_rule
from agents.hierarchical import level_inputs
from networks import VelocityField


class HCFGRLAgent(Agent):
    baselines = {'flow_hgcbc': {'p_uncond': 0.0}}
    w1_label = 'w = 1 (flow HGCBC)'
    inherits = ('supports_pixels', 'single_task', 'label_keys', 'guided_by')  # Agent's defaults.

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'HCFGRLAgent':
        goal_dim, action_dim = example_batch['goals'].shape[-1], example_batch['actions'].shape[-1]
        hidden, dropout = tuple(config.actor_hidden_dims), config.p_uncond > 0
        modules = {'high': VelocityField(hidden, goal_dim, cond_dim=goal_dim, uncond_embedding=dropout),
                   'low': VelocityField(hidden, action_dim, cond_dim=goal_dim, uncond_embedding=dropout)}
        rng, network = init_network(seed, modules, level_inputs(example_batch, with_times=True), config)
        return cls(rng=rng, network=network, config=freeze_config(config), action_dim=action_dim)

    def loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        high_rng, low_rng = jax.random.split(rng)
        obs, p = batch['observations'], self.config.p_uncond
        high_loss, _ = flow.dropout_flow_loss(self.network.select('high'), obs, batch['goals'],
                                              batch['high_targets'], p, high_rng, grad_params)
        low_loss, _ = flow.dropout_flow_loss(self.network.select('low'), obs, batch['low_goals'],
                                             batch['actions'], p, low_rng, grad_params)
        return high_loss + low_loss, {'high_loss': high_loss, 'low_loss': low_loss, 'actor_loss': low_loss}

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: jnp.ndarray, seed: jnp.ndarray,
                       guidance: jnp.ndarray | float = 1.0) -> jnp.ndarray:
        """Plans a subgoal and acts toward it, both levels guided by `guidance` (scalar or per-row vector)."""
        high_rng, low_rng = jax.random.split(seed)
        steps, rule = self.config.flow_steps, get_rule(self.config.guidance_rule)
        subgoals = flow.sample_guided(self.network.select('high'), observations, goals, guidance, high_rng,
                                      goals.shape[-1], steps, self.guided, rule)
        actions = flow.sample_guided(self.network.select('low'), observations, subgoals, guidance, low_rng,
                                     self.action_dim, steps, self.guided, rule)
        return jnp.clip(actions, -1.0, 1.0)
