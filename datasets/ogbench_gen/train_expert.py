"""Trains the ant expert of the antmaze datasets with SAC (datasets.ogbench_gen.sac), OGBench's data-generation recipe.

    python -m datasets.ogbench_gen.train_expert --expert=ant [--train_steps=N] [--seed=S] [--out=DIR]

The task is `expert.DirectionalAnt`: walk along a unit direction z (resampled every 100 steps), reward
Δxy·z, 1000-step episodes. The first `seed_steps` actions are uniform random; from then on every environment step
is followed by one gradient step on a batch from the replay buffer, and the next action is sampled from the updated
policy (both in one compiled call, so a step costs one dispatch).

Written to --out: `checkpoint.npz` (agent, replay buffer, sampler state, pending action, curve), `expert.npz` +
`expert.json` (the actor alone, the file `generate --expert_path` reads), `curve.csv` and `curve.png`.
Checkpoints are taken at the first episode boundary after every `save_interval` steps; rerunning the same command
(with a larger --train_steps to extend a finished run) resumes from the checkpoint. Because every episode draws from
its own Generator (seed, episode index), a run resumed at an episode boundary continues exactly as the uninterrupted
one would have. Only a run that reached --train_steps inside an episode leaves a mid-episode checkpoint; resuming
it abandons that episode and starts the next.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Sequence

import numpy as np

from datasets.files import write_atomic
from datasets.ogbench_gen.expert import DirectionalAnt, NumpyActor, directional_velocity, flatten_params, save_expert

EXPERTS = ('ant',)
CURVE_COLUMNS = ('step', 'episodes', 'train_return', 'train_velocity', 'eval_velocity', 'critic_loss', 'actor_loss',
                 'alpha', 'entropy', 'q_mean', 'steps_per_s', 'elapsed_s')


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    out: str
    seed: int = 0
    train_steps: int = 400_000
    seed_steps: int = 10_000  # Uniform random actions for the first this many steps; updates start after them.
    buffer_size: int = 1_000_000
    save_interval: int = 50_000  # Checkpoint (and evaluate) at the first episode end after each multiple.
    log_interval: int = 5_000
    eval_episodes: int = 5  # Deterministic episodes scored at each checkpoint (0: none).
    episode_length: int = 1000
    direction_interval: int = 100
    progress: bool = True


class ReplayBuffer:
    """A ring buffer of transitions in host memory; once full, the oldest transition is overwritten first."""

    KEYS = ('observations', 'actions', 'rewards', 'masks', 'next_observations')

    def __init__(self, capacity: int, observation_dim: int, action_dim: int):
        self.capacity, self.size, self.ptr = capacity, 0, 0
        dims = dict(observations=(observation_dim,), actions=(action_dim,), rewards=(), masks=(),
                    next_observations=(observation_dim,))
        self.data = {k: np.zeros((capacity, *dims[k]), np.float32) for k in self.KEYS}

    def add(self, observation, action, reward, mask, next_observation) -> None:
        for key, value in zip(self.KEYS, (observation, action, reward, mask, next_observation)):
            self.data[key][self.ptr] = value
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, batch_size: int) -> Dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, size=batch_size)
        return {k: v[idx] for k, v in self.data.items()}

    def state(self) -> Dict[str, np.ndarray]:
        """Arrays for a checkpoint: the filled rows only, plus the write position."""
        return {**{f'buffer/{k}': v[:self.size] for k, v in self.data.items()},
                'buffer/ptr': np.asarray(self.ptr), 'buffer/capacity': np.asarray(self.capacity)}

    def load(self, arrays: Dict[str, np.ndarray]) -> None:
        if int(arrays['buffer/capacity']) != self.capacity:
            raise ValueError(f'checkpoint buffer holds {int(arrays["buffer/capacity"])} transitions, this run '
                             f'{self.capacity}: resume with the same --buffer_size')
        self.size, self.ptr = len(arrays['buffer/rewards']), int(arrays['buffer/ptr'])
        for key in self.KEYS:
            self.data[key][:self.size] = arrays[f'buffer/{key}']


def episode_rng(seed: int, episode: int) -> np.random.Generator:
    """Every random draw of training episode `episode`: reset noise, directions and the seed-phase actions."""
    return np.random.default_rng([seed, episode])


def git_commit() -> str:
    try:
        return subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


@functools.lru_cache(maxsize=None)
def compiled_steps():
    """(update_and_act, act), jitted once per process so that every Trainer shares their compilations."""
    import jax

    def act(agent, observation, key, step):
        return agent.sample_actions(observation[None], seed=jax.random.fold_in(key, step))[0]

    def update_and_act(agent, batch, observation, key, step):
        agent, info = agent.update(batch)
        return agent, info, act(agent, observation, key, step)

    # The agent is donated: its buffers are reused for the next one instead of copied every step.
    return jax.jit(update_and_act, donate_argnums=0), jax.jit(act)


class Trainer:
    """The SAC agent, its environment and replay buffer, and the loop that trains them (see the module doc)."""

    def __init__(self, args: TrainArgs, config=None):
        import jax

        from datasets.ogbench_gen.sac import SACAgent
        from datasets.ogbench_gen.sac_config import get_config

        self.args, self.config = args, config if config is not None else get_config()
        self.env = DirectionalAnt(args.episode_length, args.direction_interval)
        obs_dim, act_dim = self.env.observation_dim, self.env.action_dim
        example = dict(observations=np.zeros((1, obs_dim), np.float32), actions=np.zeros((1, act_dim), np.float32))
        self.agent = SACAgent.create(args.seed, example, self.config)
        self.buffer = ReplayBuffer(args.buffer_size, obs_dim, act_dim)
        self.sampler = np.random.default_rng([args.seed, 2 ** 31])  # Batch indices (a stream of its own).
        self.explore_key = jax.random.PRNGKey(args.seed + 1)
        self._update_and_act, self._act = compiled_steps()
        self.step, self.episode, self.pending_action = 0, 0, None
        self.commits = [git_commit()]  # The code of each (re)start of the run, read once: HEAD may move meanwhile.
        self.curve: List[Dict[str, float]] = []
        self.last_info: Dict[str, Any] = {}
        self.mid_episode = False

    # ---------------------------------------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.args.out, 'checkpoint.npz')

    def save_checkpoint(self) -> None:
        import jax

        arrays = {f'agent/{i}': np.asarray(x) for i, x in enumerate(jax.tree.leaves(self.agent))}
        arrays.update(self.buffer.state())
        meta = dict(step=self.step, episode=self.episode, sampler=self.sampler.bit_generator.state,
                    curve=self.curve, args=dataclasses.asdict(self.args), mid_episode=self.mid_episode,
                    commits=self.commits)
        arrays['meta'] = np.asarray(json.dumps(meta))
        if self.pending_action is not None:
            arrays['pending_action'] = np.asarray(self.pending_action)
        write_atomic(self.checkpoint_path, lambda f: np.savez(f, **arrays))

    def restore_checkpoint(self) -> bool:
        """Loads --out's checkpoint if there is one; returns whether it did."""
        import jax

        if not os.path.exists(self.checkpoint_path):
            return False
        with np.load(self.checkpoint_path) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(str(arrays['meta']))
        for key in ('seed', 'seed_steps', 'episode_length', 'direction_interval'):
            if meta['args'][key] != getattr(self.args, key):
                raise ValueError(f'{self.checkpoint_path} was trained with {key}={meta["args"][key]}, this run asks '
                                 f'for {getattr(self.args, key)}: use another --out or the same settings')
        leaves, treedef = jax.tree.flatten(self.agent)
        restored = [arrays[f'agent/{i}'] for i in range(len(leaves))]
        for old, new in zip(leaves, restored):
            if np.shape(old) != new.shape:
                raise ValueError(f'{self.checkpoint_path}: parameter shapes differ from this config\'s')
        self.agent = jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in restored])
        self.buffer.load(arrays)
        self.sampler.bit_generator.state = meta['sampler']
        self.step, self.episode, self.curve = meta['step'], meta['episode'], meta['curve']
        self.commits = meta.get('commits', []) + self.commits
        self.pending_action = arrays.get('pending_action')
        if meta['mid_episode']:
            # The run stopped inside an episode: that episode is abandoned and the next one starts afresh.
            self.episode, self.pending_action = self.episode + 1, None
        return True

    def export_expert(self, path: str, validation: Dict | None = None) -> None:
        actor = self.agent.network.params['modules_actor']
        metadata = dict(expert='ant', hidden_dims=list(self.config.actor_hidden_dims), train_steps=self.step,
                        seed=self.args.seed, commit=self.commits[0], resumed_at_commits=self.commits[1:],
                        command='python -m datasets.ogbench_gen.train_expert --expert=ant '
                                f'--train_steps={self.args.train_steps} --seed={self.args.seed}',
                        validation=validation or {})
        save_expert(path, actor, metadata)

    def numpy_actor(self) -> NumpyActor:
        return NumpyActor(flatten_params(self.agent.network.params['modules_actor']))

    # ---------------------------------------------------------------------------------------------- training
    def train(self) -> None:
        import tqdm

        args, env, buffer = self.args, self.env, self.buffer
        resumed = self.restore_checkpoint()
        if self.step >= args.train_steps:
            return
        next_save = (self.step // args.save_interval + 1) * args.save_interval
        bar = tqdm.tqdm(total=args.train_steps, initial=self.step, disable=not args.progress, smoothing=0.05,
                        desc='ant expert' + (' (resumed)' if resumed else ''), dynamic_ncols=True)
        window_returns: List[float] = []
        window_lengths: List[int] = []
        start_time, start_step = time.time(), self.step
        self._start_time = start_time
        self._elapsed_offset = self.curve[-1]['elapsed_s'] if self.curve else 0.0  # Time of the runs resumed from.
        log_time, log_step = start_time, self.step
        rng = episode_rng(args.seed, self.episode)
        ob, ep_return, ep_length = env.reset(rng), 0.0, 0
        while self.step < args.train_steps:
            if self.step < args.seed_steps:
                action = rng.uniform(-1.0, 1.0, size=env.action_dim).astype(np.float32)
            else:
                if self.pending_action is None:  # Only after resuming from a mid-episode checkpoint.
                    self.pending_action = self._act(self.agent, ob, self.explore_key, np.int32(self.step))
                action = np.asarray(self.pending_action)
            next_ob, reward, terminated, truncated = env.step(action)
            buffer.add(ob, action, reward, 0.0 if terminated else 1.0, next_ob)
            ep_return, ep_length = ep_return + reward, ep_length + 1
            self.step += 1
            episode_over = terminated or truncated
            if episode_over:
                window_returns.append(ep_return)
                window_lengths.append(ep_length)
                self.episode += 1
                rng = episode_rng(args.seed, self.episode)
                next_ob, ep_return, ep_length = env.reset(rng), 0.0, 0
            ob = next_ob
            if buffer.size >= args.seed_steps:
                batch = buffer.sample(self.sampler, self.config.batch_size)
                self.agent, self.last_info, self.pending_action = self._update_and_act(
                    self.agent, batch, ob, self.explore_key, np.int32(self.step))
            bar.update(1)

            if self.step % args.log_interval == 0 or self.step == args.train_steps:
                now = time.time()
                row = self._log_row(window_returns, window_lengths, (self.step - log_step) / (now - log_time),
                                    now - start_time)
                self.curve.append(row)
                window_returns, window_lengths, log_time, log_step = [], [], now, self.step
                bar.set_postfix(ret=f'{row["train_return"]:.1f}', alpha=f'{row["alpha"]:.3g}',
                                sps=f'{row["steps_per_s"]:.0f}')
            if episode_over and (self.step >= next_save or self.step >= args.train_steps):
                self._checkpoint()
                next_save = (self.step // args.save_interval + 1) * args.save_interval
        if not episode_over:  # A run that stops mid-episode still leaves its final state.
            self.mid_episode = True
            self._checkpoint()
        bar.close()
        elapsed = time.time() - start_time
        print(f'{self.step - start_step} steps in {elapsed:.0f} s ({(self.step - start_step) / elapsed:.0f} steps/s); '
              f'outputs in {args.out}')

    def _log_row(self, returns, lengths, steps_per_s, elapsed) -> Dict[str, float]:
        info = {k: float(v) for k, v in self.last_info.items()}
        nan = float('nan')
        return dict(step=self.step, episodes=self.episode,
                    train_return=float(np.mean(returns)) if returns else nan,
                    train_velocity=float(np.sum(returns) / np.sum(lengths)) if returns else nan,
                    eval_velocity=nan, critic_loss=info.get('critic_loss', nan),
                    actor_loss=info.get('actor_loss', nan), alpha=info.get('alpha', 1.0),
                    entropy=info.get('entropy', nan), q_mean=info.get('q_mean', nan),
                    steps_per_s=steps_per_s, elapsed_s=self._elapsed_offset + elapsed)

    def _checkpoint(self) -> None:
        """Scores the deterministic policy, then writes the checkpoint, the expert and the curve."""
        validation = {}
        if self.args.eval_episodes > 0:
            validation = directional_velocity(self.numpy_actor(), self.args.eval_episodes, seed=10_000 + self.step,
                                              episode_length=self.args.episode_length)
            if self.curve and self.curve[-1]['step'] == self.step:
                self.curve[-1]['eval_velocity'] = validation['velocity']
            else:
                self.curve.append({**self._log_row([], [], float('nan'), time.time() - self._start_time),
                                   'eval_velocity': validation['velocity']})
        os.makedirs(self.args.out, exist_ok=True)
        self.save_checkpoint()
        self.export_expert(os.path.join(self.args.out, 'expert.npz'),
                           {'training_eval': validation} if validation else None)
        write_curve(self.curve, self.args.out)


def write_curve(curve: List[Dict[str, float]], out: str) -> None:
    """curve.csv and curve.png (training return, deterministic velocity, losses and temperature against steps)."""
    with open(os.path.join(out, 'curve.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CURVE_COLUMNS)
        writer.writeheader()
        writer.writerows({k: row.get(k) for k in CURVE_COLUMNS} for row in curve)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    steps = np.array([row['step'] for row in curve])
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
    for ax, keys, title in ((axes[0], ('train_velocity', 'eval_velocity'), 'Δxy·z per step'),
                            (axes[1], ('critic_loss',), 'critic loss'), (axes[2], ('q_mean',), 'mean Q'),
                            (axes[3], ('alpha',), 'entropy temperature α')):
        for key in keys:
            values = np.array([row[key] for row in curve], float)
            keep = np.isfinite(values)
            ax.plot(steps[keep], values[keep], marker='o' if key == 'eval_velocity' else None, ms=3, label=key)
        ax.set_title(title)
        ax.set_xlabel('environment steps')
        if key == 'alpha':
            ax.set_yscale('log')
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'curve.png'), dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m datasets.ogbench_gen.train_expert',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--expert', required=True, choices=EXPERTS)
    parser.add_argument('--train_steps', type=int, default=TrainArgs.train_steps)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='output folder (default: runs/<expert>_expert_seed<S>)')
    parser.add_argument('--seed_steps', type=int, default=TrainArgs.seed_steps)
    parser.add_argument('--buffer_size', type=int, default=TrainArgs.buffer_size)
    parser.add_argument('--save_interval', type=int, default=TrainArgs.save_interval)
    parser.add_argument('--log_interval', type=int, default=TrainArgs.log_interval)
    parser.add_argument('--eval_episodes', type=int, default=TrainArgs.eval_episodes)
    parser.add_argument('--no_progress', action='store_true')
    a = parser.parse_args(argv)
    out = a.out or os.path.join('runs', f'{a.expert}_expert_seed{a.seed}')
    args = TrainArgs(out=out, seed=a.seed, train_steps=a.train_steps, seed_steps=a.seed_steps,
                     buffer_size=a.buffer_size, save_interval=a.save_interval, log_interval=a.log_interval,
                     eval_episodes=a.eval_episodes, progress=not a.no_progress)
    os.makedirs(out, exist_ok=True)
    Trainer(args).train()
    sys.exit(0)


if __name__ == '__main__':
    main()
