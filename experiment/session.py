"""The pieces main.py wires together: which run directory, which settings, the evaluator, and --eval_only."""
import math
import os
from typing import Dict, List, Optional, Set, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.sharding import Mesh

from agents import get_agent_class
from agents.trainer import create_agents, data_parallel_mesh, seed_parallel_mesh
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from evaluation.envs import EnvFactory, reset_episode
from evaluation.results import format_table, seeds_csv_rows
from evaluation.rollout import EvalPlan, Evaluator, is_single_task, single_task_id
from experiment import cli
from experiment.checkpoints import locate_checkpoint
from experiment.loop import EXIT_OK
from experiment.run_dir import RunDir

SAMPLER_STREAM = 1  # The sampler's key is fold_in(PRNGKey(seed), 1): independent of the agent's PRNGKey(seed) splits.


def resolve_settings(settings: cli.Settings, explicit: Set[str],
                     config: ml_collections.ConfigDict) -> Tuple[cli.Settings, Optional[RunDir], List[str]]:
    """Validated settings, the run directory being resumed (None for a new run) and notes for meta.json.

    On --resume, flags not given take the run's saved values; a changed identity flag (agent, env, seed, dataset)
    or a config override that differs from the saved config is refused, naming each difference, unless --force.
    Nothing is created here: a new run's directory is made once its data has loaded.
    """
    run, changes = None, []
    if settings.resume:
        run = RunDir.open(settings.resume)
        settings, changes = cli.merge_saved(settings, explicit, run.read_json(RunDir.FLAGS))
        changes += cli.config_differences(run.read_json(RunDir.CONFIG), cli.config_to_dict(config))
        if changes and not settings.force:
            raise cli.UsageError(f'refusing to resume {run.path} with different settings: {"; ".join(changes)}. '
                                 'Pass --force to resume anyway.')
    cli.validate(settings)
    cli.check_config(config, settings.agent)
    return settings, run, [f'forced change on resume: {c}' for c in changes]


def new_run_dir(settings: cli.Settings) -> RunDir:
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


def seeds(settings: cli.Settings) -> List[int]:
    """The seeds of a run: `seed` alone, or seed, seed + 1, ... with --num_seeds."""
    return list(range(settings.seed, settings.seed + settings.num_seeds))


def create_agent(settings: cli.Settings, example: Dict[str, np.ndarray], config: ml_collections.ConfigDict):
    """The run's freshly initialised agent; with --num_seeds > 1, one per seed stacked along a leading axis
    (seed k initialised exactly as a single run with seed k)."""
    agent_cls = get_agent_class(settings.agent)
    if settings.num_seeds == 1:
        return agent_cls.create(settings.seed, example, config)
    return create_agents(agent_cls, seeds(settings), example, config)


def initial_sampler_rng(seed: int, num_seeds: int = 1) -> jax.Array:
    """The batch sampler's key (one per seed, stacked, with num_seeds > 1)."""
    keys = [jax.random.fold_in(jax.random.PRNGKey(s), SAMPLER_STREAM) for s in range(seed, seed + num_seeds)]
    return keys[0] if num_seeds == 1 else jnp.stack(keys)


def training_mesh(settings: cli.Settings, config: ml_collections.ConfigDict) -> Optional[Mesh]:
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
        raise cli.UsageError(f'config.batch_size={config.batch_size} must be divisible by the {len(devices)} '
                             'devices for data-parallel training.')
    logging.warning('Data-parallel training over %d devices: %s.', len(devices), devices)
    return data_parallel_mesh(devices)


def checkpoint_meta(settings: cli.Settings, config: ml_collections.ConfigDict) -> Dict:
    """What every checkpoint carries besides arrays, so that it can be re-evaluated on its own."""
    return {'agent': settings.agent, 'env_name': settings.env_name, 'seed': settings.seed,
            'num_seeds': settings.num_seeds, 'seeds': seeds(settings), 'config': cli.config_to_dict(config)}


def make_evaluator(settings: cli.Settings, explicit: Set[str], guided: bool,
                   video_root: Optional[str]) -> Optional[Evaluator]:
    """The run's evaluator (None with --eval_episodes=0)."""
    if settings.eval_episodes == 0:
        return None
    make_env = EnvFactory(settings.env_name, settings.eval_max_steps)
    task_ids = cli.task_ids(settings)
    if is_single_task(settings.env_name):
        env = make_env()
        task_ids = (single_task_id(env),)
        env.close()
        if 'eval_tasks' in explicit:
            logging.warning('--eval_tasks is ignored: %s has the single task %d.', settings.env_name, task_ids[0])
    plan = EvalPlan(task_ids=task_ids, num_episodes=settings.eval_episodes,
                    guidance=cli.guidance_weights(settings, guided, explicit), video_episodes=settings.video_episodes,
                    metric='return' if settings.env_name.startswith('exorl-') else 'success')
    return Evaluator(plan, make_env, seed=settings.seed, mode=settings.eval_mode, workers=settings.eval_workers,
                     video_root=video_root, num_seeds=settings.num_seeds, max_envs=settings.eval_max_envs)


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
    config = cli.config_from_dict(meta['config'])
    trained = cli.Settings(agent=meta['agent'], seed=meta['seed'], num_seeds=meta.get('num_seeds', 1))
    template = create_agent(trained, example_batch(meta['env_name'], config), config)
    agent = checkpointer.restore(template, step)[0]
    checkpointer.close()
    return agent, meta, step


def evaluate_checkpoint(settings: cli.Settings, explicit: Set[str], config: ml_collections.ConfigDict) -> int:
    """--eval_only: evaluates a checkpoint into a new folder (never clobbering), `<run>/evals/<time>_step<N>/` when
    the checkpoint belongs to a run directory, else under --save_dir. Agent, environment and seed default to the
    checkpoint's; config overrides apply (e.g. another flow_steps) and are recorded."""
    checkpointer, step, run_path = locate_checkpoint(settings.restore_path)
    meta = checkpointer.read_meta(step)
    settings, changes = cli.merge_saved(settings, explicit, meta)
    if changes and not settings.force:
        raise cli.UsageError(f'the checkpoint was trained with other settings: {"; ".join(changes)}. '
                             'Pass --force to evaluate it anyway.')
    cli.validate(settings)
    cli.check_config(config, settings.agent)
    if settings.eval_episodes == 0:
        raise cli.UsageError('--eval_only needs --eval_episodes > 0.')
    notes = [f'restored from {checkpointer.directory}/{step}']
    notes += [f'config override: {c}' for c in cli.config_differences(meta['config'], cli.config_to_dict(config))]

    parent = os.path.join(run_path, RunDir.EVALS) if run_path else os.path.join(
        settings.save_dir, settings.env_name, settings.agent)
    template = create_agent(settings, example_batch(settings.env_name, config), config)
    agent, _, _ = checkpointer.restore(template, step)
    out = RunDir.create(parent, f'{RunDir.default_name(settings.seed, settings.num_seeds)}_step{step}')
    out.record_session({**cli.recorded(settings), 'restore_path': settings.restore_path},
                       cli.config_to_dict(config), step, notes)
    with make_evaluator(settings, explicit, agent.guided, out.file(RunDir.VIDEOS)) as evaluator:
        result = evaluator(agent, step)
    if isinstance(result, list):
        out.record_seed_evals(result, seeds(settings), settings.env_name, settings.agent)
        print(format_table(seeds_csv_rows(result), f'mean of {len(result)} seeds'))
    else:
        out.record_eval(result, settings.env_name, settings.agent)
        print(result.table())
    print(f'Results: {out.path}')
    return EXIT_OK
