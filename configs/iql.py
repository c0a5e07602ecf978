"""Keys shared by the IQL-based single-task agents (value-guided CFGRL and AWR), docs/method.md#variants."""
import ml_collections

from configs.common import base_config


def iql_config() -> ml_collections.ConfigDict:
    config = base_config(goal_conditioned=False)
    config.value_hidden_dims = (512, 512, 512, 512)  # V and Q MLP widths (GELU + LayerNorm).
    config.expectile = 0.9  # IQL expectile of the value regression.
    config.tau = 0.005  # Polyak rate of the target critic.
    config.with_next_observations = True  # The sampler adds s' for the TD target.
    return config
