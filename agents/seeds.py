"""Several seeds of one agent stacked along a leading axis: training vmaps over it, evaluation rolls every seed out
in the same batch, and `unstack` takes one seed out."""
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections

from agents import get_agent_class
from agents.base import Agent, Batch


def create_agent(name: str, seeds: Sequence[int], example_batch: Batch, config: ml_collections.ConfigDict) -> Agent:
    """A freshly initialised agent `name`; with several seeds, one per seed stacked along a leading axis (seed k
    initialised exactly as a single run with seed k)."""
    agent_cls = get_agent_class(name)
    if len(seeds) == 1:
        return agent_cls.create(seeds[0], example_batch, config)
    return create_agents(agent_cls, seeds, example_batch, config)


def create_agents(agent_cls, seeds: Sequence[int], example_batch: Batch, config: ml_collections.ConfigDict) -> Agent:
    """Agents of several seeds stacked along a leading axis (each with its own initialisation and RNG)."""
    return jax.vmap(lambda seed: agent_cls.create(seed, example_batch, config))(jnp.asarray(seeds))


def unstack(tree, index: int):
    """Seed `index` of a stacked pytree (agents, metrics)."""
    return jax.tree.map(lambda x: x[index], tree)
