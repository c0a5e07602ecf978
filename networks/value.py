"""State values V(s) and critic ensembles Q_i(s, a) for the IQL-based agents (LayerNorm MLPs; docs/method.md)."""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from networks.mlp import MLP


class ValueNet(nn.Module):
    """V(s) (no actions given) or an ensemble of `num_ensemble` independent Q(s, a) heads.

    The ensemble is one `nn.vmap` over the parameters, so the twin critics cost one batched pass. Output shape:
    (B,) for a single head, (num_ensemble, B) for an ensemble.
    """

    hidden_dims: Sequence[int]
    num_ensemble: int = 1
    layer_norm: bool = True

    @nn.compact
    def __call__(self, observations: jnp.ndarray, actions: jnp.ndarray | None = None) -> jnp.ndarray:
        x = observations if actions is None else jnp.concatenate([observations, actions], axis=-1)
        mlp = MLP
        if self.num_ensemble > 1:
            mlp = nn.vmap(MLP, variable_axes={'params': 0}, split_rngs={'params': True}, in_axes=None,
                          out_axes=0, axis_size=self.num_ensemble)
        out = mlp((*self.hidden_dims, 1), activate_final=False, layer_norm=self.layer_norm)(x)
        return out[..., 0]
