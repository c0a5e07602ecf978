"""Value-guided CFGRL (docs/method.md#variants): the optimality condition o = 1[A(s, a) ≥ 0] from an IQL value function.

The flow actor is conditioned on o ∈ {∅, 0, 1}; the label is dropped to ∅ with probability p_uncond. Sampling
guides from the unconditional field toward o = 1: v(∅) + w·(v(o = 1) − v(∅)). This replaces AWR as the policy
extraction step; w = 0 is flow BC and larger w trusts the advantage sign more.
"""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents import flow
from agents.base import Batch, Info
from agents.guidance import get_rule
from agents.iql import IQLAgent, create_iql_agent
from networks import OptimalityVelocity
from networks.labels import LABEL_NEGATIVE, LABEL_OPTIMAL


def optimality_labels(advantages: jnp.ndarray) -> jnp.ndarray:
    """o = 1 (label 2) where A ≥ 0, o = 0 (label 1) otherwise."""
    return jnp.where(advantages >= 0, LABEL_OPTIMAL, LABEL_NEGATIVE).astype(jnp.int32)


class CFGRLIQLAgent(IQLAgent):
    baselines = {'flow_bc_iql': {'p_uncond': 0.0}}
    w1_label = 'w = 1 (flow policy on o = 1)'
    # single_task from IQLAgent, the others Agent's defaults.
    inherits = ('supports_pixels', 'single_task', 'label_keys', 'guided_by')

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'CFGRLIQLAgent':
        obs, actions = example_batch['observations'], example_batch['actions']
        actor = OptimalityVelocity(tuple(config.actor_hidden_dims), actions.shape[-1], config.label_embed_dim)
        labels = jnp.zeros(obs.shape[0], jnp.int32)
        return create_iql_agent(cls, seed, example_batch, config, actor,
                                (obs, labels, actions, jnp.zeros((obs.shape[0], 1))))

    def actor_loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        labels = optimality_labels(self.advantages(batch))
        loss, dropped = flow.dropout_flow_loss(self.network.select('actor'), batch['observations'], labels,
                                               batch['actions'], self.config.p_uncond, rng, grad_params)
        return loss, {'optimal_fraction': jnp.mean(labels == LABEL_OPTIMAL), 'uncond_fraction': dropped}

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: Any, seed: jnp.ndarray,
                       guidance: jnp.ndarray | float = 1.0) -> jnp.ndarray:
        """Guided samples toward o = 1. `goals` is part of the common interface; single-task agents ignore it."""
        del goals
        labels = jnp.full(observations.shape[0], LABEL_OPTIMAL, jnp.int32)
        actions = flow.sample_guided(self.network.select('actor'), observations, labels, guidance, seed,
                                     self.action_dim, self.config.flow_steps, self.guided,
                                     rule=get_rule(self.config.guidance_rule))
        return jnp.clip(actions, -1.0, 1.0)
