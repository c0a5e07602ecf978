"""The ant expert behind the antmaze datasets: its task, its policy in numpy, and its file in the repository.

The expert is a SAC policy trained (datasets.ogbench_gen.train_expert) to walk in a commanded direction: it reads
the ant's 27-dim proprioceptive state (qpos without x-y, then qvel) followed by a unit 2-D direction z, and
its reward is the x-y displacement along z. In a maze, the data generator feeds it the direction to the next BFS
waypoint instead.

An expert file is `<name>.npz` (the actor's parameters, keys 'MLP_0/Dense_0/kernel', ...) next to `<name>.json`
(architecture, and the command, seed, commit and validation figures that produced it). The actor is evaluated in
numpy: generation workers stay free of JAX (forked processes and XLA's thread pools do not mix) and a 2-layer
MLP on one observation is faster without a dispatch.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Tuple

os.environ.setdefault('MUJOCO_GL', 'egl')

import numpy as np

from datasets.files import write_atomic

EXPERT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'experts')
SHIPPED_ANT = os.path.join(EXPERT_DIR, 'ant.npz')
ANT_ENV_ID = 'online-ant-v0'  # OGBench's free-space ant: 27-dim observations without x-y, 8-dim actions.
ANT_STATE_DIM = 27
DIRECTION_DIM = 2
EPISODE_LENGTH = 1000  # Steps of a training episode (the env's registered time limit).
DIRECTION_INTERVAL = 100  # A new direction every this many steps of a training episode.


def unit_direction(rng: np.random.Generator) -> np.ndarray:
    """A direction uniform on the circle (a normalised 2-D Gaussian)."""
    z = rng.normal(size=DIRECTION_DIM)
    return z / np.linalg.norm(z)


class DirectionalAnt:
    """OGBench's ant with the expert's task: observation = [state (27), z (2)], reward = Δxy · z.

    Every random draw of an episode (the env's reset noise and the directions) comes from the Generator passed to
    `reset`, so an episode is a function of that Generator alone (training seeds it per episode, which makes
    resuming at an episode boundary exact).
    """

    def __init__(self, episode_length: int = EPISODE_LENGTH, direction_interval: int = DIRECTION_INTERVAL):
        import gymnasium
        import ogbench.online_locomotion  # noqa: F401  (registers online-ant-v0)

        self.env = gymnasium.make(ANT_ENV_ID, max_episode_steps=episode_length)
        self.direction_interval = direction_interval
        self.observation_dim = ANT_STATE_DIM + DIRECTION_DIM
        self.action_dim = self.env.action_space.shape[0]
        self._rng: np.random.Generator | None = None
        self._z = np.zeros(DIRECTION_DIM)
        self._t = 0

    def _ob(self, state: np.ndarray) -> np.ndarray:
        return np.concatenate([state, self._z]).astype(np.float32)

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        self._rng = rng
        state, _ = self.env.reset(seed=int(rng.integers(2 ** 31)))
        self._z, self._t = unit_direction(rng), 0
        return self._ob(state)

    def step(self, action: np.ndarray) -> Tuple[np.ndarray, float, bool, bool]:
        """(next observation, reward, terminated, truncated); the ant terminates when its torso leaves the healthy
        height range, and is truncated at the episode length."""
        data = self.env.unwrapped.data
        xy = data.qpos[:2].copy()
        state, _, terminated, truncated, _ = self.env.step(action)
        reward = float((data.qpos[:2] - xy) @ self._z)
        self._t += 1
        if self._t % self.direction_interval == 0:
            self._z = unit_direction(self._rng)
        return self._ob(state), reward, bool(terminated), bool(truncated)

    def close(self) -> None:
        self.env.close()


def _gelu(x: np.ndarray) -> np.ndarray:
    # flax's nn.gelu default: the tanh approximation.
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


class NumpyActor:
    """The deterministic expert policy tanh(mean(s)) of a `networks.TanhGaussianActor`, in numpy float32."""

    def __init__(self, params: Dict[str, np.ndarray], metadata: Dict | None = None):
        self.params = {k: np.asarray(v, np.float32) for k, v in params.items()}
        self.metadata = metadata or {}
        self.num_hidden = len([k for k in self.params if k.startswith('MLP_0/') and k.endswith('/kernel')])
        self.observation_dim = self.params['MLP_0/Dense_0/kernel'].shape[0]
        self.action_dim = self.params['mean/kernel'].shape[1]

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        x = np.asarray(observations, np.float32)
        for i in range(self.num_hidden):
            x = _gelu(x @ self.params[f'MLP_0/Dense_{i}/kernel'] + self.params[f'MLP_0/Dense_{i}/bias'])
        return np.tanh(x @ self.params['mean/kernel'] + self.params['mean/bias'])


def flatten_params(params) -> Dict[str, np.ndarray]:
    """A nested parameter dict as {'a/b/c': array}."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict) or hasattr(value, 'items'):
            flat.update({f'{key}/{k}': v for k, v in flatten_params(value).items()})
        else:
            flat[key] = np.asarray(value)
    return flat


def save_expert(path: str, actor_params, metadata: Dict) -> None:
    """Writes `path` (.npz of the actor's parameters) and the JSON beside it, each atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(path, lambda f: np.savez(f, **flatten_params(actor_params)))
    write_json(expert_json_path(path), metadata)


def write_json(path: str, metadata: Dict) -> None:
    text = json.dumps(metadata, indent=2, sort_keys=True) + '\n'
    write_atomic(path, lambda f: f.write(text.encode()))


def expert_json_path(path: str) -> str:
    return os.path.splitext(path)[0] + '.json'


def load_expert(path: str = SHIPPED_ANT) -> NumpyActor:
    """The expert stored at `path` (default: the one shipped in ogbench_gen/experts), with its JSON metadata."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f'No ant expert at {path}. Train one with `python -m datasets.ogbench_gen.train_expert --expert=ant` '
            f'and pass --expert_path=<out>/expert.npz, or use the expert shipped in {EXPERT_DIR}.')
    with np.load(path) as f:
        params = {k: f[k] for k in f.files}
    metadata = {}
    if os.path.exists(expert_json_path(path)):
        with open(expert_json_path(path)) as f:
            metadata = json.load(f)
    actor = NumpyActor(params, metadata)
    if actor.observation_dim != ANT_STATE_DIM + DIRECTION_DIM:
        raise ValueError(f'{path}: the actor reads {actor.observation_dim}-dim observations, the ant expert '
                         f'{ANT_STATE_DIM + DIRECTION_DIM} (state without x-y, then the direction)')
    return actor


def directional_velocity(actor: NumpyActor, episodes: int, seed: int = 0,
                         episode_length: int = EPISODE_LENGTH) -> Dict[str, float]:
    """The deterministic expert on its training task: mean Δxy·z per step and the share of episodes that fell."""
    env = DirectionalAnt(episode_length)
    per_step, fell = [], 0
    for episode in range(episodes):
        ob = env.reset(np.random.default_rng([seed, episode]))
        rewards, done = [], False
        while not done:
            ob, reward, terminated, truncated = env.step(actor(ob))
            rewards.append(reward)
            done = terminated or truncated
        fell += int(terminated)
        per_step.append(np.mean(rewards))
    env.close()
    return dict(velocity=float(np.mean(per_step)), velocity_std=float(np.std(per_step)),
                fell=fell / episodes, episodes=episodes)
