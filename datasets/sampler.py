"""Goal-relabelling batch samplers: the compiled on-device one used in training and a numpy reference.

Both implement OGBench's GCDataset relabelling (docs/method.md#goal-sampling). For a state index t with trajectory
end e (the last valid row of t's trajectory in the compact layout):
- with probability p_curgoal the goal is state t itself;
- otherwise, with probability p_trajgoal / (1 − p_curgoal), a future state of the same trajectory:
  uniform:   round(min(t + 1, e)·d + e·(1 − d)), d ~ U[0, 1)   (never past e, so never across a boundary);
  geometric: min(t + k, e), k ~ Geometric(1 − discount) ≥ 1;
- otherwise a uniformly random valid state of the dataset.
The probabilities must sum to one (checked when the sampler is built).

Hierarchical agents (`subgoal_steps = k > 0`) also get, as in OGBench's HGCDataset:
- 'low_goals':    the goal representation of state min(t + k, e)  (the low level's subgoal);
- 'high_targets': the goal representation of state min(t + k, goal) when the goal lies in t's trajectory (at or
                  after t), else min(t + k, e)  (what the high level learns to predict).
Value agents (`with_next_observations`) also get 'next_observations' = row t + 1 (valid: t is never a last row).
"""
import dataclasses
from typing import Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

Arrays = Dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class GoalSamplingConfig:
    """Static sampler settings (hashable, so they can be closed over by a jitted function)."""

    batch_size: int
    p_curgoal: float = 0.0
    p_trajgoal: float = 1.0
    p_randomgoal: float = 0.0
    geom_sample: bool = False
    discount: float = 0.99
    subgoal_steps: int = 0
    with_next_observations: bool = False

    def __post_init__(self):
        probs = (self.p_curgoal, self.p_trajgoal, self.p_randomgoal)
        if min(probs) < 0 or not np.isclose(sum(probs), 1.0):
            raise ValueError(f'p_curgoal + p_trajgoal + p_randomgoal must be 1 with each ≥ 0, got {probs}.')
        if self.batch_size < 1:
            raise ValueError(f'batch_size must be positive, got {self.batch_size}.')
        if self.subgoal_steps < 0:
            raise ValueError(f'subgoal_steps must be ≥ 0, got {self.subgoal_steps}.')
        if self.geom_sample and not 0.0 <= self.discount < 1.0:
            raise ValueError(f'geometric goals need 0 ≤ discount < 1, got {self.discount}.')

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> 'GoalSamplingConfig':
        """Reads the sampler keys of an agent config; configs without goal keys (single-task agents) get the
        defaults, whose goals those agents never read."""
        return cls(batch_size=int(config.batch_size), p_curgoal=float(config.get('p_curgoal', 0.0)),
                   p_trajgoal=float(config.get('p_trajgoal', 1.0)), p_randomgoal=float(config.get('p_randomgoal', 0.0)),
                   geom_sample=bool(config.get('geom_sample', False)), discount=float(config.get('discount', 0.99)),
                   subgoal_steps=int(config.get('subgoal_steps', 0)),
                   with_next_observations=bool(config.get('with_next_observations', False)))


def index_arrays(dataset: Arrays) -> Arrays:
    """Index helpers for a compact OGBench dataset (needs 'terminals' and 'valids').

    Returns `valid_idxs` (rows that have a successor and may be sampled) and `final_idxs` (per row, its
    trajectory's last valid row: OGBench's `terminal_locs[searchsorted(terminal_locs, t)]`).
    """
    terminals = np.asarray(dataset['terminals']) > 0
    if not terminals[-1]:
        raise ValueError('the dataset must end with a terminal row')
    terminal_locs = np.nonzero(terminals)[0]
    final_idxs = terminal_locs[np.searchsorted(terminal_locs, np.arange(len(terminals)))]
    valid_idxs = np.nonzero(np.asarray(dataset['valids']) > 0)[0]
    return {'valid_idxs': valid_idxs.astype(np.int32), 'final_idxs': final_idxs.astype(np.int32)}


def goal_source_key(dataset: Arrays) -> str:
    """Goals are oracle representations in `-oraclerep` datasets, observations otherwise."""
    return 'oracle_reps' if 'oracle_reps' in dataset else 'observations'


def batch_keys(dataset: Arrays) -> Tuple[str, ...]:
    """Per-row arrays a batch carries: observations and actions, plus rewards and masks where the dataset has them
    (`-singletask` datasets)."""
    return ('observations', 'actions') + tuple(k for k in ('rewards', 'masks') if k in dataset)


def device_dataset(dataset: Arrays, keys: Sequence[str] | None = None) -> Dict[str, jnp.ndarray]:
    """The arrays the compiled sampler needs, put on the default device once.

    `keys` lists the per-row arrays the batch should carry (default `batch_keys(dataset)`); goal sources and
    index helpers are added.
    """
    arrays = {key: dataset[key] for key in (batch_keys(dataset) if keys is None else keys)}
    arrays['goal_source'] = dataset[goal_source_key(dataset)]
    arrays.update(index_arrays(dataset))
    return {key: jnp.asarray(value) for key, value in arrays.items()}


def _future_goal_idxs(idxs, final_idxs, uniform_draw, geom_offsets, cfg: GoalSamplingConfig, xp):
    if cfg.geom_sample:
        return xp.minimum(idxs + geom_offsets, final_idxs)
    near = xp.minimum(idxs + 1, final_idxs)
    return xp.round(near * uniform_draw + final_idxs * (1.0 - uniform_draw)).astype(idxs.dtype)


def _choose_goal_idxs(idxs, traj_idxs, random_idxs, traj_draw, cur_draw, cfg: GoalSamplingConfig, xp):
    # Same structure as OGBench: pick trajectory vs random goal, then override with the current state.
    p_traj = cfg.p_trajgoal / (1.0 - cfg.p_curgoal + 1e-6)
    goal_idxs = xp.where(traj_draw < p_traj, traj_idxs, random_idxs)
    return xp.where(cur_draw < cfg.p_curgoal, idxs, goal_idxs)


def _add_extras(batch, source, observations, idxs, goal_idxs, final_idxs, cfg: GoalSamplingConfig, xp):
    """Adds the hierarchical subgoal targets and next observations that `cfg` asks for (shared by both samplers)."""
    if cfg.subgoal_steps > 0:
        ahead = idxs + cfg.subgoal_steps
        in_trajectory = (goal_idxs >= idxs) & (goal_idxs <= final_idxs)
        high_idxs = xp.where(in_trajectory, xp.minimum(ahead, goal_idxs), xp.minimum(ahead, final_idxs))
        batch['low_goals'] = source[xp.minimum(ahead, final_idxs)]
        batch['high_targets'] = source[high_idxs]
    if cfg.with_next_observations:
        batch['next_observations'] = observations[idxs + 1]
    return batch


def sample_goal_batch(data: Dict[str, jnp.ndarray], rng: jnp.ndarray,
                      cfg: GoalSamplingConfig) -> Dict[str, jnp.ndarray]:
    """Draws a relabelled batch inside a compiled function: indices, goals and the gather all stay on device.

    Returns every per-row array of `data` at the sampled indices plus 'goals' (and the indices as 'idxs').
    """
    b = cfg.batch_size
    idx_rng, rand_rng, dist_rng, geom_rng, traj_rng, cur_rng = jax.random.split(rng, 6)
    valid_idxs, final_idxs = data['valid_idxs'], data['final_idxs']
    idxs = valid_idxs[jax.random.randint(idx_rng, (b,), 0, valid_idxs.shape[0])]
    random_idxs = valid_idxs[jax.random.randint(rand_rng, (b,), 0, valid_idxs.shape[0])]
    geom_offsets = (jax.random.geometric(geom_rng, 1.0 - cfg.discount, (b,)).astype(idxs.dtype)
                    if cfg.geom_sample else None)
    traj_idxs = _future_goal_idxs(idxs, final_idxs[idxs], jax.random.uniform(dist_rng, (b,)), geom_offsets, cfg, jnp)
    goal_idxs = _choose_goal_idxs(idxs, traj_idxs, random_idxs, jax.random.uniform(traj_rng, (b,)),
                                  jax.random.uniform(cur_rng, (b,)), cfg, jnp)
    batch = {key: value[idxs] for key, value in data.items()
             if key not in ('valid_idxs', 'final_idxs', 'goal_source')}
    batch['goals'] = data['goal_source'][goal_idxs]
    batch['idxs'], batch['goal_idxs'] = idxs, goal_idxs
    return _add_extras(batch, data['goal_source'], data['observations'], idxs, goal_idxs, final_idxs[idxs], cfg, jnp)


class HostGoalSampler:
    """Plain numpy reference of `sample_goal_batch`: the classic host-side batch of OGBench-style loops (used by
    the benchmarks as the baseline) and the oracle the tests compare the compiled sampler against."""

    def __init__(self, dataset: Arrays, cfg: GoalSamplingConfig, keys: Sequence[str] | None = None):
        self.dataset, self.cfg = dataset, cfg
        self.keys = batch_keys(dataset) if keys is None else tuple(keys)
        helpers = index_arrays(dataset)
        self.valid_idxs, self.final_idxs = helpers['valid_idxs'], helpers['final_idxs']
        self.goal_source = dataset[goal_source_key(dataset)]

    def sample(self, rng: np.random.Generator) -> Arrays:
        cfg, b = self.cfg, self.cfg.batch_size
        idxs = self.valid_idxs[rng.integers(0, len(self.valid_idxs), b)]
        random_idxs = self.valid_idxs[rng.integers(0, len(self.valid_idxs), b)]
        geom_offsets = rng.geometric(1.0 - cfg.discount, b).astype(idxs.dtype) if cfg.geom_sample else None
        traj_idxs = _future_goal_idxs(idxs, self.final_idxs[idxs], rng.random(b), geom_offsets, cfg, np)
        goal_idxs = _choose_goal_idxs(idxs, traj_idxs, random_idxs, rng.random(b), rng.random(b), cfg, np)
        batch = {key: self.dataset[key][idxs] for key in self.keys}
        batch['goals'] = self.goal_source[goal_idxs]
        batch['idxs'], batch['goal_idxs'] = idxs, goal_idxs
        return _add_extras(batch, self.goal_source, self.dataset['observations'], idxs, goal_idxs,
                           self.final_idxs[idxs], cfg, np)
