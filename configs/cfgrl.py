"""CFGRL: goal-conditioned flow policy with goal dropout, sampled with classifier-free guidance."""
import ml_collections

from configs.common import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.flow_steps = 16  # Euler steps of the flow sampler (16 on OGBench).
    config.p_uncond = 0.1  # Probability that a training goal is replaced by the learned unconditional embedding.
    config.guidance_rule = 'cfg'  # How sampling mixes the guided fields (agents/guidance.py RULES; 'cfg': the paper's).
    return config
