"""What main.py uses besides the loop: the settings of a continued run, the run directory, the mesh, the evaluator,
the policy check before each save, and --eval_only."""
import math
import os
import shutil
import sys
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.sharding import Mesh

from agents.seeds import create_agent
from datasets.families import family_of
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from evaluation.envs import EnvFactory, reset_episode
from evaluation.results import format_table
from evaluation.rollout import EvalPlan, Evaluator, policy_key, policy_on, stacked_policy_on
from experiment import cli, faults, restore
from experiment.checkpoints import CheckpointDamaged, Checkpointer, locate_checkpoint
from experiment.loop import EXIT_OK, NonFiniteMetric
from experiment.run_dir import RunDir
from experiment.settings import Settings, UsageError, config_from_dict, config_to_dict, family_overrides, recorded
from experiment.trainer import data_parallel_mesh, seed_parallel_mesh

PROBE_ROWS = 16  # Training rows the policy is sampled on before a checkpoint is saved.
SAMPLER_STREAM = 1  # The sampler's key is fold_in(PRNGKey(seed), 1): independent of the agent's PRNGKey(seed) splits.


def resolve_settings(settings: Settings, explicit: Set[str],
                     config: ml_collections.ConfigDict) -> Tuple[Settings, Optional[RunDir], List[str]]:
    """Validated settings, the run directory being resumed (None for a new run) and notes for meta.json. Nothing
    is created here: a new run's directory is made once its data has loaded."""
    run, notes = None, []
    if settings.resume:
        settings, run, notes = restore.resume(settings, explicit, config)
    cli.validate(settings)
    cli.check_config(config, settings.agent)
    faults.check_writable(run.path if run else settings.save_dir, '--resume' if run else '--save_dir')
    if notes:  # Forced changes: --force can change how training continues, not the arrays' shapes.
        check_shapes(run, settings, config)
    if run is None:
        notes = family_note(settings)
    return settings, run, notes


def family_note(settings: Settings) -> List[str]:
    """Says (and returns, for meta.json) which config values a new run took from its environment family."""
    overrides = family_overrides(settings.agent, settings.env_name)
    if not overrides:
        return []
    values = ', '.join(f'{k}={v}' for k, v in overrides.items())
    note = (f'{family_of(settings.env_name).name} settings of {settings.agent} (datasets/families.py): {values}; '
            '--config.<key> overrides them')
    print(f'{note}.')
    return [note]


def check_shapes(run: RunDir, settings: Settings, config: ml_collections.ConfigDict) -> None:
    """Refuses (UsageError) to resume `run` with a config whose arrays differ in shape from its last checkpoint's:
    --force can change how training continues, not the network. Builds no data and no real arrays."""
    if not os.path.isdir(run.checkpoint_dir):
        return
    checkpointer = Checkpointer(run.checkpoint_dir, create=False)
    saved = None
    for step in reversed(checkpointer.all_steps()):  # The newest whose metadata reads (damage is found later).
        try:
            saved = checkpointer.array_shapes(step)
            break
        except CheckpointDamaged:
            continue
    checkpointer.close()
    if saved is None:
        return
    example = example_batch(settings.env_name, config)
    agent = jax.eval_shape(lambda: create_agent(settings.agent, settings.seeds, example, config))
    leaves = jax.tree_util.tree_leaves_with_path({'agent': flax.serialization.to_state_dict(agent)})
    wanted = {jax.tree_util.keystr(key): tuple(leaf.shape) for key, leaf in leaves}
    differing = [key for key in wanted if saved.get(key) != wanted[key]]
    if differing:
        key = differing[0]
        raise UsageError(f'the config changes the shapes of {len(differing)} saved arrays of {run.path} (e.g. '
                             f'{key}: {saved.get(key, "absent")} -> {wanted[key]}); --force cannot change shapes. '
                             'Start a new run with this config instead.')


def new_run_dir(settings: Settings) -> RunDir:
    """A new run directory; in a multi-process job process 0 creates it and every process gets its path."""
    path = ''
    if jax.process_index() == 0:
        path = RunDir.create(os.path.join(settings.save_dir, settings.env_name, settings.agent),
                             RunDir.default_name(settings.seed, settings.num_seeds)).path
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        encoded = np.frombuffer(path.encode().ljust(4096, b'\0'), np.uint8)
        path = bytes(np.asarray(multihost_utils.broadcast_one_to_all(encoded))).rstrip(b'\0').decode()
    return RunDir(path)


def initial_sampler_rng(seed: int, num_seeds: int = 1) -> jax.Array:
    """The batch sampler's key (one per seed, stacked, with num_seeds > 1)."""
    keys = [jax.random.fold_in(jax.random.PRNGKey(s), SAMPLER_STREAM) for s in range(seed, seed + num_seeds)]
    return keys[0] if num_seeds == 1 else jnp.stack(keys)


def training_mesh(settings: Settings, config: ml_collections.ConfigDict) -> Optional[Mesh]:
    """The devices training spreads over; None on one device.
    - One seed: data parallelism over every device (the batch sharded, parameters replicated), across hosts too.
    - Several seeds: seed parallelism over this process's devices, as many as divide --num_seeds (each device
      trains whole seeds). Not across hosts: process 0 evaluates and would need every seed's parameters."""
    devices = jax.devices()
    if len(devices) == 1:
        return None
    if settings.num_seeds > 1:
        if jax.process_count() > 1:
            logging.warning('--num_seeds=%d with %d processes: every process trains all seeds on one device (seed '
                            'parallelism stays within a host).', settings.num_seeds, jax.process_count())
            return None
        count = math.gcd(settings.num_seeds, len(devices))
        if count == 1:
            logging.warning('%d devices do not divide --num_seeds=%d: training on one device.', len(devices),
                            settings.num_seeds)
            return None
        if count < len(devices):
            logging.warning('--num_seeds=%d uses %d of the %d devices (as many as divide it).', settings.num_seeds,
                            count, len(devices))
        logging.warning('Seed-parallel training: %d seeds over %d devices.', settings.num_seeds, count)
        return seed_parallel_mesh(devices[:count])
    if config.batch_size % len(devices):
        raise UsageError(f'config.batch_size={config.batch_size} must be divisible by the {len(devices)} '
                             'devices for data-parallel training.')
    logging.warning('Data-parallel training over %d devices: %s.', len(devices), devices)
    return data_parallel_mesh(devices)


def checkpoint_meta(settings: Settings, config: ml_collections.ConfigDict) -> Dict:
    """What every checkpoint carries besides arrays, so that it can be re-evaluated on its own."""
    return {'agent': settings.agent, 'env_name': settings.env_name, 'seed': settings.seed,
            'num_seeds': settings.num_seeds, 'seeds': settings.seeds, 'config': config_to_dict(config)}


def policy_check(settings: Settings, example: Dict[str, np.ndarray], guided: bool) -> Callable[[Any, int], None]:
    """A check run before each save: raises NonFiniteMetric when the policy's actions on a few training rows, at
    each evaluated weight, are not finite. Finite parameters can still overflow in sampling (e.g. a negative lr)."""
    obs, goals = (np.asarray(example[k][:PROBE_ROWS]) for k in ('observations', 'goals'))
    weights = cli.guidance_weights(settings, guided)
    stacked = settings.num_seeds > 1

    def check(agent, step: int) -> None:
        policy = stacked_policy_on(agent, 'cpu') if stacked else policy_on(agent, 'cpu')
        for w in weights:
            guidance = np.full(len(obs), 1.0 if w is None else w, np.float32)
            if stacked:
                tile = lambda x: np.broadcast_to(x, (settings.num_seeds, *x.shape))
                keys = np.stack([policy_key(s, step) for s in settings.seeds])
                actions = policy(tile(obs), tile(goals), keys, tile(guidance))
            else:
                actions = policy(obs, goals, policy_key(settings.seed, step), guidance)
            if not np.isfinite(actions).all():
                raise NonFiniteMetric(f'non-finite actions sampled at step {step}'
                                      + ('' if w is None else f' (guidance {w:g})'))

    return check


def make_evaluator(settings: Settings, explicit: Set[str], guided: bool,
                   video_root: Optional[str]) -> Optional[Evaluator]:
    """The run's evaluator (None with --eval_episodes=0)."""
    if settings.eval_episodes == 0:
        return None
    family = family_of(settings.env_name)
    task_ids = family.eval_task_ids(settings.env_name, cli.task_ids(settings))
    if family.single_task and 'eval_tasks' in explicit:
        logging.warning('--eval_tasks is ignored: %s has the single task %d.', settings.env_name, task_ids[0])
    plan = EvalPlan(task_ids=task_ids, num_episodes=settings.eval_episodes,
                    guidance=cli.guidance_weights(settings, guided, explicit), video_episodes=settings.video_episodes,
                    metric=family.metric)
    make_env = EnvFactory(settings.env_name, settings.eval_max_steps)
    return Evaluator(plan, make_env, seed=settings.seed, mode=settings.eval_mode, workers=settings.eval_workers,
                     video_root=video_root, num_seeds=settings.num_seeds, max_envs=settings.eval_max_envs,
                     device=settings.eval_device)


def example_batch(env_name: str, config: ml_collections.ConfigDict) -> Dict[str, np.ndarray]:
    """A batch with the structure training gives `create` (every key any agent reads), without the dataset: the
    training sampler applied to a two-row dataset made of one observation and goal of the environment."""
    env = EnvFactory(env_name)()
    ob, goal = reset_episode(env, task_id=1, seed=0)
    rows = {'observations': np.stack([ob, ob]), 'actions': np.zeros((2, env.action_space.shape[-1]), np.float32),
            'terminals': np.array([0.0, 1.0], np.float32), 'valids': np.array([1.0, 0.0], np.float32)}
    env.close()
    if goal.shape != ob.shape:  # -oraclerep environments: goals are oracle representations.
        rows['oracle_reps'] = np.stack([goal, goal])
    batch = sample_goal_batch(device_dataset(rows), jax.random.PRNGKey(0), GoalSamplingConfig.from_config(config))
    return jax.tree.map(np.asarray, batch)


def load_checkpoint_agent(path: str) -> Tuple[object, Dict, int]:
    """(agent, checkpoint meta, step) of the checkpoint at `path` (a run directory, its checkpoints/ folder or one
    checkpoints/<step> folder), built with the agent, config and seeds it was trained with (stacked when several)."""
    checkpointer, step, _ = locate_checkpoint(path)
    meta = checkpointer.read_meta(step)
    config = config_from_dict(meta['config'])
    seeds = list(range(meta['seed'], meta['seed'] + meta.get('num_seeds', 1)))
    template = create_agent(meta['agent'], seeds, example_batch(meta['env_name'], config), config)
    agent = checkpointer.restore(template, step)[0]
    checkpointer.close()
    return agent, meta, step


def evaluate_checkpoint(settings: Settings, explicit: Set[str], config: ml_collections.ConfigDict) -> int:
    """--eval_only: evaluates a checkpoint into a new folder (never clobbering), `<run>/evals/<time>_step<N>/` when
    the checkpoint belongs to a run directory, else (or with an explicit --save_dir, or when the run directory is
    read-only) under --save_dir (experiment.restore.eval_only)."""
    settings, checkpointer, step, run_path, notes = restore.eval_only(settings, explicit, config)
    cli.validate(settings)
    cli.check_config(config, settings.agent)
    if settings.eval_episodes == 0:
        raise UsageError('--eval_only needs --eval_episodes > 0.')
    parent = os.path.join(settings.save_dir, settings.env_name, settings.agent)
    if run_path and 'save_dir' not in explicit:
        try:
            faults.check_writable(os.path.join(run_path, RunDir.EVALS), '--restore_path')
            parent = os.path.join(run_path, RunDir.EVALS)
        except PermissionError as e:
            print(f'{e} Writing this evaluation under --save_dir={settings.save_dir} instead.')
    faults.check_writable(parent, '--save_dir')
    template = create_agent(settings.agent, settings.seeds, example_batch(settings.env_name, config), config)
    agent, _, _ = checkpointer.restore(template, step)
    out = RunDir.create(parent, f'{RunDir.default_name(settings.seed, settings.num_seeds)}_step{step}')
    try:  # An evaluation folder is complete or absent: scripts/aggregate.py never reads half of one.
        out.record_session({**recorded(settings), 'restore_path': settings.restore_path},
                           config_to_dict(config), step, notes)
        with make_evaluator(settings, explicit, agent.guided, out.file(RunDir.VIDEOS)) as evaluator:
            results = evaluator(agent, step)
        rows = out.record_results(results, settings.seeds, settings.env_name, settings.agent)
    except BaseException as e:
        shutil.rmtree(out.path, ignore_errors=True)
        if isinstance(e, faults.Interrupted):
            print(f'error: evaluation stopped by {e.name}; its unfinished folder {out.path} was removed.',
                  file=sys.stderr, flush=True)
            return e.status
        raise
    print(results[0].table() if len(results) == 1 else format_table(rows, f'mean of {len(results)} seeds'))
    print(f'Results: {out.path}')
    return EXIT_OK
