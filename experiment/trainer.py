"""Chunked training: K updates per dispatch with `lax.scan`, the batch sampled on device inside the step.

Nothing crosses the host boundary between the K updates; the agent's buffers are donated to the chunk, so the
parameters are updated in place. The chunk is a pure function of (agent, data, rng), which gives two scalings
for free:
- several seeds in one process: `jax.vmap` over stacked agents and sampler keys (`num_seeds`), the dataset shared;
- several devices, one seed: a mesh over the batch axis (`mesh`): the dataset and parameters are replicated, each
  device gathers and processes its slice of the batch, and XLA inserts the gradient all-reduce (data parallel);
  across hosts the same, once every process has called `initialize_distributed`;
- several devices, several seeds: the stacked seeds are split over the mesh (seed parallel), each device trains
  its own seeds on the replicated dataset, and no device ever talks to another.
"""
from typing import Callable, Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from agents.base import Agent
from datasets.sampler import GoalSamplingConfig, sample_goal_batch

ChunkFn = Callable[[Agent, Dict[str, jnp.ndarray], jnp.ndarray], Tuple[Agent, jnp.ndarray, Dict[str, jnp.ndarray]]]
BATCH_AXIS = 'batch'
SEED_AXIS = 'seeds'


def make_chunk_fn(sampling: GoalSamplingConfig, num_updates: int,
                  batch_sharding: NamedSharding | None = None) -> ChunkFn:
    """An un-jitted function running `num_updates` sampled updates; returns (agent, rng, per-step metrics).

    With `batch_sharding`, each sampled batch is laid out across the mesh's batch axis (data parallelism).
    """

    def chunk(agent: Agent, data: Dict[str, jnp.ndarray], rng: jnp.ndarray):
        def body(carry, _):
            agent, rng = carry
            rng, batch_rng = jax.random.split(rng)
            batch = sample_goal_batch(data, batch_rng, sampling)
            if batch_sharding is not None:
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            agent, info = agent.update(batch)
            return (agent, rng), info

        (agent, rng), infos = jax.lax.scan(body, (agent, rng), None, length=num_updates)
        return agent, rng, infos

    return chunk


def data_parallel_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process) whose axis shards the batch."""
    return Mesh(np.asarray(jax.devices() if devices is None else devices), (BATCH_AXIS,))


def seed_parallel_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: this process's devices) whose axis splits the stacked seeds."""
    return Mesh(np.asarray(jax.local_devices() if devices is None else devices), (SEED_AXIS,))


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Joins this process to a multi-host JAX job (`jax.distributed.initialize`; with no arguments the cluster is
    detected, e.g. from SLURM's variables). Afterwards `jax.devices()` lists every process's devices, so
    `data_parallel_mesh()` spans all hosts: every process runs the same program on its share of the batch, with
    the dataset and parameters replicated (each process loads the same dataset and uses the same seeds). CPU-only
    processes exchange gradients through gloo."""
    if jax.config.jax_platforms in (None, '', 'cpu') or 'cpu' in str(jax.config.jax_platforms):
        jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)


class ChunkedTrainer:
    """Runs training in compiled chunks of at most `chunk_size` updates.

    `data` is the device-resident dataset (`datasets.sampler.device_dataset`); `rng` is the sampler's key, kept
    separate from the agent's so a checkpoint can restore both. One compilation per distinct chunk length (the
    regular one, plus at most one shorter final chunk).

    `num_seeds > 1`: the agent and the rng carry a leading seed axis (`agents.seeds`, stacked keys) and every seed
    trains in the same dispatch.
    `mesh` (a 1-D mesh): with one seed, data-parallel training over its devices (the batch size must be divisible
    by their number); with several, the seeds are split over its devices (their number must divide num_seeds).
    Put the agent and the rng where training expects them with `place`.
    `val_data` (the validation split, same layout as `data`): `validate` computes the loss on one of its batches.
    """

    def __init__(self, sampling: GoalSamplingConfig, data: Dict[str, jnp.ndarray], chunk_size: int,
                 num_seeds: int = 1, mesh: Mesh | None = None, val_data: Dict[str, jnp.ndarray] | None = None):
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be positive, got {chunk_size}.')
        if num_seeds < 1:
            raise ValueError(f'num_seeds must be positive, got {num_seeds}.')
        self.sampling, self.chunk_size, self.num_seeds, self.mesh = sampling, chunk_size, num_seeds, mesh
        # Layouts: each sampled batch; the agent and rng; the dataset (on every device). None without a mesh.
        self._batch_sharding = self._placement = self._replicated = None
        if mesh is not None:
            if len(mesh.axis_names) != 1:
                raise ValueError(f'Training takes a 1-D mesh, got axes {mesh.axis_names}.')
            split = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))  # Leading axis over the devices.
            self._replicated = NamedSharding(mesh, PartitionSpec())
            if num_seeds > 1:
                if num_seeds % mesh.size:
                    raise ValueError(f'num_seeds {num_seeds} is not divisible by the {mesh.size} devices.')
                self._placement = split
            else:
                if sampling.batch_size % mesh.size:
                    raise ValueError(f'batch_size {sampling.batch_size} is not divisible by the {mesh.size} devices.')
                self._batch_sharding, self._placement = split, self._replicated
            data = jax.device_put(data, self._replicated)
            val_data = None if val_data is None else jax.device_put(val_data, self._replicated)
        self.data, self.val_data = data, val_data
        self._compiled: Dict[int, Callable] = {}
        self._validate = None

    def place(self, tree):
        """Lays the agent or the rng out on the mesh (a no-op without one): replicated for data parallelism, the
        leading seed axis split over the devices for seed parallelism."""
        if self.mesh is None:
            return tree
        return jax.device_put(tree, self._placement)

    def _chunk(self, num_updates: int) -> Callable:
        if num_updates not in self._compiled:
            fn = make_chunk_fn(self.sampling, num_updates, self._batch_sharding)
            if self.num_seeds > 1:
                fn = jax.vmap(fn, in_axes=(0, None, 0))
            if self.mesh is None:
                self._compiled[num_updates] = jax.jit(fn, donate_argnums=(0,))
            else:  # Pinned layouts: the agent comes back laid out as it went in, so its buffers can be donated.
                self._compiled[num_updates] = jax.jit(
                    fn, donate_argnums=(0,), in_shardings=(self._placement, self._replicated, self._placement),
                    out_shardings=(self._placement, self._placement, self._placement))
        return self._compiled[num_updates]

    def validate(self, agent: Agent, step: int) -> Dict[str, float]:
        """The agent's loss and diagnostics on one validation batch (drawn from `step` alone, so the training
        RNGs are untouched), averaged over seeds; empty without validation data."""
        if self.val_data is None:
            return {}
        if self._validate is None:
            def loss(agent, data, rng):
                batch_rng, loss_rng = jax.random.split(rng)
                total, info = agent.loss(sample_goal_batch(data, batch_rng, self.sampling), agent.network.params,
                                         loss_rng)
                return {**info, 'loss': total}

            self._validate = jax.jit(jax.vmap(loss, in_axes=(0, None, None)) if self.num_seeds > 1 else loss)
        infos = jax.device_get(self._validate(agent, self.val_data, jax.random.PRNGKey(step)))
        return {key: float(np.mean(value)) for key, value in infos.items()}

    def run(self, agent: Agent, rng: jnp.ndarray,
            num_updates: int) -> Tuple[Agent, jnp.ndarray, Dict[str, jnp.ndarray]]:
        """Performs exactly `num_updates` updates (≤ chunk_size per dispatch); returns the per-step metrics of the
        last dispatch (shape (K,), or (num_seeds, K)). The passed agent is donated: use only the returned one."""
        infos = {}
        while num_updates > 0:
            size = min(num_updates, self.chunk_size)
            agent, rng, infos = self._chunk(size)(agent, self.data, rng)
            num_updates -= size
        return agent, rng, infos
