"""Several seeds in one process: N stacked agents trained by one vmapped chunk vs N single-seed runs in turn.

Workload: N seeds of one configuration, each doing --steps updates in compiled chunks of --chunk updates on a
synthetic pointmaze-shaped dataset (on-device sampling, as train_speed's chunked loop):
- vmapped: `ChunkedTrainer(num_seeds=N)` on agents stacked by `agents.seeds.create_agents` and N sampler keys;
  every seed trains in the same dispatch. (N = 1 does not vmap: that row times the single-seed trainer twice and
  shows the noise floor.)
- sequential: one single-seed `ChunkedTrainer` running the N seeds one after the other, what N separate runs do;
- one seed: the single-seed trainer on one seed, the reference of "vmapped ÷ one seed".
All of them run in one interleaved loop (benchmarks.common.interleaved_median). Compilation is excluded from the
timings and reported apart (first dispatch minus the median of the timed ones); the sequential runs share one
compilation here, where N separate processes would each compile.

Targets: on a GPU, 8 vmapped seeds take ≤ 2× the wall time of one seed; on a CPU, 8 vmapped seeds are no
slower than 8 sequential runs.

    python -m benchmarks.multi_seed                              # N = 1, 2, 4, 8 at 3 × 256, batch 256
    python -m benchmarks.multi_seed --seeds=8 --hidden_dims=512,512,512,512 --batch_size=1024
"""
import time

import jax
import numpy as np
from absl import app, flags

from agents import get_agent_class, get_config
from agents.seeds import create_agents
from benchmarks.common import device_name, interleaved_median, synthetic_dataset, write_result
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from experiment.trainer import ChunkedTrainer

FLAGS = flags.FLAGS
flags.DEFINE_list('seeds', ['1', '2', '4', '8'], 'Numbers of seeds N to measure.')
flags.DEFINE_string('agent', 'cfgrl', 'Agent to benchmark.')
flags.DEFINE_list('hidden_dims', ['256', '256', '256'], 'Actor widths.')
flags.DEFINE_integer('batch_size', 256, 'Batch size of every seed.')
flags.DEFINE_integer('chunk', 100, 'Updates per compiled chunk (vmapped and sequential alike).')
flags.DEFINE_integer('steps', 100, 'Updates per seed in one timed repeat.')
flags.DEFINE_integer('repeats', 5, 'Timed repeats (interleaved; the median is reported).')
flags.DEFINE_string('output', None, 'Result file name under benchmarks/results (default: multi_seed-<platform>)'
                    ', or a path ending in .json.')


def timed_first(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(_):
    seed_counts = [int(n) for n in FLAGS.seeds]
    if any(n < 1 for n in seed_counts):
        raise app.UsageError(f'--seeds must be positive integers, got {FLAGS.seeds}.')
    if FLAGS.steps < 1 or FLAGS.chunk < 1 or FLAGS.repeats < 1:
        raise app.UsageError('--steps, --chunk and --repeats must be positive.')
    config = get_config(FLAGS.agent)
    config.actor_hidden_dims = tuple(int(h) for h in FLAGS.hidden_dims)
    config.batch_size = FLAGS.batch_size
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(synthetic_dataset())
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(0), sampling))
    agent_cls = get_agent_class(FLAGS.agent)
    steps = FLAGS.steps

    # Single-seed trainer: the reference, and (shared, compiled once) all the sequential runs.
    single = ChunkedTrainer(sampling, data, chunk_size=FLAGS.chunk)
    one = {'agent': agent_cls.create(0, example, config), 'rng': jax.random.PRNGKey(1)}

    def run_one():
        one['agent'], one['rng'], infos = single.run(one['agent'], one['rng'], steps)
        jax.block_until_ready(infos)

    compile_s = {'single': timed_first(run_one)}
    fns = {'one seed': run_one}

    for n in seed_counts:
        # Vmapped: N stacked agents, N sampler keys, one dispatch per chunk.
        trainer = ChunkedTrainer(sampling, data, chunk_size=FLAGS.chunk, num_seeds=n)
        if n > 1:
            vm = {'agent': create_agents(agent_cls, list(range(n)), example, config),
                  'rng': jax.random.split(jax.random.PRNGKey(1), n)}
        else:  # num_seeds=1 takes an unstacked agent.
            vm = {'agent': agent_cls.create(0, example, config), 'rng': jax.random.PRNGKey(1)}

        def run_vmapped(vm=vm, trainer=trainer):
            vm['agent'], vm['rng'], infos = trainer.run(vm['agent'], vm['rng'], steps)
            jax.block_until_ready(infos)

        # Sequential: N separate agents (each its own seed and key), one after the other on the single trainer.
        seq = [{'agent': agent_cls.create(s, example, config), 'rng': jax.random.fold_in(jax.random.PRNGKey(1), s)}
               for s in range(n)]

        def run_sequential(seq=seq):
            for run in seq:
                run['agent'], run['rng'], infos = single.run(run['agent'], run['rng'], steps)
                jax.block_until_ready(infos)

        compile_s[f'vmapped {n}'] = timed_first(run_vmapped)
        run_sequential()  # Warm (the single trainer is already compiled).
        fns[f'vmapped {n}'], fns[f'sequential {n}'] = run_vmapped, run_sequential

    seconds = interleaved_median(fns, FLAGS.repeats)
    one_s = seconds['one seed']
    compile_s = {name: max(first - seconds['one seed' if name == 'single' else name], 0.0)
                 for name, first in compile_s.items()}
    rows = []
    for n in seed_counts:
        vm_s, seq_s = seconds[f'vmapped {n}'], seconds[f'sequential {n}']
        rows.append({'num_seeds': n, 'vmapped_s': vm_s, 'sequential_s': seq_s,
                     'sequential_over_vmapped': seq_s / vm_s, 'vmapped_over_one_seed': vm_s / one_s,
                     'vmapped_updates_per_s': n * steps / vm_s, 'sequential_updates_per_s': n * steps / seq_s,
                     'vmapped_compile_s': compile_s[f'vmapped {n}']})

    device = device_name()
    net = '×'.join(FLAGS.hidden_dims)
    print(f'\nSeeds in one process, agent {FLAGS.agent} {net}, batch {FLAGS.batch_size}, on {device}')
    print(f'{steps} updates per seed per repeat, chunks of {FLAGS.chunk}; median of {FLAGS.repeats} interleaved '
          f'repeats. One seed: {one_s:.3f} s ({steps / one_s:.0f} updates/s).')
    print(f'(excluded: compilation of the single-seed chunk {compile_s["single"]:.1f} s, shared by the sequential '
          f'runs; of the vmapped chunk per N in the last column)')
    print(f'{"N":>3} {"vmapped s":>10} {"sequential s":>12} {"seq/vmap":>8} {"vmap/one seed":>13} '
          f'{"seed-updates/s":>14} {"compile s":>9}')
    for r in rows:
        print(f'{r["num_seeds"]:>3} {r["vmapped_s"]:>10.3f} {r["sequential_s"]:>12.3f} '
              f'{r["sequential_over_vmapped"]:>7.2f}x {r["vmapped_over_one_seed"]:>12.2f}x '
              f'{r["vmapped_updates_per_s"]:>14.0f} {r["vmapped_compile_s"]:>9.1f}')
    largest = rows[-1] if rows else None
    if largest is not None and largest['num_seeds'] > 1:
        platform = jax.devices()[0].platform
        if platform == 'cpu':
            print(f'CPU target: {largest["num_seeds"]} vmapped seeds no slower than sequential runs: '
                  f'sequential/vmapped = {largest["sequential_over_vmapped"]:.2f}x (target ≥ 1).')
        else:
            print(f'Accelerator target: {largest["num_seeds"]} vmapped seeds ≤ 2× one seed: '
                  f'vmapped/one seed = {largest["vmapped_over_one_seed"]:.2f}x (target ≤ 2).')

    name = FLAGS.output or f'multi_seed-{jax.devices()[0].platform}'
    path = write_result(name, {
        'benchmark': 'multi_seed', 'agent': FLAGS.agent, 'device': device,
        'hidden_dims': list(config.actor_hidden_dims),
        'batch_size': FLAGS.batch_size, 'chunk': FLAGS.chunk, 'steps_per_seed': steps, 'repeats': FLAGS.repeats,
        'one_seed_s': one_s, 'single_compile_s': compile_s['single'], 'jax': jax.__version__,
        'date': time.strftime('%Y-%m-%d'), 'rows': rows})
    print(f'Wrote {path}')


if __name__ == '__main__':
    app.run(main)
