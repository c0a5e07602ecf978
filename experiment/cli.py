"""main.py's command line: parsing (the config flag's defaults) and validation, before any work.

The config flag's defaults depend on the other flags, so absl parses twice (`parse_command_line`, which also reads
--flagfile): first every flag but the config, then, with the config flag defined, everything. The defaults are
- a new run: the registered defaults of `--agent`, with the changes its environment family implies for it (AWR on
  ExORL; printed, and noted in meta.json);
- `--resume=DIR`: the config saved in DIR/config.json (an override on top is a difference, refused unless --force);
- `--eval_only --restore_path=P`: the config stored in the checkpoint (overrides apply, e.g. flow_steps).
Tuples are comma lists: `--config.actor_hidden_dims=256,256,256`; one width is `--config.actor_hidden_dims=256`.
"""
import math
import re
import sys
from typing import List, Optional, Sequence, Set, Tuple

import jax
import ml_collections
from absl import flags, logging
from ml_collections import config_flags

from configs.checks import ConfigValueError, check_values
from datasets.families import check_dataset_name
from experiment.settings import Settings, UsageError, config_to_dict, default_config, saved_config

NUM_TASKS = 5  # OGBench defines five evaluation tasks per environment.


def replace_repeated_tuple_overrides(flag_values: flags.FlagValues) -> None:
    """Makes a repeated tuple override (`--config.actor_hidden_dims=32,32 --config.actor_hidden_dims=64`) replace
    the earlier value, as every other flag does, instead of appending to it (ml_collections' multi-flag). Call it
    after defining the config flag, whose override flags are then defined."""
    for name in list(flag_values):
        flag = flag_values[name]
        if name.startswith('config.') and isinstance(flag, flags.MultiFlag):
            flag.parse = _replacing_parse(flag)


def _replacing_parse(flag: flags.MultiFlag):
    parse = flag.parse

    def replace(argument):
        flag.present = 0  # MultiFlag.parse extends the value when the flag is already present.
        parse(argument)

    return replace


def fail(message: str) -> None:
    """Exits with a one-line reason and status 2 (a bad command line), without a traceback."""
    print(f'error: {message}', file=sys.stderr)
    sys.exit(2)


# ------------------------------------------------------------------------------------------------------------------
# Parsing.
# ------------------------------------------------------------------------------------------------------------------
def parse_command_line(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> List[str]:
    """absl's `flags_parser` for main.py: defines the config flag with this command line's defaults, then parses.
    Unknown agents, config keys and flags, and a missing run or checkpoint, exit with the reason before any work."""
    try:
        rest = flag_values(argv, known_only=True)  # Every flag but --config.*; expands --flagfile.
        config = saved_config(flag_values.resume, flag_values.restore_path, flag_values.eval_only)
        if config is None:
            config = default_config(flag_values.agent, flag_values.env_name)
        _check_override_keys(rest, config)
        config_flags.DEFINE_config_dict('config', config, 'Agent config (configs/<agent>.py).',
                                        flag_values=flag_values)
        replace_repeated_tuple_overrides(flag_values)
        flag_values.unparse_flags()
        return flag_values(argv)
    except (flags.Error, ValueError, FileNotFoundError) as e:  # UsageError, the registry's ValueError, a missing run.
        fail(str(e))


def _check_override_keys(args: Sequence[str], config: ml_collections.ConfigDict) -> None:
    for arg in args[1:]:
        match = re.match(r'--?config\.([^=\s]+)', arg)
        if match and match.group(1) not in config_to_dict(config):
            raise UsageError(f'Unknown config key {match.group(1)!r} for agent {config.agent_name!r}; valid keys: '
                             f'{", ".join(sorted(config_to_dict(config)))}.')


def check_config(config: ml_collections.ConfigDict, agent: str) -> None:
    """Types the flag parser cannot check: tuple elements (`--config.actor_hidden_dims=a,b` parses as ('a,b',)),
    the agent the config belongs to and every key's valid range (configs/checks.py)."""
    if config.agent_name != agent:
        raise UsageError(f'config.agent_name is {config.agent_name!r} but --agent is {agent!r}.')
    if config.batch_size < 1:
        raise UsageError(f'config.batch_size must be positive, got {config.batch_size}.')
    for key, default in default_config(agent).items():
        value = config[key]
        if isinstance(default, tuple) and default:
            kind = type(default[0])
            if not value or not all(isinstance(v, kind) and not isinstance(v, bool) and not (kind is int and v < 1)
                                    for v in value):
                raise UsageError(f'config.{key} must be a non-empty tuple of {kind.__name__}'
                                 f'{" > 0" * (kind is int)}, e.g. --config.{key}={",".join(map(str, default))}; '
                                 f'got {value!r}.')
    try:  # Every key's valid range, declared once in configs/checks.py.
        check_values(config)
    except ConfigValueError as e:
        raise UsageError(str(e)) from None


# ------------------------------------------------------------------------------------------------------------------
# main.py's flags.
# ------------------------------------------------------------------------------------------------------------------
def check_mode(settings: Settings) -> None:
    """The flags choosing what this process does (train, resume, evaluate a checkpoint) are consistent."""
    if settings.eval_only and not settings.restore_path:
        raise UsageError('--eval_only needs --restore_path (a run directory or a checkpoint folder).')
    if settings.restore_path and not settings.eval_only:
        raise UsageError('--restore_path is only read with --eval_only; use --resume=RUN_DIR to continue a run.')
    if settings.eval_only and settings.resume:
        raise UsageError('--eval_only and --resume exclude each other.')
    if settings.distributed and settings.eval_only:
        raise UsageError('--distributed is for training; evaluate a checkpoint with one process.')


def validate(settings: Settings) -> None:
    """Every check that needs no data: names, intervals, task ids, guidance weights (UsageError otherwise)."""
    try:
        check_dataset_name(settings.env_name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    for name in ('log_interval', 'eval_interval', 'save_interval'):
        if getattr(settings, name) < 1:
            raise UsageError(f'--{name} must be positive, got {getattr(settings, name)}.')
    if settings.num_seeds < 1:
        raise UsageError(f'--num_seeds must be positive, got {settings.num_seeds}.')
    if settings.train_steps < 1:  # Zero steps would make a run directory with nothing in it.
        raise UsageError(f'--train_steps must be positive, got {settings.train_steps}.')
    for name in ('eval_episodes', 'video_episodes'):
        if getattr(settings, name) < 0:
            raise UsageError(f'--{name} must be non-negative, got {getattr(settings, name)}.')
    if settings.video_episodes > settings.eval_episodes:
        raise UsageError(f'--video_episodes={settings.video_episodes} exceeds '
                         f'--eval_episodes={settings.eval_episodes}.')
    if settings.eval_workers is not None and settings.eval_workers < 0:
        raise UsageError(f'--eval_workers must be non-negative, got {settings.eval_workers}.')
    if settings.eval_max_envs is not None and settings.eval_max_envs < 1:
        raise UsageError(f'--eval_max_envs must be positive, got {settings.eval_max_envs}.')
    if settings.eval_max_steps is not None and settings.eval_max_steps < 1:
        raise UsageError(f'--eval_max_steps must be positive, got {settings.eval_max_steps}.')
    if settings.eval_device is not None:
        try:
            jax.local_devices(backend=settings.eval_device)
        except RuntimeError:
            raise UsageError(f'--eval_device={settings.eval_device}: no such device here; this machine has '
                             f'{sorted({d.platform for d in jax.devices()} | {"cpu"})}.') from None
    task_ids(settings)
    guidance_weights(settings, guided=True)


def task_ids(settings: Settings) -> Tuple[int, ...]:
    try:
        ids = tuple(int(t) for t in settings.eval_tasks)
    except ValueError:
        raise UsageError(f'--eval_tasks must be task ids in 1..{NUM_TASKS}, got {settings.eval_tasks}.') from None
    if not ids or len(set(ids)) != len(ids) or not all(1 <= t <= NUM_TASKS for t in ids):
        raise UsageError(f'--eval_tasks must be distinct task ids in 1..{NUM_TASKS}, got {settings.eval_tasks}.')
    return ids


def guidance_weights(settings: Settings, guided: bool, explicit: Set[str] = frozenset()) -> Tuple[Optional[float], ...]:
    """The evaluated weights: --eval_guidance for guided agents, (None,) (one entry, 'none') otherwise."""
    if not guided:
        if 'eval_guidance' in explicit:
            logging.warning("--eval_guidance is ignored: this %s agent samples without guidance and reports one "
                            "entry, keyed 'none'.", settings.agent)
        return (None,)
    try:
        weights = tuple(float(w) for w in settings.eval_guidance)
    except ValueError:
        raise UsageError(f'--eval_guidance must be numbers, got {settings.eval_guidance}.') from None
    if not weights or len(set(weights)) != len(weights):
        raise UsageError(f'--eval_guidance must be distinct numbers, got {settings.eval_guidance}.')
    if not all(math.isfinite(w) for w in weights):
        raise UsageError(f'--eval_guidance must be finite numbers (guidance weights), got {settings.eval_guidance}.')
    return weights
