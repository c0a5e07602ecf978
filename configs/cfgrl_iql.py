"""Value-guided CFGRL: IQL value + flow actor conditioned on the optimality label o = 1[A ≥ 0], guided by w."""
import ml_collections

from configs.iql import iql_config


def get_config() -> ml_collections.ConfigDict:
    config = iql_config()
    config.flow_steps = 16  # Euler steps of the flow sampler.
    config.p_uncond = 0.1  # Probability that the optimality label is dropped to ∅.
    config.guidance_rule = 'cfg'  # How sampling mixes the guided fields (agents/guidance.py RULES; 'cfg': the paper's).
    config.label_embed_dim = 32  # Width of the 3-entry (∅, o = 0, o = 1) embedding.
    return config
