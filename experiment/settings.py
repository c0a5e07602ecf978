"""main.py's settings and a run's saved settings and config.

Each flag is declared once, as a field of `Settings` with its default and help; `define_flags` defines the absl
flags from those fields, so a flag and its typed setting cannot drift apart. A run records its settings in
flags.json and its config in config.json (and every checkpoint carries the config); this module writes their
dictionaries and reads them back. `default_config` is the one place an agent's default config is built.
"""
import dataclasses
import typing
from typing import Any, Dict, List, Optional, Set, Tuple

import ml_collections
from absl import flags

from agents import AGENTS, get_config
from datasets.families import family_of
from evaluation.rollout import EVAL_MODES
from experiment.checkpoints import locate_checkpoint
from experiment.run_dir import RunDir

DEFAULT_AGENT = 'cfgrl'
# What a run is: fixed for its lifetime (changing one on --resume is refused unless --force).
IDENTITY_FLAGS = ('agent', 'env_name', 'seed', 'num_seeds', 'dataset_dir', 'exorl_algo')
# How this process runs, not what the run is: never recorded in flags.json nor taken from it.
SESSION_FLAGS = ('resume', 'force', 'restore_path', 'eval_only', 'distributed', 'coordinator_address',
                 'num_processes', 'process_id', 'eval_device')
# How a run is evaluated: --eval_only takes the run's values of those not given.
EVAL_FLAGS = ('eval_episodes', 'eval_tasks', 'eval_guidance', 'eval_max_steps')


class UsageError(ValueError):
    """A bad command line; main prints the message and exits with status 2 before doing any work."""


def _flag(default: Any, help: str, enum: Tuple[str, ...] = ()) -> Any:
    metadata = {'help': help, 'enum': enum}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Settings:
    """main.py's flags (the config excluded), typed. Field order is flags.json's."""

    agent: str = _flag(DEFAULT_AGENT, f'Agent (registry name): {", ".join(sorted(AGENTS))}.')
    env_name: str = _flag('pointmaze-medium-navigate-v0', 'OGBench dataset name.')
    dataset_dir: Optional[str] = _flag(None, 'Folder of the OGBench datasets (default: ~/.ogbench/data); for exorl-* '
                                       'tasks, the ExORL root holding <domain>/<algo>/buffer/ (default: '
                                       '~/.exorl/data).')
    exorl_algo: str = _flag('rnd', 'exorl-* tasks: the exploration data set (ExORL algorithm folder).')
    seed: int = _flag(0, 'Seed of the agent, the batch sampler and the evaluation episodes.')
    num_seeds: int = _flag(1, 'Train seeds seed, seed+1, ... together in this process (jax.vmap), evaluate them in the '
                           'same rollouts, and report each seed and their mean ± std.')
    train_steps: int = _flag(1_000_000, 'Gradient steps.')
    log_interval: int = _flag(5_000, 'Steps between training logs (TensorBoard, progress bar).')
    eval_interval: int = _flag(100_000, 'Steps between evaluations (and at the last step).')
    save_interval: int = _flag(100_000, 'Steps between checkpoints (and at the last step).')
    eval_episodes: int = _flag(20, 'Episodes per task and guidance weight (0: no evaluation).')
    eval_tasks: List[str] = _flag(['1', '2', '3', '4', '5'], 'OGBench evaluation task ids.')
    eval_guidance: List[str] = _flag(['0', '1', '1.5', '2', '3'], 'Guidance weights to evaluate (guided agents; '
                                     "others report one entry keyed 'none').")
    eval_mode: str = _flag('lockstep', 'lockstep: one batched policy call per env step; sequential: one episode at '
                           'a time (slow reference).', enum=EVAL_MODES)
    eval_workers: Optional[int] = _flag(None, 'Processes stepping the lockstep environments (0: this process; '
                                        'default: one per CPU core).')
    eval_max_envs: Optional[int] = _flag(None, 'Lockstep environments at most (default: as many as half the free '
                                         'memory holds); finished episodes hand their environment to the next one.')
    eval_max_steps: Optional[int] = _flag(None, "Debugging aid: shorter episode limit than OGBench's.")
    video_episodes: int = _flag(0, 'Record the first N episodes of each task at each weight (GIF).')
    save_dir: str = _flag('runs', 'Runs go to <save_dir>/<env_name>/<agent>/<time>_s<seed>/.')
    resume: Optional[str] = _flag(None, 'Run directory to continue (its saved flags and config are the defaults).')
    force: bool = _flag(False, 'Resume (or evaluate) despite differing agent/env/seed/config.')
    restore_path: Optional[str] = _flag(None, 'With --eval_only: a run directory or a checkpoint folder.')
    eval_only: bool = _flag(False, 'Evaluate the checkpoint at --restore_path without training.')
    distributed: bool = _flag(False, 'Multi-host: join a jax.distributed job first (the cluster is detected, e.g. '
                              'SLURM, or given by the next three flags); training is data parallel over every '
                              "process's devices and process 0 alone writes the run directory and evaluates.")
    coordinator_address: Optional[str] = _flag(None, 'With --distributed: host:port of process 0.')
    num_processes: Optional[int] = _flag(None, 'With --distributed: how many processes the job has.')
    process_id: Optional[int] = _flag(None, "With --distributed: this process's index (0 writes and evaluates).")
    eval_device: Optional[str] = _flag(None, 'Where the policy runs during evaluation: a JAX platform (cpu, gpu, '
                                       'tpu); default: the accelerator when there is one, else the CPU.')

    @property
    def seeds(self) -> List[int]:
        """`seed`, or seed, seed + 1, ... with --num_seeds."""
        return list(range(self.seed, self.seed + self.num_seeds))


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one absl flag per field of Settings (the config flag is defined at parsing, cli.parse_command_line)."""
    hints = typing.get_type_hints(Settings)
    for field in dataclasses.fields(Settings):
        kind, default, help = hints[field.name], _default(field), field.metadata['help']
        if field.metadata['enum']:
            flags.DEFINE_enum(field.name, default, field.metadata['enum'], help, flag_values=flag_values)
        elif kind is bool:
            flags.DEFINE_bool(field.name, default, help, flag_values=flag_values)
        elif kind in (int, Optional[int]):
            flags.DEFINE_integer(field.name, default, help, flag_values=flag_values)
        elif kind in (str, Optional[str]):
            flags.DEFINE_string(field.name, default, help, flag_values=flag_values)
        elif kind == List[str]:
            flags.DEFINE_list(field.name, default, help, flag_values=flag_values)
        else:
            raise TypeError(f'Settings.{field.name}: no absl flag for type {kind}.')


def _default(field: dataclasses.Field) -> Any:
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> Tuple[Settings, Set[str]]:
    """(the settings, the names of the flags given on the command line)."""
    names = [field.name for field in dataclasses.fields(Settings)]
    return (Settings(**{name: flag_values[name].value for name in names}),
            {name for name in names if flag_values[name].present})


def recorded(settings: Settings) -> Dict[str, Any]:
    """The settings a run records in flags.json (session flags excluded)."""
    return {k: v for k, v in dataclasses.asdict(settings).items() if k not in SESSION_FLAGS}


# ------------------------------------------------------------------------------------------------------------------
# Configs: defaults, and as JSON (config.json, checkpoint meta).
# ------------------------------------------------------------------------------------------------------------------
def default_config(agent: str, env_name: Optional[str] = None) -> ml_collections.ConfigDict:
    """A fresh default config of `agent`; with `env_name`, plus the changes its environment family implies for
    that agent (family_overrides)."""
    config = get_config(agent)
    config.update(family_overrides(agent, env_name))
    return config


def family_overrides(agent: str, env_name: Optional[str]) -> Dict[str, Any]:
    """The config changes the family of `env_name` implies for `agent` (e.g. AWR on ExORL); {} without a name."""
    return dict(family_of(env_name).config_overrides.get(agent, {})) if env_name else {}


def config_to_dict(config: ml_collections.ConfigDict) -> Dict[str, Any]:
    """A flat JSON-able dict of the config (tuples become lists)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()}


def config_from_dict(values: Dict[str, Any]) -> ml_collections.ConfigDict:
    """The config saved as `values`, typed as its agent's defaults (JSON lists back to tuples)."""
    config = default_config(values.get('agent_name', ''))
    unknown = sorted(set(values) - set(config.keys()))
    if unknown:
        raise UsageError(f'the saved config has keys unknown to agent {config.agent_name!r}: {unknown} '
                         '(saved by another version of the code?).')
    for key, value in values.items():
        config[key] = tuple(value) if isinstance(config[key], tuple) else value
    return config


def saved_config(resume: Optional[str], restore_path: Optional[str],
                 eval_only: bool) -> Optional[ml_collections.ConfigDict]:
    """The config a resumed run or an evaluated checkpoint was trained with; None for a new run."""
    if resume:
        return config_from_dict(RunDir.open(resume).read_json(RunDir.CONFIG))
    if restore_path and eval_only:
        checkpointer, step, _ = locate_checkpoint(restore_path)
        return config_from_dict(checkpointer.read_meta(step)['config'])
    return None
