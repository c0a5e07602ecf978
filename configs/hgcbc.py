"""HGCBC: two Gaussian GCBC levels (subgoal predictor and subgoal-conditioned actor), evaluated at their means."""
import ml_collections

from configs.hierarchical import hierarchical_config


def get_config() -> ml_collections.ConfigDict:
    return hierarchical_config()
