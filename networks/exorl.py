"""Networks of the ExORL agents, as the authors' ExORL code builds them (they differ from the OGBench ones).

Every hidden layer is Dense → LayerNorm → mish (normalised before the activation; the OGBench MLP applies GELU
then LayerNorm). The flow actor reads a 2-entry label embedding (0 = ∅, 1 = positive) and a sinusoidal embedding of
the flow time; the AWR actor is a Gaussian with a learned, state-independent log-std.
"""
import math
from typing import Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from networks.labels import LABEL_POSITIVE, LABEL_UNCOND
from networks.mlp import default_init


def mish(x: jnp.ndarray) -> jnp.ndarray:
    return x * jnp.tanh(jax.nn.softplus(x))


class NormFirstMLP(nn.Module):
    """Dense layers; after each but the last (every one with `activate_final`): LayerNorm, then mish."""

    hidden_dims: Sequence[int]
    activate_final: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for i, width in enumerate(self.hidden_dims):
            x = nn.Dense(width, kernel_init=default_init())(x)
            if i + 1 < len(self.hidden_dims) or self.activate_final:
                x = mish(nn.LayerNorm()(x))
        return x


class ExorlValueNet(nn.Module):
    """V(s), or `num_ensemble` independent Q(s, a) heads; same call and output shapes as networks.ValueNet."""

    hidden_dims: Sequence[int]
    num_ensemble: int = 1

    @nn.compact
    def __call__(self, observations: jnp.ndarray, actions: jnp.ndarray | None = None) -> jnp.ndarray:
        x = observations if actions is None else jnp.concatenate([observations, actions], axis=-1)
        mlp = NormFirstMLP
        if self.num_ensemble > 1:
            mlp = nn.vmap(NormFirstMLP, variable_axes={'params': 0}, split_rngs={'params': True}, in_axes=None,
                          out_axes=0, axis_size=self.num_ensemble)
        return mlp((*self.hidden_dims, 1))(x)[..., 0]


def time_embedding(times: jnp.ndarray, dim: int = 16, max_period: float = 10_000.0) -> jnp.ndarray:
    """Sinusoidal embedding [cos(t·P·f_k), sin(t·P·f_k)], f_k = P^(−k/(dim/2)), of times t ∈ [0, 1] of shape
    (B, 1); P = max_period stretches [0, 1] over the frequencies' range."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = times.astype(jnp.float32) * max_period * freqs[None, :]
    return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)


class LabelVelocity(nn.Module):
    """Flow velocity v(s, label, a_t, t) over [s, a_t, time embedding, label embedding].

    Labels: 0 = ∅ (unconditional), 1 = positive advantage. Rows whose `uncond` flag is set use ∅, so the module has
    the call signature the guided sampler expects (agents/flow.py).
    """

    hidden_dims: Sequence[int]
    action_dim: int
    label_embed_dim: int = 32
    time_embed_dim: int = 16

    @nn.compact
    def __call__(self, observations, labels, noisy_actions, times, uncond=None):
        if uncond is not None:
            labels = jnp.where(uncond, LABEL_UNCOND, labels)
        x = jnp.concatenate([observations, noisy_actions, time_embedding(times, self.time_embed_dim),
                             nn.Embed(LABEL_POSITIVE + 1, self.label_embed_dim)(labels)], axis=-1)
        return NormFirstMLP((*self.hidden_dims, self.action_dim))(x)


class LearnedStdGaussianActor(nn.Module):
    """Gaussian policy: mean from an MLP (clipped to [−5, 5]), log-std a learned vector clipped to [−5, 2]."""

    hidden_dims: Sequence[int]
    action_dim: int

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
        x = NormFirstMLP(self.hidden_dims, activate_final=True)(observations)
        means = jnp.clip(nn.Dense(self.action_dim, kernel_init=default_init(1e-2))(x), -5.0, 5.0)
        log_stds = jnp.clip(self.param('log_stds', nn.initializers.zeros, (self.action_dim,)), -5.0, 2.0)
        return means, log_stds


def gaussian_nll(targets: jnp.ndarray, means: jnp.ndarray, log_stds: jnp.ndarray) -> jnp.ndarray:
    """Per-row negative log-likelihood of `targets` under N(means, diag(exp(log_stds))²)."""
    z = (targets - means) * jnp.exp(-log_stds)
    return jnp.sum(0.5 * z ** 2 + log_stds + 0.5 * jnp.log(2 * jnp.pi), axis=-1)
