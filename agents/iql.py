"""IQL value learning shared by the single-task agents (value-guided CFGRL and AWR), docs/method.md#variants.

V(s):   expectile regression (τ = `expectile`) onto min(Q1, Q2)(s, a) of the target critic.
Q_i:    TD regression onto r + γ·mask·V(s').
A(s,a): min(Q1, Q2)(s, a) − V(s) of the online networks, never differentiated (the actor only reads it).
The target critic follows the critic by Polyak averaging after every step.
"""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents.base import Agent, Batch, Info, freeze_config, init_network, polyak_update
from networks import ValueNet


def expectile_loss(diff: jnp.ndarray, expectile: float) -> jnp.ndarray:
    """Asymmetric squared loss |τ − 1[diff < 0]|·diff²: positive errors weigh τ, negative ones 1 − τ."""
    weight = jnp.where(diff >= 0, expectile, 1.0 - expectile)
    return weight * diff ** 2


def stats(name: str, x: jnp.ndarray) -> Info:
    """Mean, min and max of `x` as diagnostics `<name>_mean`, `<name>_min`, `<name>_max`."""
    return {f'{name}_mean': x.mean(), f'{name}_min': x.min(), f'{name}_max': x.max()}


def create_iql_agent(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict,
                     actor, actor_inputs: Tuple, value_net=ValueNet) -> Agent:
    """Builds an agent whose network holds V, twin Q, a target Q (all `value_net`s) and the given actor module."""
    obs, actions = example_batch['observations'], example_batch['actions']
    hidden = tuple(config.value_hidden_dims)
    modules = {'value': value_net(hidden), 'critic': value_net(hidden, num_ensemble=2),
               'target_critic': value_net(hidden, num_ensemble=2), 'actor': actor}
    inputs = {'value': (obs,), 'critic': (obs, actions), 'target_critic': (obs, actions), 'actor': actor_inputs}
    rng, network = init_network(seed, modules, inputs, config)
    params = dict(network.params)
    # Start the target equal to the critic, in buffers of its own: training donates the agent, and a buffer
    # shared by two leaves cannot be donated twice.
    params['modules_target_critic'] = jax.tree.map(jnp.copy, params['modules_critic'])
    network = network.replace(params=params)
    return cls(rng=rng, network=network, config=freeze_config(config), action_dim=actions.shape[-1])


class IQLAgent(Agent):
    """Base of the IQL agents: value and critic losses, advantages and the target update. Subclasses add
    `actor_loss(batch, grad_params, rng)` and `sample_actions`."""

    single_task = True

    def value_losses(self, batch: Batch, grad_params: Any) -> Tuple[jnp.ndarray, Info]:
        obs, actions = batch['observations'], batch['actions']
        target_q = jnp.min(self.network.select('target_critic')(obs, actions), axis=0)
        v = self.network.select('value')(obs, params=grad_params)
        value_loss = expectile_loss(target_q - v, self.config.expectile).mean()

        next_v = self.network.select('value')(batch['next_observations'])
        td_target = batch['rewards'] + self.config.discount * batch['masks'] * next_v
        q = self.network.select('critic')(obs, actions, params=grad_params)
        critic_loss = jnp.mean((q - td_target[None]) ** 2)
        advantage = jnp.min(q, axis=0) - v
        return value_loss + critic_loss, {'value_loss': value_loss, 'critic_loss': critic_loss,
                                          **stats('v', v), **stats('q', q), **stats('adv', advantage),
                                          'adv_positive_fraction': jnp.mean(advantage >= 0)}

    def advantages(self, batch: Batch) -> jnp.ndarray:
        """A = min(Q1, Q2)(s, a) − V(s) with the online networks; gradients never reach them through A."""
        obs = batch['observations']
        q = jnp.min(self.network.select('critic')(obs, batch['actions']), axis=0)
        return jax.lax.stop_gradient(q - self.network.select('value')(obs))

    def target_advantages(self, batch: Batch) -> jnp.ndarray:
        """A = min(Q1, Q2)(s, a) − V(s) with Q from the target critic (the authors' ExORL agents), never
        differentiated."""
        obs = batch['observations']
        q = jnp.min(self.network.select('target_critic')(obs, batch['actions']), axis=0)
        return jax.lax.stop_gradient(q - self.network.select('value')(obs))

    def actor_loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        raise NotImplementedError

    def loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        """Value, critic and actor losses summed under one optimiser (as the authors' code)."""
        value_loss, info = self.value_losses(batch, grad_params)
        actor_loss, actor_info = self.actor_loss(batch, grad_params, rng)
        return value_loss + actor_loss, {**info, **actor_info, 'actor_loss': actor_loss}

    def after_update(self) -> 'IQLAgent':
        return self.replace(network=polyak_update(self.network, self.config.tau))
