"""Pixel encoders: the IMPALA ResNet of OGBench's reference implementations (the paper's visual tasks).

An image (B, H, W, C) of uint8 pixels becomes a feature vector (B, feature_dim) that the policy heads read in place
of a state vector. Each stack is conv 3×3 → max-pool 3×3 / 2 → `num_blocks` residual blocks (relu → conv → relu →
conv, plus the skip); after the last stack: relu → flatten → dense 512 with GELU (the shared `MLP`, activate_final).
`impala_small` (one residual block per stack) is what OGBench and the authors use for pixel tasks.
"""
import functools
from typing import Callable, Dict, Sequence

import flax.linen as nn
import jax.numpy as jnp

from networks.mlp import MLP


def _conv(features: int) -> nn.Conv:
    # Xavier-uniform 3×3 convolutions with SAME padding and stride 1, as the reference implementation.
    return nn.Conv(features, kernel_size=(3, 3), strides=(1, 1), padding='SAME',
                   kernel_init=nn.initializers.xavier_uniform())


class ResidualStack(nn.Module):
    """One IMPALA stack: a convolution, a 2× max-pool downsampling, then `num_blocks` pre-activation residual
    blocks."""

    features: int
    num_blocks: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = _conv(self.features)(x)
        x = nn.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding='SAME')
        for _ in range(self.num_blocks):
            skip = x
            x = _conv(self.features)(nn.relu(x))
            x = _conv(self.features)(nn.relu(x))
            x = x + skip
        return x


class ImpalaEncoder(nn.Module):
    """IMPALA ResNet encoder of uint8 images; pixels are scaled to [0, 1] inside.

    Attributes:
        stack_sizes: channels of each stack (each halves the resolution: 64×64 → 8×8 with three stacks).
        num_blocks: residual blocks per stack (1 for impala_small, 2 for the full IMPALA).
        mlp_hidden_dims: widths of the dense layers after flattening; the last one is the feature width.
        layer_norm: LayerNorm on the final feature map and after each dense layer (off in OGBench's encoders).
    """

    stack_sizes: Sequence[int] = (16, 32, 32)
    num_blocks: int = 2
    mlp_hidden_dims: Sequence[int] = (512,)
    layer_norm: bool = False

    @property
    def feature_dim(self) -> int:
        """Width of the encoding: known statically, so agents can build their heads' example inputs from it."""
        return self.mlp_hidden_dims[-1]

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        if images.ndim != 4:
            raise ValueError(f'ImpalaEncoder expects images of shape (batch, height, width, channels), got '
                             f'{images.shape}; state (vector) observations need no encoder (config.encoder=None).')
        x = images.astype(jnp.float32) / 255.0
        for features in self.stack_sizes:
            x = ResidualStack(features, self.num_blocks)(x)
        x = nn.relu(x)
        if self.layer_norm:
            x = nn.LayerNorm()(x)
        x = x.reshape((x.shape[0], -1))
        return MLP(tuple(self.mlp_hidden_dims), activate_final=True, layer_norm=self.layer_norm)(x)


# Names accepted by `config.encoder`. 'impala_tiny' is a tiny variant for tests and quick smoke runs.
ENCODERS: Dict[str, Callable[[], nn.Module]] = {
    'impala': ImpalaEncoder,
    'impala_small': functools.partial(ImpalaEncoder, num_blocks=1),
    'impala_tiny': functools.partial(ImpalaEncoder, stack_sizes=(4, 4), num_blocks=1, mlp_hidden_dims=(32,)),
}


def make_encoder(name: str) -> nn.Module:
    """The encoder registered under `name` (clear error naming the valid choices otherwise)."""
    if name not in ENCODERS:
        raise ValueError(f'Unknown encoder {name!r}; valid encoders: {", ".join(sorted(ENCODERS))} '
                         '(or None for state observations).')
    return ENCODERS[name]()
