"""Guidance rules: how a guided flow agent mixes its conditional and unconditional velocity fields at sampling.

A rule is a function (v_cond, v_uncond, w, t) -> v of the two fields' velocities (B, D), the guidance weight w
(B, 1) and the flow time t (B, 1) of the Euler step (t = 0 is the noise, t → 1 the action), so a rule can act on
part of the interval. `--config.guidance_rule=<name>` picks one from `RULES` for every guided agent (cfgrl, hcfgrl,
cfgrl_iql, cfgrl_exorl); a new rule is one function here and one line in `RULES` (docs/method.md#guidance-rules).
Rules only shape sampling: training, checkpoints and w = 1's meaning under 'cfg' are unchanged, so a trained run
can be re-evaluated with another rule (`--eval_only --config.guidance_rule=<name>`).
"""
from typing import Callable, Dict

import jax.numpy as jnp

GuidanceRule = Callable[[jnp.ndarray, jnp.ndarray, jnp.ndarray, jnp.ndarray], jnp.ndarray]

DEFAULT_RULE = 'cfg'


def cfg(v_cond: jnp.ndarray, v_uncond: jnp.ndarray, w: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    """Classifier-free guidance at every flow time: v_unc + w·(v_cond − v_unc) (the paper's rule; w = 0 samples
    the unconditional field, w = 1 the conditional one)."""
    del t
    return v_uncond + w * (v_cond - v_uncond)


def interval(v_cond: jnp.ndarray, v_uncond: jnp.ndarray, w: jnp.ndarray, t: jnp.ndarray, start: float = 0.5,
             stop: float = 1.0) -> jnp.ndarray:
    """Guidance in a limited interval (Kynkäänniemi et al., 2024): classifier-free guidance while start ≤ t < stop,
    the conditional field (w = 1) at other times. With the default [0.5, 1) the first, high-noise half of the flow
    follows the conditional policy and guidance acts on the second half only."""
    return jnp.where((t >= start) & (t < stop), cfg(v_cond, v_uncond, w, t), v_cond)


def rescaled(v_cond: jnp.ndarray, v_uncond: jnp.ndarray, w: jnp.ndarray, t: jnp.ndarray,
             mix: float = 0.7) -> jnp.ndarray:
    """Rescaled classifier-free guidance (after Lin et al., 2024, whose mix is 0.7): the guided velocity scaled per
    row to the norm of the conditional one, weighted `mix` beside plain CFG's 1 − mix. Large w then turns the
    velocity toward the condition without inflating its speed, which otherwise drives actions far outside [−1, 1]
    to be clipped."""
    guided = cfg(v_cond, v_uncond, w, t)
    norm = lambda v: jnp.linalg.norm(v, axis=-1, keepdims=True)
    scaled = guided * norm(v_cond) / jnp.maximum(norm(guided), 1e-6)
    return mix * scaled + (1.0 - mix) * guided


# name -> rule. A new rule: one function above, one line here; the same rule with other constants is one line,
# e.g. 'interval_early': functools.partial(interval, start=0.0, stop=0.5).
RULES: Dict[str, GuidanceRule] = {
    'cfg': cfg,
    'interval': interval,
    'rescaled': rescaled,
}


def get_rule(name: str) -> GuidanceRule:
    """The rule registered under `name`; a ValueError naming the valid ones otherwise."""
    if name not in RULES:
        raise ValueError(f'unknown guidance rule {name!r}; valid rules: {", ".join(sorted(RULES))}.')
    return RULES[name]
