"""Agent registry: a name maps to its agent class and its config module, imported on first use.

Adding an agent is one agent file, one config file and one line here. Everything that lists agents (main.py's
--agent, the tests, sweep generation, aggregation) reads this registry and the class's declared capabilities, which
every registered class sets or inherits on purpose (agents/base.py CAPABILITIES).
"""
import importlib
from typing import Dict, List, Mapping, Tuple

import ml_collections

# name -> ('module:AgentClass', 'config module with get_config()').
AGENTS: Dict[str, Tuple[str, str]] = {
    'cfgrl': ('agents.cfgrl:CFGRLAgent', 'configs.cfgrl'),
    'gcfbc': ('agents.gcfbc:GCFBCAgent', 'configs.gcfbc'),
    'gcbc': ('agents.gcbc:GCBCAgent', 'configs.gcbc'),
    'hcfgrl': ('agents.hcfgrl:HCFGRLAgent', 'configs.hcfgrl'),
    'hgcbc': ('agents.hgcbc:HGCBCAgent', 'configs.hgcbc'),
    'cfgrl_iql': ('agents.cfgrl_iql:CFGRLIQLAgent', 'configs.cfgrl_iql'),
    'awr': ('agents.awr:AWRAgent', 'configs.awr'),
    'cfgrl_exorl': ('agents.cfgrl_exorl:CFGRLExorlAgent', 'configs.cfgrl_exorl'),
}


def _check(name: str) -> None:
    if name not in AGENTS:
        raise ValueError(f'Unknown agent {name!r}; valid agents: {", ".join(sorted(AGENTS))}.')


def get_agent_class(name: str):
    """The agent class registered under `name` (clear error naming the valid choices otherwise). A class that does
    not declare each of its capabilities, or inherit it on purpose, is a TypeError (Agent.check_capabilities)."""
    _check(name)
    module, cls = AGENTS[name][0].split(':')
    agent_class = getattr(importlib.import_module(module), cls)
    agent_class.check_capabilities()
    return agent_class


def get_config(name: str) -> ml_collections.ConfigDict:
    """A fresh default config of agent `name`; its `agent_name` is the registry key."""
    _check(name)
    config = importlib.import_module(AGENTS[name][1]).get_config()
    config.agent_name = name
    return config


def variants() -> List[Tuple[str, Dict]]:
    """(agent, config overrides) of every agent at its defaults and of each baseline it declares."""
    return [(name, overrides) for name in AGENTS
            for overrides in ({}, *get_agent_class(name).baselines.values())]


def is_guided(name: str, overrides: Mapping = ()) -> bool:
    """Whether agent `name` with config `overrides` samples with a guidance weight worth sweeping."""
    config = get_config(name)
    config.update(dict(overrides))
    return get_agent_class(name).guided_by(config)


def pixel_agents() -> List[str]:
    """The agents that accept image observations (`config.encoder`)."""
    return [name for name in AGENTS if get_agent_class(name).supports_pixels]
