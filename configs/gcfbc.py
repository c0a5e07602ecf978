"""Flow GCBC (and flow BC): a flow policy trained with no goal dropout, sampled without guidance."""
import ml_collections

from configs.common import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.flow_steps = 16  # Euler steps of the flow sampler.
    config.use_goals = True  # False drops the goal entirely: flow BC.
    return config
