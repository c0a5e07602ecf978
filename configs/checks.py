"""The valid values of every config key, declared once: main.py checks a run's whole config against this table
before any work (a bad value is one usage line naming the key and its valid range, exit 2, before a run directory
exists), whichever agent the config belongs to.

A key that an agent's config gains needs an entry here (or in EXEMPT, with the reason): tests/test_config_checks.py
fails for any key of any registered agent's config that has neither. `GROUPS` holds the checks that span keys.
"""
import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import ml_collections

from agents.guidance import get_rule
from networks.encoders import ENCODERS


class ConfigValueError(ValueError):
    """A config value outside its valid range; the message names the key, the range and the value."""


class Check:
    """One key's valid values: `test(value)` is True for a valid value; `valid` says which, for the message."""

    def __init__(self, valid: str, test: Callable[[Any], bool]):
        self.valid, self.test = valid, test

    def __call__(self, key: str, value: Any) -> None:
        try:
            ok = bool(self.test(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigValueError(f'config.{key} must be {self.valid}, got {value!r}.')


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def count(minimum: int = 1) -> Check:
    return Check(f'an integer ≥ {minimum}', lambda x: _is_int(x) and x >= minimum)


def real(low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False,
         high_open: bool = False) -> Check:
    """A finite number within [low, high] (an open end with low_open / high_open; None: unbounded)."""
    left = '-∞' if low is None else f'{low:g}'
    right = '∞' if high is None else f'{high:g}'
    if low is None and high is None:
        valid = 'a finite number'
    else:
        valid = f'a finite number in {"(" if low_open or low is None else "["}{left}, {right}' \
                f'{")" if high_open or high is None else "]"}'

    def test(x) -> bool:
        if not _is_real(x):
            return False
        if low is not None and (x <= low if low_open else x < low):
            return False
        return high is None or (x < high if high_open else x <= high)

    return Check(valid, test)


def probability(below_one: bool = False) -> Check:
    return real(0.0, 1.0, high_open=below_one)


def flag() -> Check:
    return Check('True or False', lambda x: isinstance(x, bool))


def widths() -> Check:
    return Check('a non-empty tuple of integers ≥ 1 (e.g. 256,256)',
                 lambda x: isinstance(x, (tuple, list)) and len(x) > 0 and all(_is_int(v) and v >= 1 for v in x))


def one_of_or_none(names: Callable[[], Sequence[str]]) -> Check:
    def test(x) -> bool:
        return x is None or x in names()

    return Check(f'unset (state observations) or one of {", ".join(sorted(names()))}', test)


class RegistryName(Check):
    """A name looked up in a registry: `lookup(name)` raises ValueError naming the valid ones."""

    def __init__(self, lookup: Callable[[str], Any]):
        self.lookup = lookup

    def __call__(self, key: str, value: Any) -> None:
        try:
            self.lookup(value)
        except ValueError as e:
            raise ConfigValueError(f'config.{key}: {e}') from None


def _encoders() -> Sequence[str]:
    return tuple(ENCODERS)


# Key -> its check. Shared keys mean the same for every agent that has them.
CHECKS: Dict[str, Check] = {
    'lr': real(0.0, low_open=True),
    'batch_size': count(),
    'actor_hidden_dims': widths(),
    'value_hidden_dims': widths(),
    'discount': probability(below_one=True),
    'encoder': one_of_or_none(_encoders),
    'p_aug': probability(),
    'aug_padding': count(0),
    'p_curgoal': probability(),
    'p_trajgoal': probability(),
    'p_randomgoal': probability(),
    'geom_sample': flag(),
    'flow_steps': count(),
    'p_uncond': probability(below_one=True),  # 1 would leave the conditional model untrained.
    'guidance_rule': RegistryName(get_rule),  # agents/guidance.py RULES.
    'subgoal_steps': count(),
    'use_goals': flag(),
    'expectile': real(0.0, 1.0, low_open=True, high_open=True),
    'tau': real(0.0, 1.0, low_open=True),
    'with_next_observations': flag(),
    'alpha': real(0.0),
    'max_weight': real(0.0, low_open=True),
    'exorl_settings': flag(),
    'label_embed_dim': count(),
    'time_embed_dim': count(),
    'uncond_weight': real(0.0),
    'target_entropy_multiplier': real(),
    'actor_final_init_scale': real(0.0, low_open=True),
}
# Keys no range applies to, and why.
EXEMPT: Dict[str, str] = {
    'agent_name': 'the registry key, checked against --agent (experiment/cli.py check_config)',
}
# Checks spanning keys: (keys, test of their values, what is required).
GROUPS: Tuple[Tuple[Tuple[str, ...], Callable[..., bool], str], ...] = (
    (('p_curgoal', 'p_trajgoal', 'p_randomgoal'), lambda *p: math.isclose(sum(p), 1.0, abs_tol=1e-6),
     'sum to 1 (the goal sampler draws one of the three for every row)'),
)


def check_values(config: ml_collections.ConfigDict) -> None:
    """Raises ConfigValueError for the first key of `config` outside its valid range, then for the first group of
    keys that breaks a joint rule. (A key without an entry is left to tests/test_config_checks.py to catch.)"""
    values = dict(config.items())
    for key, value in values.items():
        if key in CHECKS:
            CHECKS[key](key, value)
    for keys, test, rule in GROUPS:
        if all(key in values for key in keys) and not test(*(values[key] for key in keys)):
            given = ', '.join(f'{key}={values[key]:g}' for key in keys)
            raise ConfigValueError(f'config.{" + config.".join(keys)} must {rule}; got {given}.')
