"""CFGRL: classifier-free guidance of a goal-conditioned flow policy as policy improvement (paper.md §1–2).

Training is flow GCBC with the goal replaced, with probability `p_uncond`, by a learned unconditional embedding.
Sampling integrates v_unc + w·(v_cond − v_unc): w = 0 is flow BC, w = 1 flow GCBC, w > 1 improves on GCBC.
"""
from typing import Any, ClassVar, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents import flow
from agents.base import Agent, Batch, Info, broadcast_guidance, freeze_config, init_network
from networks import VelocityField


class CFGRLAgent(Agent):
    guided: ClassVar[bool] = True

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'CFGRLAgent':
        obs, goals, actions = example_batch['observations'], example_batch['goals'], example_batch['actions']
        velocity = VelocityField(tuple(config.actor_hidden_dims), actions.shape[-1], cond_dim=goals.shape[-1],
                                 uncond_embedding=True)
        times = jnp.zeros((actions.shape[0], 1))
        rng, network = init_network(seed, {'velocity': velocity}, {'velocity': (obs, goals, actions, times)}, config)
        return cls(rng=rng, network=network, config=freeze_config(config), action_dim=actions.shape[-1])

    def loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        flow_rng, drop_rng = jax.random.split(rng)
        actions = batch['actions']
        noise, times, noisy_actions = flow.sample_flow_inputs(flow_rng, actions)
        uncond = jax.random.bernoulli(drop_rng, self.config.p_uncond, (actions.shape[0],))
        velocity = self.network.select('velocity')(batch['observations'], batch['goals'], noisy_actions, times,
                                                   uncond, params=grad_params)
        loss = flow.flow_matching_loss(velocity, noise, actions)
        return loss, {'actor_loss': loss, 'uncond_fraction': uncond.mean()}

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: jnp.ndarray, seed: jnp.ndarray,
                       guidance: jnp.ndarray | float = 1.0) -> jnp.ndarray:
        """Guided flow samples for a batch; `guidance` is a scalar or a per-row (B,) vector (traced)."""
        velocity_fn = flow.fused_guided_velocity(self.network.select('velocity'), observations, goals,
                                                 broadcast_guidance(guidance, observations.shape[0]))
        noise = jax.random.normal(seed, (observations.shape[0], self.action_dim))
        return jnp.clip(flow.euler_integrate(velocity_fn, noise, self.config.flow_steps), -1.0, 1.0)
