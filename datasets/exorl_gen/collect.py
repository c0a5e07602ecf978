"""Collect ExORL-format exploration data here, with RND (URLB's reward-free DDPG + RND, as ExORL's `rnd` data).

    python -m datasets.exorl_collect --domain=walker --num_steps=100000 --dataset_dir=DIR --seed=0

writes `DIR/walker/rnd/buffer/<time>_<index>_<length>.npz`, one episode per file in ExORL's format
(datasets/exorl.py): `observation`, `action` (row 0 a zero placeholder), `reward` (the domain's reference task
reward, which the loader replaces), `discount` and `physics` (MuJoCo state), T + 1 rows each. This is OUR data,
not ExORL's: smaller networks and batch (agents/rnd_ddpg.py: width 256, batch 256; URLB 1024 and 1024), usually
far fewer steps (ExORL: 10M), and updates run once per episode (half an update per environment step, as URLB's
update every 2 steps, but in a block after the episode rather than interleaved).

Schedule: the first `--num_seed_steps` steps take uniform random actions (URLB: 4000), then the actor acts with
N(0, 0.2²) noise; after every episode the agent makes length/2 updates on batches drawn from everything
collected so far. Seeded: episode k's reset seed, its exploration noise and its updates' keys derive from
(--seed, k) alone. Resumable: the agent is saved after every episode (next to the buffer, atomically), and a
rerun with a larger --num_steps continues from the episodes on disk.
"""
import datetime
import os
import pickle
import time

os.environ.setdefault('MUJOCO_GL', 'egl')

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from flax import serialization
from tqdm.auto import tqdm

from datasets.exorl import buffer_dir, episode_files
from datasets.exorl_gen.rnd_ddpg import RNDDDPGAgent, get_config
from datasets.exorl_tasks import DOMAINS, ExorlEnv
from datasets.files import write_atomic

# The task whose environment a domain's data is collected in: its physics and resets are the domain's, and its
# reward is stored only as a reference (ExORL stores one too; the loader relabels every task).
COLLECT_TASK = {'walker': 'walker-stand', 'cheetah': 'cheetah-run', 'quadruped': 'quadruped-walk',
                'jaco': 'jaco-reach-top-left'}
STATE_FILE = 'collector_state.pkl'
# A block of updates, compiled once per agent config and block shape.
_update_block = jax.jit(lambda agent, batches: jax.lax.scan(lambda a, b: a.update(b), agent, batches))

FLAGS = flags.FLAGS
flags.DEFINE_enum('domain', 'walker', DOMAINS, 'DeepMind Control domain.')
flags.DEFINE_integer('num_steps', 100_000, 'Environment steps to have on disk when done (whole episodes).')
flags.DEFINE_string('dataset_dir', os.path.expanduser('~/.exorl/data'), 'ExORL root: writes <domain>/<algo>/buffer/.')
flags.DEFINE_integer('seed', 0, 'Seed of the resets, the exploration noise and the agent.')
flags.DEFINE_string('algo', 'rnd', 'Folder name of the data set under <domain>/ (main.py --exorl_algo).')
flags.DEFINE_integer('num_seed_steps', 4000, 'Uniform random actions for this many first steps (URLB: 4000).')
flags.DEFINE_integer('hidden_dim', None, 'Network width (default agents/rnd_ddpg.py: 256).')
flags.DEFINE_integer('batch_size', None, 'Update batch (default agents/rnd_ddpg.py: 256).')
flags.DEFINE_bool('progress', True, 'Progress bar.')


class Replay:
    """Every collected episode, flat: obs rows, the action taken in each row (zero on an episode's last row) and
    the rows that have an n-step successor in their episode."""

    def __init__(self, nstep: int):
        self.nstep, self.obs, self.actions, self.valid = nstep, [], [], []

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


def run_episode(env: ExorlEnv, agent, reset_seed: int, rng: np.random.Generator, random_actions: bool):
    """One episode in ExORL's row layout (T + 1 rows, row 0 the reset)."""
    ob, _ = env.reset(seed=reset_seed)
    dim = env.action_space.shape[0]
    rows = {'observation': [ob], 'action': [np.zeros(dim, np.float32)], 'reward': [0.0],
            'physics': [env.dm_env.physics.get_state().copy()]}
    done = False
    while not done:
        if random_actions:
            action = rng.uniform(-1.0, 1.0, dim).astype(np.float32)
        else:
            key = rng.integers(0, 2 ** 32, 2, dtype=np.uint32)
            action = np.asarray(agent.sample_actions(ob[None], None, key))[0]
        ob, reward, _, done, _ = env.step(action)
        for name, value in (('observation', ob), ('action', action), ('reward', reward),
                            ('physics', env.dm_env.physics.get_state().copy())):
            rows[name].append(value)
    n = len(rows['observation'])
    return {'observation': np.stack(rows['observation']).astype(np.float32),
            'action': np.stack(rows['action']).astype(np.float32),
            'reward': np.array(rows['reward'], np.float32)[:, None], 'discount': np.ones((n, 1), np.float32),
            'physics': np.stack(rows['physics']).astype(np.float64)}




def collect(domain: str, num_steps: int, dataset_dir: str, seed: int, algo: str = 'rnd', num_seed_steps: int = 4000,
            config=None, progress: bool = True, episode_steps: int | None = None) -> str:
    """Collects until the buffer holds `num_steps` steps; returns the buffer folder (see the module docstring).
    `episode_steps` cuts episodes short of the task's time limit (tests only: ExORL's episodes are full length)."""
    config = config or get_config()
    out = buffer_dir(dataset_dir, domain, algo)
    os.makedirs(out, exist_ok=True)
    env = ExorlEnv('exorl-' + COLLECT_TASK[domain], max_episode_steps=episode_steps)
    obs_dim = env.reset(seed=0)[0].shape[0]
    example = {'observations': np.zeros((2, obs_dim), np.float32),
               'actions': np.zeros((2, env.action_space.shape[0]), np.float32)}
    agent = RNDDDPGAgent.create(seed, example, config)

    replay, steps = Replay(config.nstep), 0
    files = episode_files(out)
    for path in files:  # Resuming: everything on disk is training data again.
        with np.load(path) as f:
            replay.add({k: f[k] for k in ('observation', 'action')})
            steps += len(f['observation']) - 1
    state_path = os.path.join(os.path.dirname(out), STATE_FILE)
    if files and os.path.exists(state_path):
        with open(state_path, 'rb') as f:
            saved = pickle.load(f)
        if saved['episodes'] == len(files) and saved['seed'] == seed:
            agent = serialization.from_bytes(agent, saved['agent'])
        else:
            print(f'warning: {state_path} is from another collection; continuing with a fresh agent.')

    episode = len(files)
    with tqdm(total=num_steps, initial=min(steps, num_steps), desc=f'RND on {domain}', unit='step',
              disable=not progress, dynamic_ncols=True) as bar:
        while steps < num_steps:
            rng = np.random.default_rng([seed, episode])
            data = run_episode(env, agent, int(rng.integers(2 ** 31)), rng, random_actions=steps < num_seed_steps)
            length = len(data['observation']) - 1
            stamp = datetime.datetime.now().strftime('%Y%m%dT%H%M%S')
            write_atomic(os.path.join(out, f'{stamp}_{episode}_{length}.npz'), lambda f: np.savez(f, **data))
            replay.add(data)
            steps += length
            episode += 1
            if steps >= num_seed_steps:
                batches = replay.batches(rng, length // 2, config.batch_size)
                agent = agent.replace(rng=jax.random.fold_in(jax.random.PRNGKey(seed), episode))
                agent, info = _update_block(agent, jax.tree.map(jnp.asarray, batches))
                bar.set_postfix(intrinsic=f'{float(info["intrinsic_reward"].mean()):.3g}', refresh=False)
            write_atomic(state_path, lambda f: pickle.dump(
                {'episodes': episode, 'seed': seed, 'agent': serialization.to_bytes(agent)}, f))
            bar.update(min(steps, num_steps) - bar.n)
    env.close()
    return out


def main(_):
    config = get_config()
    if FLAGS.hidden_dim:
        config.hidden_dim = FLAGS.hidden_dim
    if FLAGS.batch_size:
        config.batch_size = FLAGS.batch_size
    start = time.perf_counter()
    out = collect(FLAGS.domain, FLAGS.num_steps, FLAGS.dataset_dir, FLAGS.seed, FLAGS.algo, FLAGS.num_seed_steps,
                  config, FLAGS.progress)
    print(f'{len(episode_files(out))} episodes in {out} ({time.perf_counter() - start:.0f} s this session).')


if __name__ == '__main__':
    app.run(main)
