"""Collect ExORL-format exploration data here, with RND (URLB's reward-free DDPG + RND, as ExORL's `rnd` data).

    python -m datasets.exorl_gen.collect --domain=walker --num_steps=200000 --dataset_dir=DIR --seed=0
        [--hidden_dim=1024 --batch_size=1024]   # URLB's width and batch (default 256 and 256, for CPUs)

writes `DIR/walker/rnd/buffer/<time>_<index>_<length>.npz`, one episode per file in ExORL's format
(datasets/exorl.py): `observation`, `action` (row 0 a zero placeholder), `reward` (the collection task's reward,
which the loader replaces), `discount` and `physics` (MuJoCo state), T + 1 rows each. This is OUR data, not
ExORL's: the agent is URLB's (datasets/exorl_gen/rnd_ddpg.py) at the width and batch above, and there are usually
far fewer steps (ExORL: 10M per domain).

Schedule, as URLB's pretraining loop: uniform random actions for the first `--num_expl_steps` steps (URLB: 2000),
then the actor's with N(0, 0.2²) noise; from step `--num_seed_steps` on (URLB: 4000) one update every
`--update_every` steps (URLB: 2), interleaved with the episode, on batches from the episodes completed so far
(URLB's replay loader sees finished episodes only). Each domain collects in URLB's pretraining task (jaco:
reach-top-left). Seeded: episode k's reset seed, exploration noise, batches and update keys derive from (--seed, k)
alone. Resumable: the agent is saved after every episode (next to the buffer, atomically), and a rerun with a
larger --num_steps continues from the episodes on disk; a buffer collected with other settings is refused.
"""
import dataclasses
import datetime
import os
import pickle
import sys
import time

os.environ.setdefault('MUJOCO_GL', 'egl')

import jax
import numpy as np
from absl import app, flags
from flax import serialization
from tqdm.auto import tqdm

from datasets.exorl import buffer_dir, episode_files
from datasets.exorl_gen.rnd_ddpg import RNDDDPG, get_config
from datasets.exorl_tasks import DOMAINS, ExorlEnv
from datasets.files import write_atomic

# The task whose environment a domain's data is collected in (URLB's pretraining task; cheetah, not in URLB, runs):
# its physics and resets are the domain's, and its reward is stored only as a reference (the loader relabels).
COLLECT_TASK = {'walker': 'walker-stand', 'cheetah': 'cheetah-run', 'quadruped': 'quadruped-walk',
                'jaco': 'jaco-reach-top-left'}
STATE_FILE = 'collector_state.pkl'

FLAGS = flags.FLAGS
flags.DEFINE_enum('domain', 'walker', DOMAINS, 'DeepMind Control domain.')
flags.DEFINE_integer('num_steps', 100_000, 'Environment steps to have on disk when done (whole episodes).')
flags.DEFINE_string('dataset_dir', os.path.expanduser('~/.exorl/data'), 'ExORL root: writes <domain>/<algo>/buffer/.')
flags.DEFINE_integer('seed', 0, 'Seed of the resets, the exploration noise and the agent.')
flags.DEFINE_string('algo', 'rnd', 'Folder name of the data set under <domain>/ (main.py --exorl_algo).')
flags.DEFINE_integer('num_expl_steps', 2000, 'Uniform random actions for this many first steps (URLB: 2000).')
flags.DEFINE_integer('num_seed_steps', 4000, 'No updates before this many steps (URLB: 4000).')
flags.DEFINE_integer('update_every', 2, 'Environment steps per update (URLB: 2).')
flags.DEFINE_integer('hidden_dim', None, 'Network width (default 256; URLB: 1024).')
flags.DEFINE_integer('batch_size', None, 'Update batch (default 256; URLB: 1024).')
flags.DEFINE_bool('progress', True, 'Progress bar.')


class CollectionMismatchError(ValueError):
    """The buffer on disk was collected with other settings; continuing would mix two collectors' data."""


class Replay:
    """Every completed episode, flat: obs rows, the action taken in each row (zero on an episode's last row) and
    the rows that have an n-step successor in their episode."""

    def __init__(self, nstep: int):
        self.nstep, self.obs, self.actions, self.valid, self._flat = nstep, [], [], [], None

    def add(self, episode) -> None:
        n = len(episode['observation'])
        acts = np.zeros_like(episode['action'])
        acts[:-1] = episode['action'][1:]
        valid = np.zeros(n, bool)
        valid[:max(n - self.nstep, 0)] = True
        self.obs.append(episode['observation'])
        self.actions.append(acts)
        self.valid.append(valid)
        self._flat = None

    def batches(self, rng: np.random.Generator, num: int, size: int):
        """(num, size) stacked batches of observations, actions and n-step next observations."""
        if self._flat is None:
            obs, acts = np.concatenate(self.obs), np.concatenate(self.actions)
            self._flat = obs, acts, np.flatnonzero(np.concatenate(self.valid))
        obs, acts, valid = self._flat
        idx = valid[rng.integers(0, len(valid), (num, size))]
        return {'observations': obs[idx], 'actions': acts[idx], 'next_observations': obs[idx + self.nstep]}


@dataclasses.dataclass(frozen=True)
class Schedule:
    """URLB's pretraining schedule in environment steps (module docstring)."""

    num_expl_steps: int = 2000
    num_seed_steps: int = 4000
    update_every: int = 2

    def updates(self, step: int) -> bool:
        """Whether an update runs at global environment step `step`."""
        return step >= self.num_seed_steps and step % self.update_every == 0


def run_episode(env: ExorlEnv, agent: RNDDDPG, replay: Replay, schedule: Schedule, start: int, episode: int,
                seed: int, rng: np.random.Generator) -> tuple:
    """One episode in ExORL's row layout (T + 1 rows, row 0 the reset), updating the agent as URLB does: at each
    step act, then update if the schedule says so, then step the environment. Returns (rows, agent, last info)."""
    ob, _ = env.reset(seed=int(rng.integers(2 ** 31)))
    dim = env.action_space.shape[0]
    batch_rng = np.random.default_rng([seed, episode, 1])  # Its own stream: the actions' does not see the updates.
    agent = agent.replace(rng=jax.random.fold_in(jax.random.PRNGKey(seed), episode))
    rows = {'observation': [ob], 'action': [np.zeros(dim, np.float32)], 'reward': [0.0],
            'physics': [env.dm_env.physics.get_state().copy()]}
    done, step, info = False, start, None
    while not done:
        if step < schedule.num_expl_steps:
            action = rng.uniform(-1.0, 1.0, dim).astype(np.float32)
        else:
            key = rng.integers(0, 2 ** 32, 2, dtype=np.uint32)
            action = np.asarray(agent.act(ob[None], key))[0]
        if replay.obs and schedule.updates(step):
            batch = replay.batches(batch_rng, 1, agent.config.batch_size)
            agent, info = agent.update({k: v[0] for k, v in batch.items()})
        ob, reward, _, done, _ = env.step(action)
        step += 1
        for name, value in (('observation', ob), ('action', action), ('reward', reward),
                            ('physics', env.dm_env.physics.get_state().copy())):
            rows[name].append(value)
    n = len(rows['observation'])
    data = {'observation': np.stack(rows['observation']).astype(np.float32),
            'action': np.stack(rows['action']).astype(np.float32),
            'reward': np.array(rows['reward'], np.float32)[:, None], 'discount': np.ones((n, 1), np.float32),
            'physics': np.stack(rows['physics']).astype(np.float64)}
    return data, agent, info


def _identity(config, schedule: Schedule, seed: int) -> dict:
    """What must match for a buffer to be continued: the seed, the agent's settings and the schedule."""
    return {'seed': seed, 'config': config.to_dict(), 'schedule': dataclasses.asdict(schedule)}


def collect(domain: str, num_steps: int, dataset_dir: str, seed: int, algo: str = 'rnd',
            schedule: Schedule = Schedule(), config=None, progress: bool = True,
            episode_steps: int | None = None) -> str:
    """Collects until the buffer holds `num_steps` steps; returns the buffer folder (see the module docstring).
    `episode_steps` cuts episodes short of the task's time limit (tests only: ExORL's episodes are full length)."""
    config = config or get_config()
    out = buffer_dir(dataset_dir, domain, algo)
    env = ExorlEnv('exorl-' + COLLECT_TASK[domain], max_episode_steps=episode_steps)
    obs_dim = env.reset(seed=0)[0].shape[0]
    agent = RNDDDPG.create(seed, obs_dim, env.action_space.shape[0], config)
    identity = _identity(config, schedule, seed)

    files = episode_files(out) if os.path.isdir(out) else []
    state_path = os.path.join(os.path.dirname(out), STATE_FILE)
    if files:  # Resuming: the saved agent must be this collector's, and everything on disk is training data again.
        saved = None
        if os.path.exists(state_path):
            with open(state_path, 'rb') as f:
                saved = pickle.load(f)
        if saved is None or saved.get('identity') != identity:
            raise CollectionMismatchError(
                f'{out} holds {len(files)} episodes collected with other settings (or by an older collector; '
                f'see {state_path}); continuing would mix two collections. Use another --dataset_dir or --algo.')
        if saved['episodes'] != len(files):
            raise CollectionMismatchError(f'{state_path} is from episode {saved["episodes"]}, but {out} holds '
                                          f'{len(files)} episodes; the buffer was changed by hand.')
        agent = serialization.from_bytes(agent, saved['agent'])
    os.makedirs(out, exist_ok=True)

    replay, steps = Replay(config.nstep), 0
    for path in files:
        with np.load(path) as f:
            replay.add({k: f[k] for k in ('observation', 'action')})
            steps += len(f['observation']) - 1
    episode = len(files)
    with tqdm(total=num_steps, initial=min(steps, num_steps), desc=f'RND on {domain}', unit='step',
              disable=not progress, dynamic_ncols=True) as bar:
        while steps < num_steps:
            rng = np.random.default_rng([seed, episode])
            data, agent, info = run_episode(env, agent, replay, schedule, steps, episode, seed, rng)
            length = len(data['observation']) - 1
            stamp = datetime.datetime.now().strftime('%Y%m%dT%H%M%S')
            write_atomic(os.path.join(out, f'{stamp}_{episode}_{length}.npz'), lambda f: np.savez(f, **data))
            replay.add(data)
            steps += length
            episode += 1
            if info is not None:
                bar.set_postfix(intrinsic=f'{float(info["intrinsic_reward"]):.3g}', refresh=False)
            write_atomic(state_path, lambda f: pickle.dump(
                {'episodes': episode, 'identity': identity, 'agent': serialization.to_bytes(agent)}, f))
            bar.update(min(steps, num_steps) - bar.n)
    env.close()
    return out


def main(_):
    config = get_config()
    if FLAGS.hidden_dim:
        config.hidden_dim = FLAGS.hidden_dim
    if FLAGS.batch_size:
        config.batch_size = FLAGS.batch_size
    schedule = Schedule(FLAGS.num_expl_steps, FLAGS.num_seed_steps, FLAGS.update_every)
    start = time.perf_counter()
    try:
        out = collect(FLAGS.domain, FLAGS.num_steps, FLAGS.dataset_dir, FLAGS.seed, FLAGS.algo, schedule, config,
                      FLAGS.progress)
    except CollectionMismatchError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
    print(f'{len(episode_files(out))} episodes in {out} ({time.perf_counter() - start:.0f} s this session).')


if __name__ == '__main__':
    app.run(main)
