"""A toy agent for the registry test: CFGRL sampled with a different guidance rule, and its config; and a copy of
it that declares none of its capabilities."""
import jax
import jax.numpy as jnp

from agents import flow
from agents.cfgrl import CFGRLAgent
from agents.guidance import cfg
from configs.cfgrl import get_config as cfgrl_config


def half_guide(v_cond, v_uncond, w, t):
    """Guidance at half the weight: a rule other than classifier-free guidance."""
    return cfg(v_cond, v_uncond, w / 2, t)


class ToyAgent(CFGRLAgent):
    supports_pixels = False
    baselines = {'toy_nodrop': {'p_uncond': 0.0}}
    w1_label = 'w = 1 (toy)'
    inherits = ('single_task', 'label_keys', 'guided_by')

    @jax.jit
    def sample_actions(self, observations, goals, seed, guidance=1.0):
        actions = flow.sample_guided(self.network.select('velocity'), observations, goals, guidance, seed,
                                     self.action_dim, self.config.flow_steps, self.guided, rule=half_guide)
        return jnp.clip(actions, -1.0, 1.0)


class CopiedToyAgent(ToyAgent):
    """A variant that says nothing about its capabilities: the registry refuses it."""


def get_config():
    config = cfgrl_config()
    config.flow_steps = 4
    return config
