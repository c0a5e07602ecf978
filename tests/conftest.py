"""Shared fixtures: a tiny synthetic dataset in OGBench's file format, loaded through ogbench's own loader."""
import os

os.environ.setdefault('MUJOCO_GL', 'egl')

import numpy as np
import pytest


def write_synthetic_dataset(path, num_episodes=8, episode_length=41, obs_dim=4, action_dim=2, seed=0):
    """A learnable toy dataset in the npz layout ogbench.load_dataset reads.

    The state walks toward a per-episode target; the action is a deterministic function of (state, target), so
    goal-conditioned agents can fit it. Episode i occupies rows [i·L, (i+1)·L) and its last row is terminal.
    """
    rng = np.random.default_rng(seed)
    obs, actions, terminals = [], [], []
    for _ in range(num_episodes):
        state = rng.uniform(-1, 1, obs_dim).astype(np.float32)
        target = rng.uniform(-1, 1, obs_dim).astype(np.float32)
        for t in range(episode_length):
            action = np.clip((target - state)[:action_dim] * 2.0, -1, 1).astype(np.float32)
            obs.append(state.copy())
            actions.append(action)
            terminals.append(t == episode_length - 1)
            state = state.copy()
            state[:action_dim] += 0.1 * action
    np.savez_compressed(path, observations=np.array(obs, np.float32), actions=np.array(actions, np.float32),
                        terminals=np.array(terminals, bool))
    return path


@pytest.fixture(scope='session')
def tiny_dataset(tmp_path_factory):
    """A compact dataset dict as ogbench.load_dataset(compact_dataset=True) returns it."""
    import ogbench

    path = write_synthetic_dataset(tmp_path_factory.mktemp('data') / 'toy.npz')
    return ogbench.load_dataset(str(path), compact_dataset=True)


@pytest.fixture(scope='session')
def tiny_singletask_dataset(tiny_dataset):
    """The toy dataset with single-task rewards and masks (reward 0 and mask 0 within 0.3 of the origin, else −1)."""
    dataset = dict(tiny_dataset)
    success = np.linalg.norm(dataset['observations'][:, :2], axis=-1) < 0.3
    dataset['rewards'] = success.astype(np.float32) - 1.0
    dataset['masks'] = 1.0 - success.astype(np.float32)
    return dataset


def tiny_config(name, **overrides):
    """The default config of agent `name` shrunk to a 2 × 64 network and batch 64."""
    from agents import get_config

    config = get_config(name)
    config.actor_hidden_dims = (64, 64)
    if 'value_hidden_dims' in config:
        config.value_hidden_dims = (64, 64)
    config.batch_size = 64
    config.lr = 1e-3
    config.update(overrides)
    return config


def free_port() -> int:
    """A TCP port free on localhost now (for a jax.distributed coordinator)."""
    import socket

    with socket.socket() as sock:
        sock.bind(('localhost', 0))
        return sock.getsockname()[1]


def run_processes(commands, timeout, **popen_kwargs):
    """Starts every command at once (the processes of one distributed job), waits for all of them and returns
    [(returncode, stdout, stderr)]; none is left running."""
    import subprocess

    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen_kwargs)
             for c in commands]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            p.kill()
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
