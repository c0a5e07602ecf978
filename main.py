"""Train and evaluate an agent on an OGBench or ExORL dataset; or re-evaluate a checkpoint.

    python main.py --agent=cfgrl --env_name=pointmaze-medium-navigate-v0 --config.batch_size=256
    python main.py --resume=runs/pointmaze-medium-navigate-v0/cfgrl/20250101-120000_s0
    python main.py --eval_only --restore_path=<run dir or checkpoint folder> --eval_guidance=0,1,2,4

The flags are declared in experiment/settings.py. `--config.<key>=value` overrides any key of the agent's config
(configs/<agent>.py); tuples are comma lists: `--config.actor_hidden_dims=256,256,256`. docs/outputs.md describes
what a run directory holds.
"""
import dataclasses
import os
import shutil
import sys
from typing import Callable, Optional

import experiment.startup  # noqa: F401  (first: a stopping signal during the imports below is one line)

os.environ.setdefault('MUJOCO_GL', 'egl')  # Headless rendering (videos); must be set before mujoco is imported.

import jax
import numpy as np
from absl import app, flags, logging

from agents.seeds import create_agent
from datasets.families import load_env_and_datasets
from datasets.files import CorruptDatasetError, DatasetUnavailableError, UnknownDatasetError
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from experiment import cli, faults, session
from experiment.checkpoints import CheckpointDamaged, Checkpointer, CheckpointMismatch
from experiment.lock import RunLock, RunLockedError
from experiment.loop import Saver, Schedule, train_loop
from experiment.run_dir import RunDir
from experiment.settings import Settings, UsageError, config_to_dict, define_flags, from_flags, recorded
from experiment.trainer import ChunkedTrainer, initialize_distributed

FLAGS = flags.FLAGS
define_flags(FLAGS)
# --config.<key>=value: defined by cli.parse_command_line, its defaults depending on --agent, --env_name, --resume
# or --restore_path; a repeated tuple override replaces the earlier value.


@dataclasses.dataclass
class Written:
    """The run directory this process writes (None before there is one), and whether this process made it: what a
    write fault's report names."""

    run: Optional[RunDir] = None
    new: bool = False


def main(_):
    if not FLAGS['verbosity'].present:  # absl.app defaults to INFO, and orbax logs every save at INFO.
        logging.set_verbosity(logging.WARNING)
    faults.report_thread_faults()
    faults.stop_on_signals(faults.MAIN_SIGNAL_STATUS)  # Raises faults.Interrupted from here on (cleanup, one line).
    config = FLAGS.config
    settings, explicit = from_flags(FLAGS)
    try:
        cli.check_mode(settings)  # Before joining a distributed job: a refused mode never connects.
    except UsageError as e:
        cli.fail(str(e))
    if settings.distributed:  # Before JAX touches a device.
        initialize_distributed(settings.coordinator_address, settings.num_processes, settings.process_id)
    primary = jax.process_index() == 0  # The process that writes files and evaluates.
    try:
        if settings.eval_only:
            sys.exit(_or_write_fault(lambda: session.evaluate_checkpoint(settings, explicit, config), Written()))
        settings, run, notes = session.resolve_settings(settings, explicit, config)
        mesh = session.training_mesh(settings, config)
        if run is not None and primary:
            RunLock(run.path).acquire()  # Held until this process exits.
    except (UsageError, FileNotFoundError, PermissionError, RunLockedError, CheckpointMismatch,
            CheckpointDamaged) as e:
        cli.fail(str(e))
    except faults.Interrupted as e:
        print(f'error: stopped by {e.name} before training started; nothing was changed.', file=sys.stderr)
        sys.exit(e.status)
    written = Written(run)
    sys.exit(_or_write_fault(lambda: train(settings, explicit, config, run, notes, mesh, primary, written),
                             written))


def train(settings: Settings, explicit, config, run: Optional[RunDir], notes, mesh, primary: bool,
          written: Written) -> int:
    """Trains a new run (`run` None) or continues `run`: data → agent → run directory and resume → the loop of
    compiled chunks, logs, evaluations and checkpoints → close. Returns the exit status."""
    # The data, on the device once; an example batch for the agent's shapes.
    try:
        env, train_data, val_data = load_env_and_datasets(settings.env_name, settings.dataset_dir,
                                                          exorl_algo=settings.exorl_algo)
    except (CorruptDatasetError, DatasetUnavailableError, UnknownDatasetError) as e:
        cli.fail(str(e))
    env.close()  # Evaluation makes its own environments.
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(train_data)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(settings.seed), sampling))
    agent = create_agent(settings.agent, settings.seeds, example, config)

    # The run directory; resume from its newest intact checkpoint if it has one.
    if run is None:
        run = session.new_run_dir(settings)
        written.run = run
        if primary:
            written.new = True  # Before anything is written in it (its lock): a fault removes it.
            RunLock(run.path).acquire()  # Held until this process exits.
    checkpointer = Checkpointer(run.checkpoint_dir)
    sampler_rng, step = session.initial_sampler_rng(settings.seed, settings.num_seeds), 0
    latest = checkpointer.latest_step()
    try:  # The newest checkpoint that reads and matches its digest; damaged ones are reported and set aside.
        found, restored = checkpointer.newest_intact(agent, set_aside=True)
    except (CheckpointMismatch, CheckpointDamaged) as e:
        cli.fail(str(e))
    if found is not None:
        agent, sampler_rng, step = restored
        print(f'Resuming {run.path} from step {step}'
              + ('.' if step == latest else ', the newest intact checkpoint.'), flush=True)
    if primary:
        run.record_session(recorded(settings), config_to_dict(config), step, notes)

    # The compiled trainer, the evaluator (process 0 only) and the checkpoint saver the loop calls.
    schedule = Schedule(settings.train_steps, settings.log_interval, settings.eval_interval, settings.save_interval)
    trainer = ChunkedTrainer(sampling, data, schedule.chunk, num_seeds=settings.num_seeds, mesh=mesh,
                             val_data=device_dataset(val_data) if val_data else None)
    agent, sampler_rng = trainer.place(agent), trainer.place(sampler_rng)
    evaluator = session.make_evaluator(settings, explicit, agent.guided, run.file(RunDir.VIDEOS)) if primary else None
    # Sampling the policy copies the parameters to the CPU, which stalls a multi-process job's collective saves.
    check_policy = session.policy_check(settings, example, agent.guided) if jax.process_count() == 1 else None
    saver = Saver(checkpointer, session.checkpoint_meta(settings, config), check_policy)
    try:
        return train_loop(agent, sampler_rng, step, run=run, trainer=trainer, saver=saver, evaluate=evaluator,
                          schedule=schedule, seeds=settings.seeds, env_name=settings.env_name,
                          agent_name=settings.agent, writes=primary)
    finally:
        checkpointer.close()
        if evaluator is not None:
            evaluator.close()  # Stops the environment worker processes.


def _or_write_fault(fn: Callable[[], int], written: Written) -> int:
    """fn(), or one line and exit status 74 when a write fails (disk full, read-only), or the signal's status when
    a stopping signal arrives outside the training loop: what failed, what is kept and how to continue. A new run
    directory without a checkpoint is removed, as it holds nothing to resume."""
    try:
        return fn()
    except faults.Interrupted as e:
        fault, status, fix = f'stopped by {e.name}', e.status, ''
    except Exception as e:  # noqa: BLE001  (anything that is not a write fault is re-raised)
        fault, status, fix = faults.write_fault(e), faults.EXIT_WRITE_FAULT, 'free space and '
        if fault is None:
            raise
    run = written.run
    latest = Checkpointer(run.checkpoint_dir, create=False).latest_step() if run and os.path.isdir(
        run.checkpoint_dir) else None
    if run is None:
        advice = ('no run directory was made; '
                  + ('free space (or choose other folders) and run again.' if fix else 'run again.'))
    elif latest is None and written.new:
        shutil.rmtree(run.path, ignore_errors=True)
        advice = f'the new run directory {run.path} held no checkpoint and was removed; {fix}run again.'
    else:
        kept = f'its last checkpoint is step {latest}' if latest is not None else 'it has no checkpoint yet'
        advice = f'{run.path} is intact ({kept}); {fix}continue with --resume={run.path}'
    print(f'error: {fault}; {advice}', file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Exit at once: TensorBoard's writer would retry its flush at exit and in its thread, each with a traceback.
    os._exit(status)


if __name__ == '__main__':
    app.run(main, flags_parser=cli.parse_command_line)
