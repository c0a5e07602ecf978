"""Evaluation speed: lockstep vs sequential rollouts of a guidance sweep, against the bare environment floor.

Workload: 5 tasks × 10 episodes × 5 guidance weights of a 3 × 256 CFGRL policy (random initialisation, or a trained
checkpoint with --restore_path) on pointmaze-medium-navigate-v0, the policy on --eval_device, in one process:
- lockstep: every episode in its own environment, one batched policy call per environment step, the environments
  stepped by --workers processes (default one per core; evaluation.envs), as main.py evaluates;
- lockstep, in-process: the same with the environments stepped in the main process (--workers=0);
- sequential: one episode and one single-row policy call at a time, weight after weight (the classic loop), measured
  on the first --sequential_episodes episodes of every (task, weight) and extrapolated per episode to the full
  workload (exact for a random policy, whose episodes all run to the limit);
- env floor: the lockstep run's resets and environment steps, in the same worker processes, with random actions
  and no policy;
- policy floor: the lockstep run's policy calls alone (the same batch shapes, step after step), with no
  environments. Env floor + policy floor is what lockstep would cost with zero overhead of its own on this machine;
  when both compete for the same cores (a CPU), no overlap can beat it.
Environment creation and compilation are excluded from the timings (a run does both once) and reported apart.

    python -m benchmarks.eval_speed
    python -m benchmarks.eval_speed --restore_path=runs/pointmaze-medium-navigate-v0/cfgrl/<run> --sequential_episodes=2
"""
import time

import jax
import numpy as np
from absl import app, flags

from agents import get_agent_class, get_config
from agents.seeds import unstack
from benchmarks.common import device_name, write_result
from evaluation.envs import EnvFactory, LocalEnvs, default_workers, make_env_batch
from evaluation.rollout import (
    EvalPlan,
    bucket_size,
    default_eval_device,
    evaluate_lockstep,
    evaluate_sequential,
    policy_key,
    policy_on,
)
from experiment.session import example_batch, load_checkpoint_agent

FLAGS = flags.FLAGS
flags.DEFINE_string('env_name', 'pointmaze-medium-navigate-v0', 'OGBench dataset/environment name.')
flags.DEFINE_list('tasks', ['1', '2', '3', '4', '5'], 'Evaluation task ids.')
flags.DEFINE_integer('episodes', 10, 'Episodes per task and weight.')
flags.DEFINE_list('guidance', ['0', '1', '1.5', '2', '3'], 'Guidance weights.')
flags.DEFINE_list('hidden_dims', ['256', '256', '256'], 'Policy widths of the random-init CFGRL agent.')
flags.DEFINE_string('restore_path', None, 'Benchmark this checkpoint (run dir or checkpoint folder) instead.')
flags.DEFINE_integer('sequential_episodes', 1, 'Sequential: episodes per (task, weight) actually run.')
flags.DEFINE_integer('workers', None, 'Environment worker processes of the lockstep run (default: one per core).')
flags.DEFINE_bool('in_process', True, 'Also time lockstep with the environments in the main process.')
flags.DEFINE_integer('max_steps', None, 'Shorter episode limit (quick checks only; not the benchmark).')
flags.DEFINE_string('eval_device', None, 'Where the policy runs: cpu, gpu, tpu (default: the accelerator when '
                    'there is one, as main.py --eval_device).')
flags.DEFINE_integer('seed', 0, 'Seed of the episodes and the random initialisation.')
flags.DEFINE_string('output', None, 'Result file name in benchmarks/results (default eval_speed-<platform>)'
                    ', or a path ending in .json.')

STEP = 0  # The evaluation "training step" that seeds the episodes.


def make_agent():
    """(agent, description): a trained checkpoint, or a random-init CFGRL agent of --hidden_dims."""
    if FLAGS.restore_path:
        agent, meta, step = load_checkpoint_agent(FLAGS.restore_path)
        if meta.get('num_seeds', 1) > 1:  # A --num_seeds run: benchmark its first seed.
            agent = unstack(agent, 0)
        hidden = meta['config']['actor_hidden_dims']
        return agent, f'{meta["agent"]} {"×".join(map(str, hidden))} at step {step}'
    config = get_config('cfgrl')
    config.actor_hidden_dims = tuple(int(h) for h in FLAGS.hidden_dims)
    agent = get_agent_class('cfgrl').create(FLAGS.seed, example_batch(FLAGS.env_name, config), config)
    return agent, f'cfgrl {"×".join(FLAGS.hidden_dims)} (random init)'


def compile_all_shapes(policy, plan: EvalPlan, example: dict) -> float:
    """Compiles every batch shape lockstep and sequential use; returns the seconds it took."""
    start = time.perf_counter()
    for size in sorted({bucket_size(k, plan.num_rows) for k in range(1, plan.num_rows + 1)}):
        obs = np.repeat(example['observations'][:1], size, 0)
        goals = np.repeat(example['goals'][:1], size, 0)
        policy(obs, goals, np.zeros(2, np.uint32), np.ones(size, np.float32))
    return time.perf_counter() - start


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def env_floor(envs, plan: EvalPlan, lengths: np.ndarray, action_dim: int, seed: int) -> float:
    """Seconds to reset the lockstep run's environments and step each as many times as its episode lasted, with
    random actions and no policy, through the same env batch (so in the same worker processes)."""
    lengths = lengths.ravel()
    rows = np.arange(plan.num_rows)
    task_ids, seeds = plan.row_tasks_and_seeds(seed, STEP)
    actions = np.random.default_rng(seed).uniform(-1, 1, (lengths.max(), plan.num_rows, action_dim))
    actions = actions.astype(np.float32)
    start = time.perf_counter()
    envs.reset(rows, task_ids, seeds)
    for t in range(lengths.max()):
        live = rows[lengths > t]
        _, done, _ = envs.step(live, actions[t, live])
        again = live[done & (lengths[live] > t + 1)]  # A lucky random episode ended early: start another.
        if again.size:
            envs.reset(again, task_ids[again], seeds[again])
    return time.perf_counter() - start


def policy_floor(policy, plan: EvalPlan, lengths: np.ndarray, example: dict) -> float:
    """Seconds of the lockstep run's policy calls alone: at each step, one call on the live rows' bucket, as
    `evaluate_lockstep` makes it, with no environment stepped."""
    lengths = lengths.ravel()
    sizes = [bucket_size(int((lengths > t).sum()), plan.num_rows) for t in range(lengths.max())]
    obs = np.repeat(example['observations'][:1], plan.num_rows, 0)
    goals = np.repeat(example['goals'][:1], plan.num_rows, 0)
    guidance = np.asarray(plan.row_guidance(), np.float32)
    start = time.perf_counter()
    for t, size in enumerate(sizes):
        actions = policy(obs[:size], goals[:size], policy_key(FLAGS.seed, t), guidance[:size])
    np.asarray(actions)  # Wait for the last call.
    return time.perf_counter() - start


def main(_):
    plan = EvalPlan(task_ids=tuple(int(t) for t in FLAGS.tasks), num_episodes=FLAGS.episodes,
                    guidance=tuple(float(w) for w in FLAGS.guidance))
    seq_plan = EvalPlan(task_ids=plan.task_ids, num_episodes=FLAGS.sequential_episodes, guidance=plan.guidance)
    make_env = EnvFactory(FLAGS.env_name, FLAGS.max_steps)
    workers = default_workers(plan.num_rows) if FLAGS.workers is None else FLAGS.workers
    agent, description = make_agent()
    eval_device = FLAGS.eval_device or default_eval_device()
    policy = policy_on(agent, eval_device)
    example = example_batch(FLAGS.env_name, agent.config)
    compile_seconds = compile_all_shapes(policy, plan, example)

    envs = make_env_batch(make_env, workers)
    _, env_creation = timed(lambda: envs.resize(plan.num_rows))
    lockstep, lockstep_s = timed(lambda: evaluate_lockstep(policy, envs, plan, FLAGS.seed, STEP, progress=False))
    floor_s = env_floor(envs, plan, lockstep.lengths, example['actions'].shape[-1], FLAGS.seed)
    envs.close()
    policy_s = policy_floor(policy, plan, lockstep.lengths, example)
    rows = [('env floor (random actions)', floor_s, lockstep.lengths.sum()),
            ('policy floor (no environments)', policy_s, lockstep.lengths.sum()),
            ('env floor + policy floor', floor_s + policy_s, lockstep.lengths.sum()),
            (f'lockstep, {workers} env workers', lockstep_s, lockstep.lengths.sum())]
    local_s = None
    if FLAGS.in_process and workers > 0:
        local = LocalEnvs(make_env)
        local.resize(plan.num_rows)
        _, local_s = timed(lambda: evaluate_lockstep(policy, local, plan, FLAGS.seed, STEP, progress=False))
        local.close()
        rows.append(('lockstep, in-process envs', local_s, lockstep.lengths.sum()))
    single = make_env()
    sequential, measured_s = timed(lambda: evaluate_sequential(policy, single, seq_plan, FLAGS.seed, STEP,
                                                              progress=False))
    scale = plan.num_rows / seq_plan.num_rows
    sequential_s = measured_s * scale  # Per-episode extrapolation.
    rows.append((f'sequential (extrapolated ×{scale:g})', sequential_s, sequential.lengths.sum() * scale))

    env_steps = int(lockstep.lengths.sum())
    device = device_name()
    print(f'\nEvaluation speed on {device}, policy on {eval_device}: {description}, {FLAGS.env_name}')
    print(f'{len(plan.task_ids)} tasks × {plan.num_episodes} episodes × {len(plan.guidance)} weights = '
          f'{plan.num_rows} episodes, {env_steps} environment steps (lockstep run); mean success '
          f'{lockstep.scores.mean():.2f}')
    print(f'(excluded: environment creation {env_creation:.1f} s, compilation of all batch shapes '
          f'{compile_seconds:.1f} s)')
    print(f'{"mode":<34} {"seconds":>8} {"episodes/s":>10} {"env steps/s":>11} {"÷ lockstep":>10}')
    for name, seconds, steps in rows:
        print(f'{name:<34} {seconds:>8.1f} {plan.num_rows / seconds:>10.2f} {steps / seconds:>11.0f} '
              f'{seconds / lockstep_s:>9.2f}x')
    print(f'sequential measured on {seq_plan.num_rows} episodes ({seq_plan.num_episodes} per task and weight) in '
          f'{measured_s:.1f} s and extrapolated per episode.')
    print(f'lockstep is {sequential_s / lockstep_s:.1f}x faster than sequential, {lockstep_s / floor_s:.2f}x the '
          f'environment-stepping floor and {lockstep_s / (floor_s + policy_s):.2f}x env floor + policy floor.')

    name = FLAGS.output or f'eval_speed-{jax.devices()[0].platform}'
    path = write_result(name, {
        'benchmark': 'eval_speed', 'device': device, 'eval_device': eval_device, 'policy': description,
        'env_name': FLAGS.env_name,
        'tasks': list(plan.task_ids), 'episodes_per_task': plan.num_episodes, 'guidance': list(plan.guidance),
        'episodes': plan.num_rows, 'env_steps': env_steps, 'mean_success': float(lockstep.scores.mean()),
        'max_steps': FLAGS.max_steps, 'workers': workers, 'env_creation_s': env_creation,
        'compile_s': compile_seconds, 'lockstep_s': lockstep_s, 'lockstep_in_process_s': local_s,
        'sequential_s_extrapolated': sequential_s, 'sequential_measured_s': measured_s,
        'sequential_measured_episodes': seq_plan.num_rows, 'env_floor_s': floor_s, 'policy_floor_s': policy_s,
        'lockstep_over_env_plus_policy_floor': lockstep_s / (floor_s + policy_s),
        'sequential_over_lockstep': sequential_s / lockstep_s, 'lockstep_over_floor': lockstep_s / floor_s,
        'jax': jax.__version__, 'date': time.strftime('%Y-%m-%d')})
    print(f'Wrote {path}')


if __name__ == '__main__':
    app.run(main)
