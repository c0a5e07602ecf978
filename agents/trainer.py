"""Chunked training: K updates per dispatch with `lax.scan`, the batch sampled on device inside the step.

Nothing crosses the host boundary between the K updates; the agent's buffers are donated to the chunk, so the
parameters are updated in place. The chunk is a pure function of (agent, data, rng), which is what lets several
seeds train at once under `jax.vmap`.
"""
from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp

from agents.base import Agent
from datasets.sampler import GoalSamplingConfig, sample_goal_batch

ChunkFn = Callable[[Agent, Dict[str, jnp.ndarray], jnp.ndarray], Tuple[Agent, jnp.ndarray, Dict[str, jnp.ndarray]]]


def make_chunk_fn(sampling: GoalSamplingConfig, num_updates: int) -> ChunkFn:
    """An un-jitted function running `num_updates` sampled updates; returns (agent, rng, per-step metrics)."""

    def chunk(agent: Agent, data: Dict[str, jnp.ndarray], rng: jnp.ndarray):
        def body(carry, _):
            agent, rng = carry
            rng, batch_rng = jax.random.split(rng)
            agent, info = agent.update(sample_goal_batch(data, batch_rng, sampling))
            return (agent, rng), info

        (agent, rng), infos = jax.lax.scan(body, (agent, rng), None, length=num_updates)
        return agent, rng, infos

    return chunk


class ChunkedTrainer:
    """Runs training in compiled chunks of at most `chunk_size` updates.

    `data` is the device-resident dataset (`datasets.sampler.device_dataset`); `rng` is the sampler's key, kept
    separate from the agent's so a checkpoint can restore both. One compilation per distinct chunk length (the
    regular one, plus at most one shorter final chunk).
    """

    def __init__(self, sampling: GoalSamplingConfig, data: Dict[str, jnp.ndarray], chunk_size: int):
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be positive, got {chunk_size}.')
        self.sampling, self.data, self.chunk_size = sampling, data, chunk_size
        self._compiled: Dict[int, Callable] = {}

    def _chunk(self, num_updates: int) -> Callable:
        if num_updates not in self._compiled:
            self._compiled[num_updates] = jax.jit(make_chunk_fn(self.sampling, num_updates), donate_argnums=(0,))
        return self._compiled[num_updates]

    def run(self, agent: Agent, rng: jnp.ndarray, num_updates: int) -> Tuple[Agent, jnp.ndarray, Dict[str, jnp.ndarray]]:
        """Performs exactly `num_updates` updates (≤ chunk_size per dispatch); returns the per-step metrics of the
        last dispatch. The passed agent is donated: use only the returned one."""
        infos = {}
        while num_updates > 0:
            size = min(num_updates, self.chunk_size)
            agent, rng, infos = self._chunk(size)(agent, self.data, rng)
            num_updates -= size
        return agent, rng, infos
