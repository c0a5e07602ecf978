"""Per-episode seeding shared by dataset generation and evaluation: every random source from (seed, index)."""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

import numpy as np


@dataclasses.dataclass
class EpisodeRngs:
    """Every source of randomness of one episode, all derived from (seed, episode index)."""

    policy: np.random.Generator  # Our own draws: start/goal cells, action noise, random actions, p_stack.
    env_seed: int  # env.reset(seed=...) and the maze's action_space: the environment's own Generator.
    legacy_seed: np.ndarray  # For the global np.random that ogbench's maze env and manipulation oracles draw from.


def episode_rngs(seed: int, index: int) -> EpisodeRngs:
    policy_ss, env_ss, legacy_ss = np.random.SeedSequence(seed, spawn_key=(index,)).spawn(3)
    return EpisodeRngs(np.random.default_rng(policy_ss), int(env_ss.generate_state(1)[0]),
                       legacy_ss.generate_state(4))


@contextlib.contextmanager
def legacy_global_seed(seed: np.ndarray) -> Iterator[None]:
    """Seed the global np.random for the duration of one episode, then restore the caller's state.

    ogbench draws start/goal jitter and teleports (locomaze) and every oracle's plan noise and final poses
    (manipspace oracles) from the legacy global `np.random`. Seeding it per episode is the only way to make an
    episode's bytes independent of which worker ran it and what ran before; our own draws use a Generator.
    """
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)
