"""What both two-level agents share: the example inputs of the high level (s, g) → subgoal and the low level
(s, subgoal) → action. Subgoals live in goal space (an oracle representation with `-oraclerep` datasets)."""
from typing import Dict, Tuple

import jax.numpy as jnp

from agents.base import Batch


def level_inputs(batch: Batch, with_times: bool) -> Dict[str, Tuple]:
    """Example inputs for initialising 'high' and 'low' modules (flow modules also take a_t and t)."""
    obs = batch['observations']
    high = (obs, batch['goals'])
    low = (obs, batch['low_goals'])
    if with_times:
        times = jnp.zeros((obs.shape[0], 1))
        high += (batch['high_targets'], times)
        low += (batch['actions'], times)
    return {'high': high, 'low': low}
