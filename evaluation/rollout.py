"""Evaluation rollouts (docs/method.md#evaluation): tasks × episodes × guidance weights, lockstep or sequential.

Protocol: an episode of task k starts with `env.reset(options=dict(task_id=k, render_goal=False))`, its goal is
`info['goal']`, it ends at termination or truncation, and its score is the final step's `info['success']` (OGBench)
or the episode's return, `info['episode_return']` (ExORL; `EvalPlan.metric` says which).
An episode whose policy emits a non-finite action (NaN or inf) ends there as a failure and is counted
(`EvalResult.nonfinite`): the action never reaches the simulator, which would reset itself and could report success.

Lockstep (the default): every episode of every task at every weight has its own environment (its "row"); each
environment step makes ONE batched `sample_actions` call with a per-row guidance vector, then steps every live row's
environment (in worker processes, see evaluation.envs). Finished episodes are not stepped again and leave the batch:
while more than half the rows are live the batch is all rows, then the live rows padded to the next power of two,
so there are at most log2(rows) + 1 batch shapes, each compiled once per process.
Sequential: one episode and one policy call at a time, per weight (the classic loop; the benchmark's baseline).
Several seeds (stacked agents, main.py --num_seeds): every seed's rows join the same lockstep batch, one vmapped
policy call per environment step (`evaluate_lockstep_seeds`).

Seeding: episode (task k, index e) of the evaluation at step s with run seed S resets from a seed derived from
(S, s, k, e), the same at every weight, so weights are compared on identical start and goal states. The policy's
noise is drawn from keys derived from (S, s) and the step (lockstep) or the row and step (sequential). The policy
runs on the evaluation device (parameters copied there; main.py --eval_device). `check_stop`, if given, is called
once per environment step and may raise to abandon the evaluation (Ctrl-C during training).
"""
import dataclasses
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import jax
import numpy as np
from tqdm.auto import tqdm

from agents.seeds import unstack
from evaluation.envs import (
    EnvFactory,
    LocalEnvs,
    SubprocessEnvs,
    default_workers,
    make_env_batch,
    max_envs_for_memory,
    reset_episode,
    step_episode,
)
from evaluation.results import EvalResult, guidance_key, nonfinite_note, task_column

# The policy as evaluation calls it: (observations, goals, key, per-row guidance (B,) float32) -> actions (B, A).
PolicyFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# The same for S seeds at once: (S, B, ...) observations and goals, (S, 2) keys, (S, B) guidance -> (S, B, A).
SeedsPolicyFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
EnvBatch = Union[LocalEnvs, SubprocessEnvs]
EVAL_MODES = ('lockstep', 'sequential')
VIDEO_FPS = 30


@dataclasses.dataclass(frozen=True)
class EvalPlan:
    """What one evaluation runs: `num_episodes` of each task in `task_ids` at each weight in `guidance`.

    `guidance` is (None,) for agents without guidance. Rows are ordered (weight, task, episode), row-major.
    `video_episodes`: the first this many episodes of each task are recorded, at every weight.
    """

    task_ids: Tuple[int, ...]
    num_episodes: int
    guidance: Tuple[Optional[float], ...] = (None,)
    video_episodes: int = 0
    metric: str = 'success'  # What an episode's score is: final-step success, or (ExORL) its return.

    def __post_init__(self):
        if not self.task_ids or self.num_episodes < 1 or not self.guidance:
            raise ValueError(f'an evaluation needs tasks, episodes and weights; got {self}.')

    @property
    def shape(self) -> Tuple[int, int, int]:
        return len(self.guidance), len(self.task_ids), self.num_episodes

    @property
    def num_rows(self) -> int:
        return int(np.prod(self.shape))

    def row(self, index: int) -> Tuple[int, int, int]:
        """(weight index, task index, episode index) of row `index`."""
        return tuple(int(i) for i in np.unravel_index(index, self.shape))

    def row_tasks_and_seeds(self, seed: int, step: int) -> Tuple[np.ndarray, np.ndarray]:
        """(task id, reset seed) of every row (see `episode_seed`)."""
        rows = [self.row(r) for r in range(self.num_rows)]
        task_ids = np.array([self.task_ids[ti] for _, ti, _ in rows], np.int64)
        seeds = np.array([episode_seed(seed, step, self.task_ids[ti], ei) for _, ti, ei in rows], np.int64)
        return task_ids, seeds

    def row_guidance(self) -> np.ndarray:
        """(rows,) float32 guidance of each row (1.0 for an unguided agent, which ignores it)."""
        weights = np.array([1.0 if w is None else w for w in self.guidance], np.float32)
        return np.repeat(weights, len(self.task_ids) * self.num_episodes)


def episode_seed(seed: int, step: int, task_id: int, episode: int) -> int:
    """The reset seed of one episode; independent of the guidance weight (common random numbers across w)."""
    return int(np.random.SeedSequence([seed, step, task_id, episode]).generate_state(1)[0])


def policy_key(*entropy: int) -> np.ndarray:
    """A raw uint32[2] JAX PRNG key (the default threefry layout) derived on the host: no device call per step."""
    return np.random.SeedSequence([int(e) for e in entropy]).generate_state(2).astype(np.uint32)


def default_eval_device() -> str:
    """Where policies run during evaluation by default: the accelerator when there is one, else the CPU."""
    return jax.devices()[0].platform


def to_device(tree, device: str = 'cpu'):
    """`tree` on this process's first `device` ('cpu', 'gpu', 'tpu'). Arrays replicated over a multi-process mesh
    (main.py --distributed) are not fully addressable here: their local copy is taken."""
    local = lambda x: x.addressable_data(0) if isinstance(x, jax.Array) and not x.is_fully_addressable else x
    return jax.device_put(jax.tree.map(local, tree), jax.local_devices(backend=device)[0])


def policy_on(agent, device: str) -> PolicyFn:
    """`agent.sample_actions` with the parameters copied to `device` ('cpu', 'gpu', 'tpu'), where it then runs."""
    agent = to_device(agent, device)
    if agent.guided:
        return lambda obs, goals, key, w: np.asarray(agent.sample_actions(obs, goals, key, guidance=w))
    return lambda obs, goals, key, w: np.asarray(agent.sample_actions(obs, goals, key))


def stacked_policy_on(agents, device: str) -> SeedsPolicyFn:
    """The policy of S seeds stacked along a leading axis (`agents.seeds.create_agents`), on `device`: one call
    samples every seed's rows, (S, B, ...) inputs and (S, 2) keys -> (S, B, A) actions."""
    agents = to_device(agents, device)
    if agents.guided:
        sample = lambda agent, obs, goals, key, w: agent.sample_actions(obs, goals, key, guidance=w)
    else:
        sample = lambda agent, obs, goals, key, w: agent.sample_actions(obs, goals, key)
    fn = jax.jit(jax.vmap(sample))
    return lambda obs, goals, keys, w: np.asarray(fn(agents, obs, goals, keys, w))


def _one_seed(policy: PolicyFn) -> SeedsPolicyFn:
    """A single agent's policy as a policy of one stacked seed."""
    return lambda obs, goals, keys, w: policy(obs[0], goals[0], keys[0], w[0])[None]


def bucket_size(num_live: int, num_rows: int) -> int:
    """Policy batch size for `num_live` unfinished rows: every row while more than half are live, else the next
    power of two (few distinct shapes to compile, at most 2× padding)."""
    if 2 * num_live > num_rows:
        return num_rows
    return 1 << max(int(num_live) - 1, 0).bit_length()


class _Videos:
    """Frames of the recorded rows: the first `video_episodes` episodes of each task, at each weight."""

    def __init__(self, plan: EvalPlan):
        self.plan = plan
        self.frames: Dict[int, List[np.ndarray]] = {
            r: [] for r in range(plan.num_rows) if plan.row(r)[2] < plan.video_episodes}

    def add(self, rows: np.ndarray, frames: List[np.ndarray]) -> None:
        for r, frame in zip(rows, frames):
            self.frames[int(r)].append(frame)

    def save(self, directory: Optional[str]) -> None:
        if not self.frames or directory is None:
            return
        import imageio.v3 as iio

        os.makedirs(directory, exist_ok=True)
        for row, frames in self.frames.items():
            wi, ti, ei = self.plan.row(row)
            name = f'w{guidance_key(self.plan.guidance[wi])}_{task_column(self.plan.task_ids[ti])}_ep{ei}.gif'
            iio.imwrite(os.path.join(directory, name), np.stack(frames), duration=1000 / VIDEO_FPS, loop=0)


def _result(plan: EvalPlan, step: int, scores: np.ndarray, lengths: np.ndarray,
            nonfinite: np.ndarray) -> EvalResult:
    return EvalResult(step=step, task_ids=tuple(plan.task_ids), guidance=tuple(plan.guidance),
                      scores=np.where(nonfinite, 0.0, scores).astype(np.float32).reshape(plan.shape),
                      lengths=lengths.reshape(plan.shape), nonfinite=nonfinite.reshape(plan.shape),
                      metric=plan.metric)


def finite_actions(actions: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(actions with every non-finite row zeroed, (B,) bool: which rows were finite)."""
    finite = np.isfinite(actions).all(axis=-1)
    return (actions if finite.all() else np.where(finite[:, None], actions, 0).astype(actions.dtype)), finite


def _progress(plan: EvalPlan, step: int, enabled: bool, num_seeds: int = 1) -> tqdm:
    return tqdm(total=num_seeds * plan.num_rows, desc=f'eval @ {step}', unit='ep', leave=False,
                disable=not enabled, dynamic_ncols=True)


def evaluate_lockstep(policy: PolicyFn, envs: EnvBatch, plan: EvalPlan, seed: int, step: int,
                      video_dir: Optional[str] = None, progress: bool = True,
                      check_stop: Optional[Callable[[], None]] = None, max_envs: Optional[int] = None) -> EvalResult:
    """All rows of `plan` in lockstep, one batched policy call per environment step (see the module docstring).

    `envs` is an env batch (evaluation.envs); it gets one environment per row, or `max_envs` at most.
    """
    return evaluate_lockstep_seeds(_one_seed(policy), envs, plan, (seed,), step, video_dir, progress, check_stop,
                                   max_envs)[0]


def evaluate_lockstep_seeds(policy: SeedsPolicyFn, envs: EnvBatch, plan: EvalPlan, seeds: Sequence[int],
                            step: int, video_dir: Optional[str] = None, progress: bool = True,
                            check_stop: Optional[Callable[[], None]] = None,
                            max_envs: Optional[int] = None) -> List[EvalResult]:
    """`plan` for each of S seeds (stacked agents, `stacked_policy_on`), all in lockstep with one policy call per
    environment step; returns one result per seed.

    Environments: each seed has `slots` of them (every row's own, or `max_envs // S` when that is fewer: some
    environments, e.g. scene's, take 160 MB each). A slot runs the seed's rows in order; when its episode ends it
    is reset to the seed's next row, so the batch stays full until the rows run out. Seed k's episodes are those a
    single run with seed `seeds[k]` evaluates (same reset seeds). Every call gives each seed the same number of
    rows (its live slots padded to the bucket of the seed with the most), so the shapes stay few. Videos record
    the first seed's episodes only.
    """
    num_seeds, n = len(seeds), plan.num_rows
    slots = n if max_envs is None else max(1, min(n, max_envs // num_seeds))
    envs.resize(num_seeds * slots)  # Environment k·slots + j is slot j of seed k.
    layout = [plan.row_tasks_and_seeds(s, step) for s in seeds]  # (task ids, reset seeds) of each seed's rows.
    weights = plan.row_guidance()
    videos = _Videos(plan)
    slot_row = np.full((num_seeds, slots), -1)  # The row each slot is running (−1: none left).
    next_row = np.zeros(num_seeds, np.int64)
    scores, lengths = np.zeros((num_seeds, n), np.float32), np.zeros((num_seeds, n), np.int64)
    completed, nonfinite = np.zeros((num_seeds, n), bool), np.zeros((num_seeds, n), bool)
    obs = goals = None

    def start_rows(seed_idx: np.ndarray, slot_idx: np.ndarray) -> None:
        """Resets the given slots to their seeds' next rows (slots of a seed with none left go idle)."""
        nonlocal obs, goals
        fresh = []
        for k, j in zip(seed_idx, slot_idx):
            slot_row[k, j] = next_row[k] if next_row[k] < n else -1
            next_row[k] += slot_row[k, j] >= 0
            if slot_row[k, j] >= 0:
                fresh.append((k, j))
        if not fresh:
            return
        ks, js = np.array(fresh).T
        env_idx, rows = ks * slots + js, slot_row[ks, js]
        tasks = np.array([layout[k][0][r] for k, r in zip(ks, rows)])
        resets = np.array([layout[k][1][r] for k, r in zip(ks, rows)])
        new_obs, new_goals = envs.reset(env_idx, tasks, resets)
        if obs is None:  # The first call starts every slot.
            obs, goals = new_obs, new_goals
        else:
            obs[env_idx], goals[env_idx] = new_obs, new_goals
        record_frames(env_idx, ks, rows)

    def record_frames(env_idx: np.ndarray, ks: np.ndarray, rows: np.ndarray) -> None:
        if videos.frames:
            chosen = (ks == 0) & np.isin(rows, list(videos.frames))
            if chosen.any():
                videos.add(rows[chosen], envs.render(env_idx[chosen]))

    grid = np.indices((num_seeds, slots)).reshape(2, -1)
    start_rows(grid[0], grid[1])
    t = 0
    with _progress(plan, step, progress, num_seeds) as bar:
        while (slot_row >= 0).any():
            if check_stop is not None:
                check_stop()
            per_seed = [np.flatnonzero(slot_row[k] >= 0) for k in range(num_seeds)]
            size = bucket_size(max(len(live) for live in per_seed), slots)
            # Pad with copies of a live slot (slot 0 for a seed with none): valid inputs whose actions are dropped.
            batch = np.stack([np.concatenate([live, np.full(size - len(live), live[-1] if len(live) else 0)])
                              for live in per_seed])
            env_batch = batch + slots * np.arange(num_seeds)[:, None]
            row_batch = np.maximum(slot_row[np.arange(num_seeds)[:, None], batch], 0)
            keys = np.stack([policy_key(s, step, t) for s in seeds])
            actions = policy(obs[env_batch], goals[env_batch], keys, weights[row_batch])
            env_live = np.concatenate([live + k * slots for k, live in enumerate(per_seed)])
            actions, finite = finite_actions(np.concatenate([actions[k, :len(live)]
                                                             for k, live in enumerate(per_seed)]))
            obs[env_live], done, step_scores = envs.step(env_live, actions)
            ks, js = np.divmod(env_live, slots)
            rows = slot_row[ks, js]
            nonfinite[ks, rows] |= ~finite
            done = done | ~finite
            scores[ks, rows] = step_scores
            lengths[ks, rows] += 1
            record_frames(env_live, ks, rows)
            if done.any():
                completed[ks[done], rows[done]] = True
                bar.set_postfix({plan.metric: f'{scores[completed].mean():.2f}'}, refresh=False)
                bar.update(int(done.sum()))
                start_rows(ks[done], js[done])
            t += 1
    videos.save(video_dir)
    return [_result(plan, step, scores[k], lengths[k], nonfinite[k]) for k in range(num_seeds)]


def evaluate_sequential(policy: PolicyFn, env, plan: EvalPlan, seed: int, step: int,
                        video_dir: Optional[str] = None, progress: bool = True,
                        check_stop: Optional[Callable[[], None]] = None) -> EvalResult:
    """The classic loop on one environment `env`: one episode at a time, one single-row policy call per step,
    weight after weight. Same episodes (seeds) as `evaluate_lockstep`; with a deterministic policy, same results.
    """
    videos = _Videos(plan)
    weights = plan.row_guidance()
    task_ids, seeds = plan.row_tasks_and_seeds(seed, step)
    scores, lengths = np.zeros(plan.num_rows, np.float32), np.zeros(plan.num_rows, np.int64)
    nonfinite = np.zeros(plan.num_rows, bool)
    with _progress(plan, step, progress) as bar:
        for r in range(plan.num_rows):
            record = r in videos.frames
            ob, goal = reset_episode(env, task_ids[r], seeds[r])
            if record:
                videos.add([r], [env.render()])
            done = False
            while not done:
                if check_stop is not None:
                    check_stop()
                action = policy(ob[None], goal[None], policy_key(seed, step, r, lengths[r]), weights[r:r + 1])
                action, finite = finite_actions(action)
                ob, done, scores[r] = step_episode(env, action[0])
                nonfinite[r] |= not finite[0]
                done = done or not finite[0]
                lengths[r] += 1
                if record:
                    videos.add([r], [env.render()])
            bar.set_postfix({plan.metric: f'{scores[:r + 1].mean():.2f}'}, refresh=False)
            bar.update(1)
    videos.save(video_dir)
    return _result(plan, step, scores, lengths, nonfinite)


class Evaluator:
    """Evaluates agents at training steps with one plan, one seed and environments kept across evaluations.

    `workers`: lockstep environments run in this many worker processes (0: in this process; None: one per core,
    see evaluation.envs.default_workers). `video_root`: recorded episodes go to `<video_root>/step_<step>/`.
    `num_seeds > 1`: the agent is S stacked seeds `seed, seed + 1, ...` (main.py --num_seeds) and a call returns one
    result per seed, all seeds rolled out in the same lockstep batch (sequential mode: one seed after the other).
    `max_envs`: lockstep environments at most (None: as many as half the available memory holds, measured on one
    environment at the first evaluation; see `evaluate_lockstep_seeds`). `device`: where the policy runs (a JAX
    platform name; None: `default_eval_device()`). A call returns one result per seed.
    Call `close()` (or use it as a context manager) to stop the workers.
    """

    def __init__(self, plan: EvalPlan, make_env: EnvFactory, seed: int, mode: str = 'lockstep',
                 workers: Optional[int] = None, video_root: Optional[str] = None, progress: bool = True,
                 num_seeds: int = 1, max_envs: Optional[int] = None, device: Optional[str] = None):
        if mode not in EVAL_MODES:
            raise ValueError(f'Unknown evaluation mode {mode!r}; valid modes: {", ".join(EVAL_MODES)}.')
        self.plan, self.make_env, self.seed, self.mode = plan, make_env, seed, mode
        self.seeds = tuple(range(seed, seed + num_seeds))
        self.workers = default_workers(num_seeds * plan.num_rows) if workers is None else workers
        self.video_root, self.progress, self.max_envs = video_root, progress, max_envs
        self.device = default_eval_device() if device is None else device
        self._envs = None  # Created at the first evaluation, then reused.

    def __call__(self, agent, step: int,
                 check_stop: Optional[Callable[[], None]] = None) -> List[EvalResult]:
        results = self._evaluate(agent, step, check_stop)
        note = nonfinite_note(results)
        if note:
            tqdm.write(f'warning: evaluation at step {step}: {note[2:]}.', file=sys.stderr)
        return results

    def _evaluate(self, agent, step: int, check_stop: Optional[Callable[[], None]]) -> List[EvalResult]:
        video_dir = None
        if self.video_root is not None and self.plan.video_episodes > 0:
            video_dir = os.path.join(self.video_root, f'step_{step}')
        kwargs = dict(video_dir=video_dir, progress=self.progress, check_stop=check_stop)
        stacked = len(self.seeds) > 1
        if self.mode == 'sequential':
            if self._envs is None:
                self._envs = LocalEnvs(self.make_env)
                self._envs.resize(1)
            env = self._envs.envs[0]
            if not stacked:
                return [evaluate_sequential(policy_on(agent, self.device), env, self.plan, self.seed, step, **kwargs)]
            return [evaluate_sequential(policy_on(unstack(agent, k), self.device), env, self.plan, s, step,
                                        **{**kwargs, 'video_dir': video_dir if k == 0 else None})
                    for k, s in enumerate(self.seeds)]
        if self._envs is None:
            if self.max_envs is None:
                self.max_envs = max_envs_for_memory(self.make_env)
            self._envs = make_env_batch(self.make_env, self.workers)
        kwargs['max_envs'] = self.max_envs
        if not stacked:
            return [evaluate_lockstep(policy_on(agent, self.device), self._envs, self.plan, self.seed, step,
                                      **kwargs)]
        return evaluate_lockstep_seeds(stacked_policy_on(agent, self.device), self._envs, self.plan, self.seeds,
                                       step, **kwargs)

    def close(self) -> None:
        if self._envs is not None:
            self._envs.close()
            self._envs = None

    def __enter__(self) -> 'Evaluator':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
