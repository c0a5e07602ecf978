"""Train and evaluate a goal-conditioned agent on an OGBench dataset; or re-evaluate a checkpoint.

    python main.py --agent=cfgrl --env_name=pointmaze-medium-navigate-v0 --config.batch_size=256
    python main.py --resume=runs/pointmaze-medium-navigate-v0/cfgrl/20250101-120000_s0
    python main.py --eval_only --restore_path=<run dir or checkpoint folder> --eval_guidance=0,1,2,4

`--config.<key>=value` overrides any key of the agent's config (configs/<agent>.py); tuples are comma lists:
`--config.actor_hidden_dims=256,256,256`. See experiment/run_dir.py for what a run directory holds.
"""
import os
import shutil
import sys

os.environ.setdefault('MUJOCO_GL', 'egl')  # Headless rendering (videos); must be set before mujoco is imported.

import jax
import numpy as np
from absl import app, flags, logging

from agents import AGENTS
from datasets.files import CorruptDatasetError, DatasetUnavailableError, UnknownDatasetError
from datasets.loading import load_env_and_datasets
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from evaluation.rollout import EVAL_MODES
from experiment import cli, faults, session
from experiment.checkpoints import Checkpointer, CheckpointMismatch
from experiment.lock import RunLock, RunLockedError
from experiment.loop import Schedule, TrainLoop
from experiment.run_dir import RunDir
from experiment.trainer import ChunkedTrainer, initialize_distributed

FLAGS = flags.FLAGS
flags.DEFINE_string('agent', cli.DEFAULT_AGENT, f'Agent (registry name): {", ".join(sorted(AGENTS))}.')
flags.DEFINE_string('env_name', 'pointmaze-medium-navigate-v0', 'OGBench dataset name.')
flags.DEFINE_string('dataset_dir', None, 'Folder of the OGBench datasets (default: ~/.ogbench/data); for exorl-* '
                    'tasks, the ExORL root holding <domain>/<algo>/buffer/ (default: ~/.exorl/data).')
flags.DEFINE_string('exorl_algo', 'rnd', 'exorl-* tasks: the exploration data set (ExORL algorithm folder).')
flags.DEFINE_integer('seed', 0, 'Seed of the agent, the batch sampler and the evaluation episodes.')
flags.DEFINE_integer('num_seeds', 1, 'Train seeds seed, seed+1, ... together in this process (jax.vmap), evaluate '
                     'them in the same rollouts, and report each seed and their mean ± std.')
flags.DEFINE_integer('train_steps', 1_000_000, 'Gradient steps.')
flags.DEFINE_integer('log_interval', 5_000, 'Steps between training logs (TensorBoard, progress bar).')
flags.DEFINE_integer('eval_interval', 100_000, 'Steps between evaluations (and at the last step).')
flags.DEFINE_integer('save_interval', 100_000, 'Steps between checkpoints (and at the last step).')
flags.DEFINE_integer('eval_episodes', 20, 'Episodes per task and guidance weight (0: no evaluation).')
flags.DEFINE_list('eval_tasks', ['1', '2', '3', '4', '5'], 'OGBench evaluation task ids.')
flags.DEFINE_list('eval_guidance', ['0', '1', '1.5', '2', '3'],
                  "Guidance weights to evaluate (guided agents; others report one entry keyed 'none').")
flags.DEFINE_enum('eval_mode', 'lockstep', EVAL_MODES, 'lockstep: one batched policy call per env step; '
                  'sequential: one episode at a time (slow reference).')
flags.DEFINE_integer('eval_workers', None, 'Processes stepping the lockstep environments (0: this process; '
                     'default: one per CPU core).')
flags.DEFINE_integer('eval_max_envs', None, 'Lockstep environments at most (default: as many as half the free memory '
                     'holds); finished episodes hand their environment to the next one.')
flags.DEFINE_integer('eval_max_steps', None, 'Debugging aid: shorter episode limit than OGBench\'s.')
flags.DEFINE_string('eval_device', None, 'Where the policy runs during evaluation: a JAX platform (cpu, gpu, tpu); '
                    'default: the accelerator when there is one, else the CPU.')
flags.DEFINE_integer('video_episodes', 0, 'Record the first N episodes of each task at each weight (GIF).')
flags.DEFINE_string('save_dir', 'runs', 'Runs go to <save_dir>/<env_name>/<agent>/<time>_s<seed>/.')
flags.DEFINE_string('resume', None, 'Run directory to continue (its saved flags and config are the defaults).')
flags.DEFINE_bool('force', False, 'Resume (or evaluate) despite differing agent/env/seed/config.')
flags.DEFINE_string('restore_path', None, 'With --eval_only: a run directory or a checkpoint folder.')
flags.DEFINE_bool('eval_only', False, 'Evaluate the checkpoint at --restore_path without training.')
flags.DEFINE_bool('distributed', False, 'Multi-host: join a jax.distributed job first (the cluster is detected, e.g. '
                  'SLURM, or given by the next three flags); training is data parallel over every process\'s devices '
                  'and process 0 alone writes the run directory and evaluates.')
flags.DEFINE_string('coordinator_address', None, 'With --distributed: host:port of process 0.')
flags.DEFINE_integer('num_processes', None, 'With --distributed: how many processes the job has.')
flags.DEFINE_integer('process_id', None, 'With --distributed: this process\'s index (0 writes and evaluates).')
# --config.<key>=value: defined by cli.parse_command_line, its defaults depending on --agent, --resume or
# --restore_path; a repeated tuple override replaces the earlier value.


def main(_):
    if not FLAGS['verbosity'].present:  # absl.app defaults to INFO, and orbax logs every save at INFO.
        logging.set_verbosity(logging.WARNING)
    faults.report_thread_faults()
    settings, explicit = cli.settings_from_flags(FLAGS)
    config = FLAGS.config
    if settings.distributed:  # Before JAX touches a device.
        initialize_distributed(settings.coordinator_address, settings.num_processes, settings.process_id)
    primary = jax.process_index() == 0  # The process that writes files and evaluates.
    try:
        cli.check_mode(settings)
        if settings.eval_only:
            sys.exit(_or_write_fault(session.evaluate_checkpoint, settings, explicit, config))
        settings, run, notes = session.resolve_settings(settings, explicit, config)
        mesh = session.training_mesh(settings, config)
        if run is not None and primary:
            RunLock(run.path).acquire()  # Held until this process exits.
    except (cli.UsageError, FileNotFoundError, PermissionError, RunLockedError, CheckpointMismatch) as e:
        cli.fail(str(e))
    sys.exit(_or_write_fault(train, settings, explicit, config, run, notes, mesh, primary))


def train(settings, explicit, config, run, notes, mesh, primary) -> int:
    """Trains a new run (`run` None) or continues `run`; returns the exit status."""
    try:
        env, train_data, val_data = load_env_and_datasets(settings.env_name, settings.dataset_dir,
                                                          exorl_algo=settings.exorl_algo)
    except (CorruptDatasetError, DatasetUnavailableError, UnknownDatasetError) as e:
        cli.fail(str(e))
    env.close()  # Evaluation makes its own environments.
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(train_data)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(settings.seed), sampling))
    agent = session.create_agent(settings.agent, settings.seeds, example, config)

    if run is None:
        run = session.new_run_dir(settings)
        if primary:
            RunLock(run.path).acquire()  # Held until this process exits.
            _CURRENT['new_run'] = run
    _CURRENT['run'] = run
    checkpointer = Checkpointer(run.checkpoint_dir)
    sampler_rng, step = session.initial_sampler_rng(settings.seed, settings.num_seeds), 0
    if checkpointer.latest_step() is not None:
        try:
            agent, sampler_rng, step = checkpointer.restore(agent)
        except CheckpointMismatch as e:
            cli.fail(str(e))
        print(f'Resuming {run.path} from step {step}.')
    if primary:
        run.record_session(cli.recorded(settings), cli.config_to_dict(config), step, notes)

    schedule = Schedule(settings.train_steps, settings.log_interval, settings.eval_interval, settings.save_interval)
    evaluator = session.make_evaluator(settings, explicit, agent.guided, run.file(RunDir.VIDEOS)) if primary else None
    trainer = ChunkedTrainer(sampling, data, schedule.chunk, num_seeds=settings.num_seeds, mesh=mesh,
                             val_data=device_dataset(val_data) if val_data else None)
    agent, sampler_rng = trainer.place(agent), trainer.place(sampler_rng)
    # Sampling the policy copies the parameters to the CPU, which stalls a multi-process job's collective saves.
    check_policy = session.policy_check(settings, example, agent.guided) if jax.process_count() == 1 else None
    loop = TrainLoop(run, checkpointer, trainer, schedule, evaluator, session.checkpoint_meta(settings, config),
                     writes=primary, check_policy=check_policy)
    try:
        return loop(agent, sampler_rng, step)
    finally:
        checkpointer.close()
        if evaluator is not None:
            evaluator.close()  # Stops the environment worker processes.


_CURRENT = {}  # The run directory being written ('run'), and 'new_run' if this process made it.


def _or_write_fault(fn, *args) -> int:
    """fn(*args), or one line and exit status 74 when a write fails (disk full, read-only): what failed, what is kept
    and how to continue. A new run directory without a checkpoint is removed, as it holds nothing to resume."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001  (anything that is not a write fault is re-raised)
        fault = faults.write_fault(e)
        if fault is None:
            raise
    run = _CURRENT.get('run')
    latest = Checkpointer(run.checkpoint_dir, create=False).latest_step() if run and os.path.isdir(
        run.checkpoint_dir) else None
    if run is None:
        advice = 'no run directory was made; free space (or choose other folders) and run again.'
    elif latest is None and _CURRENT.get('new_run') is run:
        shutil.rmtree(run.path, ignore_errors=True)
        advice = f'the new run directory {run.path} held no checkpoint and was removed; free space and run again.'
    else:
        kept = f'its last checkpoint is step {latest}' if latest is not None else 'it has no checkpoint yet'
        advice = f'{run.path} is intact ({kept}); free space and continue with --resume={run.path}'
    print(f'error: {fault}; {advice}', file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Exit at once: TensorBoard's writer would retry its flush at exit and in its thread, each with a traceback.
    os._exit(faults.EXIT_WRITE_FAULT)


if __name__ == '__main__':
    app.run(main, flags_parser=cli.parse_command_line)
