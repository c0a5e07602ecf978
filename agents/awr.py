"""AWR baseline (docs/method.md#variants): IQL value + a Gaussian actor trained by advantage-weighted regression,
weights min(exp(A/β), max_weight) with `alpha` = 1/β; evaluated at the mean action.

Two settings (config.exorl_settings): the OGBench one (GELU networks, unit-std actor, A from the online critic)
and the authors' ExORL one (configs/exorl.py AWR_EXORL, which the ExORL family in datasets/families.py gives a new
run on `exorl-*` environments): LayerNorm-then-mish networks, a learned state-independent log-std, and A from the
target critic.
"""
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from agents.base import Batch, Info
from agents.iql import IQLAgent, create_iql_agent
from networks import GaussianActor, ValueNet, unit_gaussian_nll
from networks.exorl import ExorlValueNet, LearnedStdGaussianActor, gaussian_nll


class AWRAgent(IQLAgent):
    label_keys = ('alpha',)
    # single_task from IQLAgent, the others Agent's defaults.
    inherits = ('supports_pixels', 'single_task', 'baselines', 'w1_label', 'guided_by')

    @classmethod
    def create(cls, seed: int, example_batch: Batch, config: ml_collections.ConfigDict) -> 'AWRAgent':
        hidden, action_dim = tuple(config.actor_hidden_dims), example_batch['actions'].shape[-1]
        if config.exorl_settings:
            actor, value_net = LearnedStdGaussianActor(hidden, action_dim), ExorlValueNet
        else:
            actor, value_net = GaussianActor(hidden, action_dim), ValueNet
        return create_iql_agent(cls, seed, example_batch, config, actor, (example_batch['observations'],),
                                value_net=value_net)

    def actor_loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        del rng
        advantages = self.target_advantages(batch) if self.config.exorl_settings else self.advantages(batch)
        weights = jnp.minimum(jnp.exp(advantages * self.config.alpha), self.config.max_weight)
        out = self.network.select('actor')(batch['observations'], params=grad_params)
        nll = gaussian_nll(batch['actions'], *out) if self.config.exorl_settings else unit_gaussian_nll(
            batch['actions'], out)
        return jnp.mean(weights * nll), {'adv_weight_mean': weights.mean(), 'adv_weight_max': weights.max(),
                                         'adv_weight_clipped_fraction': jnp.mean(weights >= self.config.max_weight)}

    @jax.jit
    def sample_actions(self, observations: jnp.ndarray, goals: Any, seed: jnp.ndarray) -> jnp.ndarray:
        """The mean action, clipped; `goals` and `seed` are part of the common interface and unused here."""
        del goals, seed
        out = self.network.select('actor')(observations)
        return jnp.clip(out[0] if self.config.exorl_settings else out, -1.0, 1.0)
