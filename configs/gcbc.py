"""Gaussian GCBC (and BC): OGBench's GCBC baseline, a unit-std Gaussian policy evaluated at its mean."""
import ml_collections

from configs.common import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.use_goals = True  # False drops the goal entirely: BC.
    return config
