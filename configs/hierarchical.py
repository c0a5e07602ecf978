"""Keys shared by the two-level agents (HGCBC, HCFGRL): subgoal horizon (docs/method.md#variants)."""
import ml_collections

from configs.common import base_config


def hierarchical_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.subgoal_steps = 25  # The high level predicts the goal representation of the state this many steps ahead.
    return config
