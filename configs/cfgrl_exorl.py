"""CFGRL on ExORL (Table 1) with the authors' ExORL settings: IQL value + flow actor on a positive-advantage label."""
import ml_collections

from configs.exorl import EXORL_NETWORKS
from configs.iql import iql_config


def get_config() -> ml_collections.ConfigDict:
    config = iql_config()
    config.update(EXORL_NETWORKS)
    config.flow_steps = 32  # Euler steps of the sampler; training times are drawn from {0, 1/32, ..., 1}.
    config.label_embed_dim = 32  # Width of the 2-entry (∅, positive) label embedding.
    config.time_embed_dim = 16  # Width of the sinusoidal flow-time embedding.
    config.uncond_weight = 0.1  # Weight of the ∅ flow loss (every row) beside the positive one (positive rows).
    config.guidance_rule = 'cfg'  # How sampling mixes the guided fields (agents/guidance.py RULES; 'cfg': the paper's).
    return config
