"""Multi-layer perceptron used by every policy and value network."""
from typing import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp


def default_init(scale: float = 1.0) -> Callable:
    """variance_scaling(scale, fan_avg, uniform): the authors' initialiser (docs/method.md#flow-policies)."""
    return nn.initializers.variance_scaling(scale, 'fan_avg', 'uniform')


class MLP(nn.Module):
    """Dense layers with an activation between them.

    Attributes:
        hidden_dims: widths of every layer, the last one included (it is the output width).
        activation: nonlinearity after each hidden layer (GELU in the paper).
        activate_final: also apply the activation (and LayerNorm) after the last layer.
        layer_norm: LayerNorm after each activated layer (the value networks use it, the policies do not).
    """

    hidden_dims: Sequence[int]
    activation: Callable[[jnp.ndarray], jnp.ndarray] = nn.gelu
    activate_final: bool = False
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for i, width in enumerate(self.hidden_dims):
            x = nn.Dense(width, kernel_init=default_init())(x)
            if i + 1 < len(self.hidden_dims) or self.activate_final:
                x = self.activation(x)
                if self.layer_norm:
                    x = nn.LayerNorm()(x)
        return x
