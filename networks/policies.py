"""Policy heads: the flow-matching velocity field, the Gaussian actor of the GCBC baselines and SAC's actor."""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from networks.labels import LABEL_OPTIMAL, LABEL_UNCOND
from networks.mlp import MLP, default_init


class VelocityField(nn.Module):
    """Flow-matching velocity v(s, c, a_t, t) over concat[obs, cond, a_t, t] (docs/method.md#flow-policies).

    With a `cond_dim` and `uncond_embedding` set, the module owns a learned "unconditional" embedding of the same
    width as the condition; rows whose `uncond` flag is True see that embedding instead of their condition. This is
    classifier-free guidance's condition dropout in training and the unconditional half of the fused pass at
    sampling time.

    Attributes:
        hidden_dims: hidden widths of the MLP.
        action_dim: output width.
        cond_dim: width of the condition (goal); None for an unconditioned (BC) field.
        uncond_embedding: whether to own the unconditional embedding (False for plain flow GCBC).
    """

    hidden_dims: Sequence[int]
    action_dim: int
    cond_dim: int | None = None
    uncond_embedding: bool = False

    @nn.compact
    def __call__(
        self,
        observations: jnp.ndarray,
        conds: jnp.ndarray | None,
        noisy_actions: jnp.ndarray,
        times: jnp.ndarray,
        uncond: jnp.ndarray | None = None,
    ) -> jnp.ndarray:
        inputs = [observations]
        if self.cond_dim is not None:
            if self.uncond_embedding:
                embedding = self.param('uncond_embedding', nn.initializers.normal(1.0), (self.cond_dim,))
                if uncond is not None:
                    conds = jnp.where(uncond[:, None], embedding[None, :], conds)
            elif uncond is not None:
                raise ValueError('this velocity field has no unconditional embedding')
            inputs.append(conds)
        # t enters as a raw scalar column, as in the authors' code.
        inputs += [noisy_actions, times]
        x = jnp.concatenate(inputs, axis=-1)
        return MLP((*self.hidden_dims, self.action_dim))(x)


class GaussianActor(nn.Module):
    """OGBench's GCBC actor: an MLP with a mean head; the standard deviation is a constant 1 (log std 0).

    Returns only the mean: with a constant unit std the negative log-likelihood is 0.5·‖a − μ‖² plus a constant,
    and evaluation uses the mean action.
    """

    hidden_dims: Sequence[int]
    action_dim: int
    final_init_scale: float = 1e-2

    @nn.compact
    def __call__(self, observations: jnp.ndarray, goals: jnp.ndarray | None = None) -> jnp.ndarray:
        x = observations if goals is None else jnp.concatenate([observations, goals], axis=-1)
        x = MLP(self.hidden_dims, activate_final=True)(x)
        return nn.Dense(self.action_dim, kernel_init=default_init(self.final_init_scale))(x)


def unit_gaussian_nll(targets: jnp.ndarray, means: jnp.ndarray) -> jnp.ndarray:
    """Per-row negative log-likelihood of `targets` under N(means, I): 0.5·‖x − μ‖² + 0.5·d·log 2π."""
    d = targets.shape[-1]
    return 0.5 * jnp.sum((targets - means) ** 2, axis=-1) + 0.5 * d * jnp.log(2 * jnp.pi)


class OptimalityVelocity(nn.Module):
    """Velocity field conditioned on an optimality label o ∈ {∅, 0, 1} (value-guided CFGRL, docs/method.md#variants).

    Labels are integers (networks.labels): 0 = ∅, 1 = "o = 0" (negative advantage), 2 = "o = 1". Each has a learned
    embedding of width `embed_dim` in one 3-entry table. Rows whose `uncond` flag is set use label ∅, so the
    module has the same call signature as `VelocityField` and shares the guided sampler.
    """

    hidden_dims: Sequence[int]
    action_dim: int
    embed_dim: int = 32

    @nn.compact
    def __call__(self, observations, labels, noisy_actions, times, uncond=None):
        if uncond is not None:
            labels = jnp.where(uncond, LABEL_UNCOND, labels)
        conds = nn.Embed(LABEL_OPTIMAL + 1, self.embed_dim)(labels)
        return VelocityField(self.hidden_dims, self.action_dim, cond_dim=self.embed_dim)(
            observations, conds, noisy_actions, times)


class TanhGaussianActor(nn.Module):
    """SAC's actor: a Gaussian with state-dependent std over pre-squash actions; the action is its tanh.

    Returns (mean, log_std) of the pre-tanh Gaussian; the ant expert's SAC samples, squashes and scores it. Both
    heads start near zero (`final_init_scale`), so the initial policy is centred with unit std. log std is clipped to
    [log_std_min, log_std_max] as in OGBench's reference actor.
    """

    hidden_dims: Sequence[int]
    action_dim: int
    final_init_scale: float = 1e-2
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        x = MLP(self.hidden_dims, activate_final=True)(observations)
        mean = nn.Dense(self.action_dim, kernel_init=default_init(self.final_init_scale), name='mean')(x)
        log_std = nn.Dense(self.action_dim, kernel_init=default_init(self.final_init_scale), name='log_std')(x)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


class LogScalar(nn.Module):
    """A positive scalar exp(log_value), learned in log space (SAC's entropy temperature)."""

    init_value: float = 1.0

    @nn.compact
    def __call__(self) -> jnp.ndarray:
        # An explicit dtype: a weakly typed parameter would change type after the first update (a recompilation).
        log_value = self.param('log_value', lambda _: jnp.full((), jnp.log(self.init_value), jnp.float32))
        return jnp.exp(log_value)
