"""CFGRL: classifier-free guidance of a goal-conditioned flow policy as policy improvement (docs/method.md).

Training is flow GCBC with the goal replaced, with probability `p_uncond`, by a learned unconditional embedding.
Sampling integrates v_unc + w·(v_cond − v_unc): w = 0 is flow BC, w = 1 flow GCBC, w > 1 improves on GCBC
(`config.guidance_rule` swaps this rule for another of agents/guidance.py).
"""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents import flow, pixels
from agents.base import Agent, Batch, Info, freeze_config, init_network
from agents.guidance import get_rule
from networks import VelocityField


class CFGRLAgent(Agent):
    supports_pixels = True
    baselines = {'gcfbc_nodrop': {'p_uncond': 0.0}}
    w1_label = 'w = 1 (flow GCBC)'
    inherits = ('single_task', 'label_keys', 'guided_by')  # Agent's defaults.

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'CFGRLAgent':
        goals, actions = example_batch['goals'], example_batch['actions']
        obs = pixels.example_features(example_batch['observations'], config)
        velocity = VelocityField(tuple(config.actor_hidden_dims), actions.shape[-1], cond_dim=goals.shape[-1],
                                 uncond_embedding=config.p_uncond > 0)
        times = jnp.zeros((actions.shape[0], 1))
        rng, network = init_network(seed, {'velocity': velocity}, {'velocity': (obs, goals, actions, times)}, config,
                                    observations=example_batch['observations'])
        return cls(rng=rng, network=network, config=freeze_config(config), action_dim=actions.shape[-1])

    def loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        obs = self.encode(batch['observations'], params=grad_params)
        loss, dropped = flow.dropout_flow_loss(self.network.select('velocity'), obs, batch['goals'],
                                               batch['actions'], self.config.p_uncond, rng, grad_params)
        return loss, {'actor_loss': loss, 'uncond_fraction': dropped}

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: jnp.ndarray, seed: jnp.ndarray,
                       guidance: jnp.ndarray | float = 1.0) -> jnp.ndarray:
        """Guided flow samples for a batch; `guidance` is a scalar or a per-row (B,) vector (traced). Pixel
        observations are encoded once, before the flow steps."""
        actions = flow.sample_guided(self.network.select('velocity'), self.encode(observations), goals, guidance, seed,
                                     self.action_dim, self.config.flow_steps, self.guided,
                                     rule=get_rule(self.config.guidance_rule))
        return jnp.clip(actions, -1.0, 1.0)
