"""Train and evaluate a goal-conditioned agent on an OGBench dataset; or re-evaluate a checkpoint.

    python main.py --agent=cfgrl --env_name=pointmaze-medium-navigate-v0 --config.batch_size=256
    python main.py --resume=runs/pointmaze-medium-navigate-v0/cfgrl/20250101-120000_s0
    python main.py --eval_only --restore_path=<run dir or checkpoint folder> --eval_guidance=0,1,2,4

`--config.<key>=value` overrides any key of the agent's config (configs/<agent>.py); tuples are comma lists:
`--config.actor_hidden_dims=256,256,256`. See experiment/run_dir.py for what a run directory holds.
"""
import os
import sys

os.environ.setdefault('MUJOCO_GL', 'egl')  # Headless rendering (videos); must be set before mujoco is imported.

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from agents import AGENTS
from agents.trainer import ChunkedTrainer, initialize_distributed
from datasets.generate import CorruptDatasetError, DatasetUnavailableError, UnknownDatasetError
from datasets.loading import load_env_and_datasets
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from evaluation.rollout import EVAL_MODES
from experiment import cli, session
from experiment.checkpoints import Checkpointer
from experiment.loop import Schedule, TrainLoop
from experiment.run_dir import RunDir

FLAGS = flags.FLAGS
flags.DEFINE_enum('agent', cli.DEFAULT_AGENT, sorted(AGENTS), 'Agent (registry name).')
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
# The config's defaults depend on --agent, --resume or --restore_path, so they are read from argv first.
config_flags.DEFINE_config_dict('config', cli.initial_config(sys.argv), 'Agent config (configs/<agent>.py).')


def main(_):
    if not FLAGS['verbosity'].present:  # absl.app defaults to INFO, and orbax logs every save at INFO.
        logging.set_verbosity(logging.WARNING)
    settings, explicit = cli.settings_from_flags(FLAGS)
    config = FLAGS.config
    if settings.distributed:  # Before JAX touches a device.
        initialize_distributed(settings.coordinator_address, settings.num_processes, settings.process_id)
    primary = jax.process_index() == 0  # The process that writes files and evaluates.
    try:
        cli.check_mode(settings)
        if settings.eval_only:
            sys.exit(session.evaluate_checkpoint(settings, explicit, config))
        settings, run, notes = session.resolve_settings(settings, explicit, config)
        mesh = session.training_mesh(settings, config)
    except (cli.UsageError, FileNotFoundError) as e:
        cli.fail(str(e))

    try:
        env, train, _ = load_env_and_datasets(settings.env_name, settings.dataset_dir,
                                              exorl_algo=settings.exorl_algo)
    except (CorruptDatasetError, DatasetUnavailableError, UnknownDatasetError) as e:
        cli.fail(str(e))
    env.close()  # Evaluation makes its own environments.
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(train)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(settings.seed), sampling))
    agent = session.create_agent(settings, example, config)

    run = run or session.new_run_dir(settings)
    checkpointer = Checkpointer(run.checkpoint_dir)
    sampler_rng, step = session.initial_sampler_rng(settings.seed, settings.num_seeds), 0
    if checkpointer.latest_step() is not None:
        agent, sampler_rng, step = checkpointer.restore(agent)
        print(f'Resuming {run.path} from step {step}.')
    if primary:
        run.record_session(cli.recorded(settings), cli.config_to_dict(config), step, notes)

    schedule = Schedule(settings.train_steps, settings.log_interval, settings.eval_interval, settings.save_interval)
    evaluator = session.make_evaluator(settings, explicit, agent.guided, run.file(RunDir.VIDEOS)) if primary else None
    trainer = ChunkedTrainer(sampling, data, schedule.chunk, num_seeds=settings.num_seeds, mesh=mesh)
    agent, sampler_rng = trainer.place(agent), trainer.place(sampler_rng)
    loop = TrainLoop(run, checkpointer, trainer, schedule, evaluator, session.checkpoint_meta(settings, config),
                     writes=primary)
    try:
        status = loop(agent, sampler_rng, step)
    except KeyboardInterrupt:  # A second Ctrl-C: abort without saving.
        print(f'Aborted. The last checkpoint is in {checkpointer.directory}.', file=sys.stderr)
        status = 130
    finally:
        checkpointer.close()
        if evaluator is not None:
            evaluator.close()  # Stops the environment worker processes.
    sys.exit(status)


if __name__ == '__main__':
    app.run(main)
