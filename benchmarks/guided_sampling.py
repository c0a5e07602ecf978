"""Guided sampling: the fused cond/uncond network pass per flow step vs two separate passes, and unguided sampling.

All three sample K Euler steps (agents/flow.py) of one CFGRL velocity field (random init; speed does not depend on
the weights), jitted with the parameters, observations, goals, guidance weight and key as traced arguments:
- fused: `agents.flow.sample_guided`, what `CFGRLAgent.sample_actions` runs: ONE network pass per flow step over
  the stacked [conditional; unconditional] batch of 2B rows;
- two passes: the same guided field as two network passes per flow step, one over the B conditional rows and one
  over the B rows with the unconditional embedding (written here as the baseline);
- unguided: the conditional field alone (w = 1 without the unconditional half), one pass over B rows: the lower
  bound of any guided sampler.
Before timing, the benchmark checks that fused and two passes give the same actions (same noise, allclose).
Actions are not clipped (the agent clips afterwards, equally for all).

    python -m benchmarks.guided_sampling
    python -m benchmarks.guided_sampling --batch_sizes=250 --sizes=paper --flow_steps=32
"""
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from agents import flow, get_agent_class, get_config
from agents.guidance import cfg
from benchmarks.common import device_name, interleaved_median, write_result

SIZES = {  # name: hidden dims of the velocity field
    'small': (256, 256, 256),
    'paper': (512, 512, 512, 512),
    'smoke': (16, 16),  # scripts/gpu_check.py --smoke: proves the code path, measures nothing.
}

FLAGS = flags.FLAGS
flags.DEFINE_list('sizes', ['small', 'paper'], f'Which networks to measure: {list(SIZES)}.')
flags.DEFINE_list('batch_sizes', ['1', '250', '1024'], 'Rows per sampling call (250: one lockstep evaluation batch '
                  'of 5 tasks × 10 episodes × 5 weights).')
flags.DEFINE_integer('flow_steps', 16, 'Euler steps per sample.')
flags.DEFINE_integer('obs_dim', 2, 'Observation (and goal) width; 2 is pointmaze.')
flags.DEFINE_integer('action_dim', 2, 'Action width; 2 is pointmaze.')
flags.DEFINE_float('guidance', 3.0, 'Guidance weight w (traced; a scalar broadcast to every row).')
flags.DEFINE_integer('repeats', 7, 'Timed repeats (interleaved; the median is reported).')
flags.DEFINE_float('min_time', 0.2, 'Each timed repeat loops over calls for at least about this many seconds.')
flags.DEFINE_string('output', None, 'Result file name under benchmarks/results (default: guided_sampling-<platform>)'
                    ', or a path ending in .json.')


def make_samplers(velocity_apply, action_dim: int, num_steps: int):
    """Jitted (params, observations, goals, guidance, rng) -> actions for the three variants."""

    def net(params):
        return lambda *args: velocity_apply(*args, params=params)

    @jax.jit
    def fused(params, observations, goals, guidance, rng):
        return flow.sample_guided(net(params), observations, goals, guidance, rng, action_dim, num_steps)

    @jax.jit
    def two_passes(params, observations, goals, guidance, rng):
        batch_size = observations.shape[0]
        w = jnp.broadcast_to(jnp.asarray(guidance, jnp.float32), (batch_size,))[:, None]
        uncond = jnp.ones(batch_size, bool)
        velocity_net = net(params)

        def velocity_fn(actions, times):
            v_cond = velocity_net(observations, goals, actions, times)
            v_uncond = velocity_net(observations, goals, actions, times, uncond)
            return cfg(v_cond, v_uncond, w, times)

        noise = jax.random.normal(rng, (batch_size, action_dim))  # As in flow.sample_guided: same key, same noise.
        return flow.euler_integrate(velocity_fn, noise, num_steps)

    @jax.jit
    def unguided(params, observations, goals, guidance, rng):
        del guidance
        return flow.sample_guided(net(params), observations, goals, 1.0, rng, action_dim, num_steps, guided=False)

    return {'fused': fused, 'two passes': two_passes, 'unguided': unguided}


def measure(size: str, batch_size: int) -> dict:
    hidden = SIZES[size]
    config = get_config('cfgrl')
    config.actor_hidden_dims, config.flow_steps = hidden, FLAGS.flow_steps
    assert config.p_uncond > 0, 'CFGRL must train with condition dropout to be guided.'
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(batch_size, FLAGS.obs_dim)).astype(np.float32)
    goals = rng.normal(size=(batch_size, FLAGS.obs_dim)).astype(np.float32)
    example = {'observations': obs, 'goals': goals, 'actions': np.zeros((batch_size, FLAGS.action_dim), np.float32)}
    agent = get_agent_class('cfgrl').create(0, example, config)
    params = agent.network.params
    samplers = make_samplers(agent.network.select('velocity'), FLAGS.action_dim, FLAGS.flow_steps)
    args = (params, jnp.asarray(obs), jnp.asarray(goals), jnp.float32(FLAGS.guidance), jax.random.PRNGKey(1))

    compile_s, one_call_s, outputs = {}, {}, {}
    for name, fn in samplers.items():
        start = time.perf_counter()
        outputs[name] = np.asarray(fn(*args))  # Compiles.
        compile_s[name] = time.perf_counter() - start
        start = time.perf_counter()
        fn(*args).block_until_ready()
        one_call_s[name] = time.perf_counter() - start

    # Same actions: the fused pass is the two-pass field computed on a stacked batch (float rounding only).
    max_diff = float(np.max(np.abs(outputs['fused'] - outputs['two passes'])))
    if not np.allclose(outputs['fused'], outputs['two passes'], rtol=1e-4, atol=1e-4):
        raise AssertionError(f'fused and two-pass guided sampling disagree ({size}, batch {batch_size}): '
                             f'max |diff| = {max_diff:.2e}')
    # Agrees with the agent's own sampler (which clips).
    agent_actions = np.asarray(agent.sample_actions(args[1], args[2], args[4], FLAGS.guidance))
    if not np.allclose(agent_actions, np.clip(outputs['fused'], -1, 1), rtol=1e-4, atol=1e-4):
        raise AssertionError('the fused sampler here differs from CFGRLAgent.sample_actions')

    calls = max(1, int(np.ceil(FLAGS.min_time / max(min(one_call_s.values()), 1e-6))))

    def looped(fn):
        def run():
            for _ in range(calls):
                out = fn(*args)
            out.block_until_ready()
        return run

    seconds = interleaved_median({name: looped(fn) for name, fn in samplers.items()}, FLAGS.repeats)
    per_call = {name: s / calls for name, s in seconds.items()}
    return {
        'size': size, 'hidden_dims': list(hidden), 'batch_size': batch_size, 'flow_steps': FLAGS.flow_steps,
        'calls_per_repeat': calls, 'max_abs_diff_fused_vs_two_passes': max_diff,
        'compile_s': compile_s,
        'ms_per_call': {name: 1e3 * s for name, s in per_call.items()},
        'actions_per_s': {name: batch_size / s for name, s in per_call.items()},
        'two_passes_over_fused': per_call['two passes'] / per_call['fused'],
        'fused_over_unguided': per_call['fused'] / per_call['unguided'],
    }


def main(_):
    for size in FLAGS.sizes:
        if size not in SIZES:
            raise app.UsageError(f'Unknown size {size!r}; choose from {list(SIZES)}.')
    batch_sizes = [int(b) for b in FLAGS.batch_sizes]
    if any(b < 1 for b in batch_sizes) or FLAGS.flow_steps < 1 or FLAGS.repeats < 1:
        raise app.UsageError('--batch_sizes, --flow_steps and --repeats must be positive.')
    device = device_name()
    rows = [measure(size, b) for size in FLAGS.sizes for b in batch_sizes]
    print(f'\nCFGRL guided sampling on {device}: {FLAGS.flow_steps} flow steps, w = {FLAGS.guidance}, obs/goal '
          f'{FLAGS.obs_dim}, action {FLAGS.action_dim}; median of {FLAGS.repeats} interleaved repeats')
    print('actions/s of: fused (one pass over 2B rows per step), two passes (B + B rows), unguided (B rows)')
    print(f'{"net":>16} {"batch":>5} {"fused":>10} {"two passes":>10} {"unguided":>10} {"two/fused":>9} '
          f'{"fused/ung":>9} {"fused ms":>8} {"max|diff|":>9}')
    for r in rows:
        net = '×'.join(str(h) for h in r['hidden_dims'])
        a = r['actions_per_s']
        print(f'{net:>16} {r["batch_size"]:>5} {a["fused"]:>10.0f} {a["two passes"]:>10.0f} {a["unguided"]:>10.0f} '
              f'{r["two_passes_over_fused"]:>8.2f}x {r["fused_over_unguided"]:>8.2f}x '
              f'{r["ms_per_call"]["fused"]:>8.2f} {r["max_abs_diff_fused_vs_two_passes"]:>9.1e}')
    print('two/fused > 1: the fused pass is faster; fused/ung: the cost of guidance over cond-only sampling '
          '(2 would be exactly double). Fused and two-pass actions checked allclose before timing.')

    name = FLAGS.output or f'guided_sampling-{jax.devices()[0].platform}'
    path = write_result(name, {
        'benchmark': 'guided_sampling', 'device': device, 'flow_steps': FLAGS.flow_steps, 'guidance': FLAGS.guidance,
        'obs_dim': FLAGS.obs_dim, 'action_dim': FLAGS.action_dim, 'repeats': FLAGS.repeats,
        'min_time': FLAGS.min_time, 'jax': jax.__version__, 'date': time.strftime('%Y-%m-%d'), 'rows': rows})
    print(f'Wrote {path}')


if __name__ == '__main__':
    app.run(main)
