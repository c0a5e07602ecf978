"""CFGRL on ExORL (the paper's Table 1), with the authors' ExORL settings: IQL value + a flow actor conditioned on
"positive advantage" or ∅.

Label: positive where min(Q1, Q2)(s, a) − V(s) > 0, Q from the target critic. Actor loss: on every row the flow
is regressed twice, once with the positive label (counted on positive rows only) and once with ∅ (weight
`uncond_weight`); each row's error is the mean over action dimensions, as in the authors' code. Flow times are
drawn from the grid {0, 1/K, ..., 1} of the K = flow_steps sampling steps. Sampling guides from ∅ toward positive:
v(∅) + w·(v(positive) − v(∅)).
"""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents import flow
from agents.base import Batch, Info
from agents.guidance import get_rule
from agents.iql import IQLAgent, create_iql_agent
from networks.exorl import ExorlValueNet, LabelVelocity
from networks.labels import LABEL_POSITIVE, LABEL_UNCOND


class CFGRLExorlAgent(IQLAgent):
    w1_label = 'w = 1 (flow policy on positive advantage)'
    # single_task from IQLAgent, the others Agent's defaults.
    inherits = ('supports_pixels', 'single_task', 'baselines', 'label_keys')

    @classmethod
    def guided_by(cls, config) -> bool:
        """Always guided: the ∅ field is trained on every row, so there is always a field to guide away from."""
        return True

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'CFGRLExorlAgent':
        obs, actions = example_batch['observations'], example_batch['actions']
        actor = LabelVelocity(tuple(config.actor_hidden_dims), actions.shape[-1], config.label_embed_dim,
                              config.time_embed_dim)
        labels = jnp.zeros(obs.shape[0], jnp.int32)
        return create_iql_agent(cls, seed, example_batch, config, actor,
                                (obs, labels, actions, jnp.zeros((obs.shape[0], 1))), value_net=ExorlValueNet)

    def actor_loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        obs, actions = batch['observations'], batch['actions']
        positive = (self.target_advantages(batch) > 0).astype(jnp.float32)
        noise_rng, time_rng = jax.random.split(rng)
        noise = jax.random.normal(noise_rng, actions.shape, actions.dtype)
        k = self.config.flow_steps
        times = jax.random.randint(time_rng, (actions.shape[0], 1), 0, k + 1).astype(actions.dtype) / k
        noisy = flow.interpolate(noise, actions, times)
        # Both labels in one pass over the stacked [positive; ∅] batch.
        b = obs.shape[0]
        labels = jnp.concatenate([jnp.full(b, LABEL_POSITIVE), jnp.full(b, LABEL_UNCOND)]).astype(jnp.int32)
        velocity = self.network.select('actor')(jnp.concatenate([obs, obs]), labels, jnp.concatenate([noisy, noisy]),
                                                jnp.concatenate([times, times]), params=grad_params)
        errors = jnp.mean((velocity - jnp.concatenate([flow.flow_target(noise, actions)] * 2)) ** 2, axis=-1)
        loss_positive, loss_uncond = jnp.mean(positive * errors[:b]), jnp.mean(errors[b:])
        return loss_positive + self.config.uncond_weight * loss_uncond, {
            'positive_fraction': positive.mean(), 'actor_loss_positive': loss_positive,
            'actor_loss_uncond': loss_uncond}

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: Any, seed: jnp.ndarray,
                       guidance: jnp.ndarray | float = 1.0) -> jnp.ndarray:
        """Guided samples toward the positive label; `goals` is part of the common interface and unused."""
        del goals
        labels = jnp.full(observations.shape[0], LABEL_POSITIVE, jnp.int32)
        actions = flow.sample_guided(self.network.select('actor'), observations, labels, guidance, seed,
                                     self.action_dim, self.config.flow_steps,
                                     rule=get_rule(self.config.guidance_rule))
        return jnp.clip(actions, -1.0, 1.0)
