"""Agent registry: a name maps to an agent class and its config factory.

New agents plug in here; `main.py` never branches on the agent name.
"""
from typing import Callable, Dict, Tuple, Type

import ml_collections

from agents.awr import AWRAgent
from agents.base import Agent
from agents.cfgrl import CFGRLAgent
from agents.cfgrl_exorl import CFGRLExorlAgent
from agents.cfgrl_iql import CFGRLIQLAgent
from agents.gcbc import GCBCAgent
from agents.gcfbc import GCFBCAgent
from agents.hcfgrl import HCFGRLAgent
from agents.hgcbc import HGCBCAgent
from configs import awr as awr_config
from configs import cfgrl as cfgrl_config
from configs import cfgrl_exorl as cfgrl_exorl_config
from configs import cfgrl_iql as cfgrl_iql_config
from configs import gcbc as gcbc_config
from configs import gcfbc as gcfbc_config
from configs import hcfgrl as hcfgrl_config
from configs import hgcbc as hgcbc_config

AGENTS: Dict[str, Tuple[Type[Agent], Callable[[], ml_collections.ConfigDict]]] = {
    'cfgrl': (CFGRLAgent, cfgrl_config.get_config),
    'gcfbc': (GCFBCAgent, gcfbc_config.get_config),
    'gcbc': (GCBCAgent, gcbc_config.get_config),
    'hcfgrl': (HCFGRLAgent, hcfgrl_config.get_config),
    'hgcbc': (HGCBCAgent, hgcbc_config.get_config),
    'cfgrl_iql': (CFGRLIQLAgent, cfgrl_iql_config.get_config),
    'awr': (AWRAgent, awr_config.get_config),
    'cfgrl_exorl': (CFGRLExorlAgent, cfgrl_exorl_config.get_config),
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
