"""Keys shared by the two-level agents (HGCBC, HCFGRL): subgoal horizon (docs/method.md#variants)."""
import ml_collections

from configs.common import base_config


def hierarchical_config(agent_name: str) -> ml_collections.ConfigDict:
    config = base_config(agent_name)
    config.subgoal_steps = 25  # The high level predicts the goal representation of the state this many steps ahead.
    return config
