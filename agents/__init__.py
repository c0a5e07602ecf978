"""Agent registry: a name maps to an agent class and its config factory.

New agents plug in here; `main.py` never branches on the agent name.
"""
from typing import Callable, Dict, Tuple, Type

import ml_collections

from agents.base import Agent
from agents.cfgrl import CFGRLAgent
from agents.gcbc import GCBCAgent
from agents.gcfbc import GCFBCAgent
from configs import cfgrl as cfgrl_config
from configs import gcbc as gcbc_config
from configs import gcfbc as gcfbc_config

AGENTS: Dict[str, Tuple[Type[Agent], Callable[[], ml_collections.ConfigDict]]] = {
    'cfgrl': (CFGRLAgent, cfgrl_config.get_config),
    'gcfbc': (GCFBCAgent, gcfbc_config.get_config),
    'gcbc': (GCBCAgent, gcbc_config.get_config),
}


def _check(name: str) -> None:
    if name not in AGENTS:
        raise ValueError(f'Unknown agent {name!r}; valid agents: {", ".join(sorted(AGENTS))}.')


def get_agent_class(name: str) -> Type[Agent]:
    """The agent class registered under `name` (clear error naming the valid choices otherwise)."""
    _check(name)
    return AGENTS[name][0]


def get_config(name: str) -> ml_collections.ConfigDict:
    """A fresh default config of agent `name`."""
    _check(name)
    return AGENTS[name][1]()
