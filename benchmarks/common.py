"""Helpers shared by the benchmarks: device naming, interleaved timing, result files."""
import json
import os
import platform
import time
from typing import Callable, Dict, List

import jax
import numpy as np


def device_name() -> str:
    """A short description of the device JAX runs on (GPU model, or CPU with its core count)."""
    device = jax.devices()[0]
    if device.platform == 'cpu':
        return f'cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})'
    return f'{device.platform} ({device.device_kind})'


def interleaved_median(fns: Dict[str, Callable[[], None]], repeats: int) -> Dict[str, float]:
    """Median seconds per call of each fn, measured in alternation so machine noise hits all of them alike."""
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}


def synthetic_dataset(num_episodes=200, episode_length=1001, obs_dim=2, action_dim=2, seed=0):
    """A compact OGBench-shaped dataset (pointmaze dimensions); throughput does not depend on its content."""
    rng = np.random.default_rng(seed)
    n = num_episodes * episode_length
    terminals = np.zeros(n, np.float32)
    terminals[episode_length - 2::episode_length] = 1.0  # Compact layout: the last two rows are terminal.
    terminals[episode_length - 1::episode_length] = 1.0
    valids = np.ones(n, np.float32)
    valids[episode_length - 1::episode_length] = 0.0
    return {'observations': rng.normal(size=(n, obs_dim)).astype(np.float32),
            'actions': rng.uniform(-1, 1, (n, action_dim)).astype(np.float32),
            'terminals': terminals, 'valids': valids}


def write_result(name: str, payload: dict) -> str:
    """Writes benchmarks/results/<name>.json, or the path `name` itself when it ends in .json (atomically), and
    returns its path."""
    if name.endswith('.json'):
        path = os.path.abspath(name)
    else:
        path = os.path.join(os.path.dirname(__file__), 'results', f'{name}.json')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(payload, f, indent=2)
    os.replace(path + '.tmp', path)
    return path
