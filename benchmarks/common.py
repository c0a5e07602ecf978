"""Helpers shared by the benchmarks: device naming, interleaved timing, result files."""
import json
import os
import platform
import time
from typing import Callable, Dict, List

import jax


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


def write_result(name: str, payload: dict) -> str:
    """Writes benchmarks/results/<name>.json (atomically) and returns its path."""
    folder = os.path.join(os.path.dirname(__file__), 'results')
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f'{name}.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(payload, f, indent=2)
    os.replace(path + '.tmp', path)
    return path
