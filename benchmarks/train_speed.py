"""Training throughput: compiled chunks (on-device sampling, K updates per dispatch) vs the classic loop.

The classic loop is what OGBench-style code does: a numpy batch drawn on the host, then one jitted update call
per step. Both use the same agent, the same update step and the same sampler logic; only the dispatch differs.
Also reports the achieved FLOP/s of the chunked update (XLA's own FLOP count) against a plain `jnp.dot` of
similar size on the same device: how close training runs to the machine's matmul rate.

    python -m benchmarks.train_speed                 # all three sizes
    python -m benchmarks.train_speed --sizes=small   # one size
"""
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from agents import get_agent_class, get_config
from benchmarks.common import device_name, interleaved_median, synthetic_dataset, write_result
from datasets.sampler import GoalSamplingConfig, HostGoalSampler, device_dataset, sample_goal_batch
from experiment.trainer import ChunkedTrainer

SIZES = {  # name: (hidden dims, batch size)
    'paper': ((512, 512, 512, 512), 1024),
    'small': ((256, 256, 256), 256),
    'tiny': ((64, 64), 64),
    'smoke': ((16, 16), 16),  # scripts/gpu_check.py --smoke: proves the code path, measures nothing.
}

FLAGS = flags.FLAGS
flags.DEFINE_list('sizes', ['paper', 'small', 'tiny'], f'Which network/batch sizes to measure: {list(SIZES)}.')
flags.DEFINE_string('agent', 'cfgrl', 'Agent to benchmark.')
flags.DEFINE_integer('chunk', 100, 'Updates per compiled chunk (and per timed repeat of the classic loop).')
flags.DEFINE_integer('repeats', 5, 'Timed repeats of each loop (interleaved; the median is reported).')
flags.DEFINE_string('output', None, 'Result file name under benchmarks/results (default: train_speed-<platform>)'
                    ', or a path ending in .json.')


def matmul_flops_per_s(batch: int, width: int, repeats: int) -> float:
    """FLOP/s of a chain of (batch × width) @ (width × width) products, the shape of one hidden layer."""
    x = jnp.ones((batch, width), jnp.float32)
    w = jnp.ones((width, width), jnp.float32) / width
    layers = 16

    @jax.jit
    def chain(x):
        for _ in range(layers):
            x = jnp.dot(x, w)
        return x

    chain(x).block_until_ready()
    seconds = interleaved_median({'dot': lambda: chain(x).block_until_ready()}, repeats * 4)['dot']
    return 2.0 * batch * width * width * layers / seconds


def measure(size: str) -> dict:
    hidden, batch_size = SIZES[size]
    config = get_config(FLAGS.agent)
    config.actor_hidden_dims, config.batch_size = hidden, batch_size
    sampling = GoalSamplingConfig.from_config(config)
    dataset = synthetic_dataset()
    data = device_dataset(dataset)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(0), sampling))
    agent_cls = get_agent_class(FLAGS.agent)
    k = FLAGS.chunk

    # Compiled chunks.
    trainer = ChunkedTrainer(sampling, data, chunk_size=k)
    state = {'agent': agent_cls.create(0, example, config), 'rng': jax.random.PRNGKey(1)}

    def run_chunked():
        state['agent'], state['rng'], infos = trainer.run(state['agent'], state['rng'], k)
        jax.block_until_ready(infos)

    # Classic loop: host numpy batch + one jitted update per step.
    update = jax.jit(lambda agent, batch: agent.update(batch), donate_argnums=(0,))
    host_sampler, host_rng = HostGoalSampler(dataset, sampling), np.random.default_rng(1)
    classic = {'agent': agent_cls.create(0, example, config)}

    def run_classic():
        for _ in range(k):
            classic['agent'], info = update(classic['agent'], host_sampler.sample(host_rng))
        jax.block_until_ready(info)

    run_chunked(), run_classic()  # Compile both.
    seconds = interleaved_median({'chunked': run_chunked, 'classic': run_classic}, FLAGS.repeats)

    cost = update.lower(classic['agent'], example).compile().cost_analysis()
    flops_per_update = (cost[0] if isinstance(cost, (list, tuple)) else cost)['flops']  # A list in older jax.
    dot_rate = matmul_flops_per_s(batch_size, hidden[0], FLAGS.repeats)
    chunked_rate = k / seconds['chunked']
    return {
        'size': size, 'hidden_dims': list(hidden), 'batch_size': batch_size,
        'chunked_updates_per_s': chunked_rate, 'classic_updates_per_s': k / seconds['classic'],
        'speedup': seconds['classic'] / seconds['chunked'],
        'ms_per_update_chunked': 1e3 * seconds['chunked'] / k,
        'flops_per_update': flops_per_update, 'achieved_flops_per_s': flops_per_update * chunked_rate,
        'jnp_dot_flops_per_s': dot_rate, 'fraction_of_dot': flops_per_update * chunked_rate / dot_rate,
    }


def main(_):
    for size in FLAGS.sizes:
        if size not in SIZES:
            raise app.UsageError(f'Unknown size {size!r}; choose from {list(SIZES)}.')
    device = device_name()
    rows = [measure(size) for size in FLAGS.sizes]
    print(f'\nTraining throughput of agent {FLAGS.agent} on {device} (chunk = {FLAGS.chunk} updates, median of '
          f'{FLAGS.repeats} interleaved repeats)')
    print(f'{"size":>6} {"net":>16} {"batch":>5} {"chunked/s":>10} {"classic/s":>10} {"ratio":>6} '
          f'{"ms/upd":>7} {"GFLOP/s":>8} {"dot GFLOP/s":>11} {"of dot":>6}')
    for r in rows:
        net = '×'.join(str(h) for h in r['hidden_dims'])
        print(f'{r["size"]:>6} {net:>16} {r["batch_size"]:>5} {r["chunked_updates_per_s"]:>10.1f} '
              f'{r["classic_updates_per_s"]:>10.1f} {r["speedup"]:>5.2f}x {r["ms_per_update_chunked"]:>7.2f} '
              f'{r["achieved_flops_per_s"] / 1e9:>8.1f} {r["jnp_dot_flops_per_s"] / 1e9:>11.1f} '
              f'{r["fraction_of_dot"]:>6.0%}')
    name = FLAGS.output or f'train_speed-{jax.devices()[0].platform}'
    path = write_result(name, {'benchmark': 'train_speed', 'agent': FLAGS.agent, 'device': device,
                               'chunk': FLAGS.chunk, 'repeats': FLAGS.repeats, 'jax': jax.__version__,
                               'date': time.strftime('%Y-%m-%d'), 'rows': rows})
    print(f'Wrote {path}')


if __name__ == '__main__':
    app.run(main)
