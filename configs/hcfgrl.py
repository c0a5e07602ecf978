"""HCFGRL: hierarchical CFGRL; with p_uncond = 0 it is flow HGCBC (sampled at w = 1)."""
import ml_collections

from configs.hierarchical import hierarchical_config


def get_config() -> ml_collections.ConfigDict:
    config = hierarchical_config()
    config.flow_steps = 16  # Euler steps of both flow samplers.
    config.p_uncond = 0.1  # Condition dropout at each level (its own embedding per level); 0 gives flow HGCBC.
    config.guidance_rule = 'cfg'  # How sampling mixes the guided fields (agents/guidance.py RULES; 'cfg': the paper's).
    return config
