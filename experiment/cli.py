"""main.py's command line: the config flag's defaults, validation of every flag, and the rules of resuming.

The config flag (`--config.<key>=value`) is defined with defaults that depend on the command line, so they are read
from argv before absl parses it:
- a new run: the registered defaults of `--agent`;
- `--resume=DIR`: the config saved in DIR/config.json (an override on top is a difference, refused unless --force);
- `--eval_only --restore_path=P`: the config stored in the checkpoint (overrides apply, e.g. flow_steps).
Tuple values are read by ml_collections with `ast.literal_eval`: `--config.actor_hidden_dims=256,256,256` (or
`'(256, 256, 256)'`) is the tuple (256, 256, 256); a single width is `--config.actor_hidden_dims=256`.
Unknown agents and config keys fail here, before absl parses anything, naming the valid choices.
"""
import re
import sys
import types
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import ml_collections
from absl import flags, logging

DEFAULT_AGENT = 'cfgrl'
NUM_TASKS = 5  # OGBench defines five evaluation tasks per environment.
# What a run is: fixed for its lifetime (changing one on --resume is refused unless --force).
IDENTITY_FLAGS = ('agent', 'env_name', 'seed', 'num_seeds', 'dataset_dir', 'exorl_algo')
# How this process runs, not what the run is: never recorded in flags.json nor taken from it.
SESSION_FLAGS = ('resume', 'force', 'restore_path', 'eval_only', 'distributed', 'coordinator_address',
                 'num_processes', 'process_id')

Settings = types.SimpleNamespace  # main.py's flag values (config excluded), by flag name.


class UsageError(ValueError):
    """A bad command line; main prints the message and exits with status 2 before doing any work."""


# ------------------------------------------------------------------------------------------------------------------
# Reading argv before absl does (the config flag's defaults depend on it).
# ------------------------------------------------------------------------------------------------------------------
def peek_flag(argv: Sequence[str], name: str) -> Optional[str]:
    """The value of `--name=v` / `--name v` in argv (the last one wins, as in absl), or None."""
    value = None
    for i, arg in enumerate(argv[1:], start=1):
        for dashes in ('--', '-'):
            if arg.startswith(f'{dashes}{name}='):
                value = arg.split('=', 1)[1]
            elif arg == f'{dashes}{name}' and i + 1 < len(argv):
                value = argv[i + 1]
    return value


def peek_bool(argv: Sequence[str], name: str) -> bool:
    value = False
    for arg in argv[1:]:
        flag = arg.lstrip('-')
        if flag == name or flag.lower() in (f'{name}=true', f'{name}=1'):
            value = True
        elif flag == f'no{name}' or flag.lower() in (f'{name}=false', f'{name}=0'):
            value = False
    return value


def initial_config(argv: Sequence[str]) -> ml_collections.ConfigDict:
    """The config flag's defaults for this command line (module docstring). Exits with the reason on an unknown
    agent, an unknown config key or a missing run / checkpoint, before any work starts."""
    try:
        config = _base_config(argv)
        _check_override_keys(argv, config)
    except (ValueError, FileNotFoundError) as e:  # UsageError, the registry's ValueError, a missing run.
        fail(str(e))
    return config


def fail(message: str) -> None:
    """Exits with a one-line reason and status 2 (a bad command line), without a traceback."""
    print(f'error: {message}', file=sys.stderr)
    sys.exit(2)


def _base_config(argv: Sequence[str]) -> ml_collections.ConfigDict:
    from agents import get_config

    resume = peek_flag(argv, 'resume')
    if resume:
        from experiment.run_dir import RunDir

        return config_from_dict(RunDir.open(resume).read_json(RunDir.CONFIG))
    restore = peek_flag(argv, 'restore_path')
    if restore and peek_bool(argv, 'eval_only'):
        from experiment.checkpoints import locate_checkpoint

        checkpointer, step, _ = locate_checkpoint(restore)
        return config_from_dict(checkpointer.read_meta(step)['config'])
    from configs.exorl import apply_env_overrides

    return apply_env_overrides(get_config(peek_flag(argv, 'agent') or DEFAULT_AGENT), peek_flag(argv, 'env_name'))


def _check_override_keys(argv: Sequence[str], config: ml_collections.ConfigDict) -> None:
    for arg in argv[1:]:
        match = re.match(r'--?config\.([^=\s]+)', arg)
        if match and match.group(1) not in config_to_dict(config):
            raise UsageError(f'Unknown config key {match.group(1)!r} for agent {config.agent_name!r}; valid keys: '
                             f'{", ".join(sorted(config_to_dict(config)))}.')


# ------------------------------------------------------------------------------------------------------------------
# Configs as JSON (config.json, checkpoint meta) and their differences.
# ------------------------------------------------------------------------------------------------------------------
def config_to_dict(config: ml_collections.ConfigDict) -> Dict[str, Any]:
    """A flat JSON-able dict of the config (tuples become lists)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()}


def config_from_dict(values: Dict[str, Any]) -> ml_collections.ConfigDict:
    """The config saved as `values`, typed as its agent's defaults (JSON lists back to tuples)."""
    from agents import get_config

    config = get_config(values.get('agent_name', ''))
    unknown = sorted(set(values) - set(config.keys()))
    if unknown:
        raise UsageError(f'the saved config has keys unknown to agent {config.agent_name!r}: {unknown} '
                         '(saved by another version of the code?).')
    for key, value in values.items():
        config[key] = tuple(value) if isinstance(config[key], tuple) else value
    return config


def config_differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """'config.<key>: old -> new' for each key whose value differs. A key the saved config (`old`) lacks but whose
    new value is the agent's default is no difference: it was added to the code after that run was saved, with the
    behaviour the run had."""
    from agents import get_config

    try:
        defaults = config_to_dict(get_config(new.get('agent_name', old.get('agent_name', ''))))
    except ValueError:  # An unknown agent: no defaults to compare with.
        defaults = {}
    return [f'config.{key}: {old.get(key, "<absent>")} -> {new.get(key, "<absent>")}'
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)
            and not (key not in old and key in defaults and new.get(key) == defaults[key])]


def check_config(config: ml_collections.ConfigDict, agent: str) -> None:
    """Types the flag parser cannot check: tuple elements (`--config.actor_hidden_dims=a,b` parses as ('a,b',))
    and the agent the config belongs to."""
    from agents import get_config

    if config.agent_name != agent:
        raise UsageError(f'config.agent_name is {config.agent_name!r} but --agent is {agent!r}.')
    for key, default in get_config(agent).items():
        value = config[key]
        if isinstance(default, tuple) and default:
            kind = type(default[0])
            if not value or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
                raise UsageError(f'config.{key} must be a non-empty tuple of {kind.__name__}, e.g. '
                                 f'--config.{key}={",".join(map(str, default))}; got {value!r}.')


# ------------------------------------------------------------------------------------------------------------------
# main.py's flags.
# ------------------------------------------------------------------------------------------------------------------
def settings_from_flags(flag_values: flags.FlagValues) -> Tuple[Settings, Set[str]]:
    """(every flag main.py defines except the config, the names of those given on the command line)."""
    defined = [f for f in flag_values.get_flags_for_module('__main__') if f.name != 'config']
    settings = Settings(**{f.name: f.value for f in defined})
    return settings, {f.name for f in defined if f.present}


def recorded(settings: Settings) -> Dict[str, Any]:
    """The settings a run records in flags.json (session flags excluded)."""
    return {k: v for k, v in vars(settings).items() if k not in SESSION_FLAGS}


def merge_saved(settings: Settings, explicit: Set[str], saved: Dict[str, Any]) -> Tuple[Settings, List[str]]:
    """Settings of a continued run: the saved value of every flag not given on this command line.

    Returns (merged settings, the identity flags given with a different value: refused unless --force)."""
    merged = {k: (v if k in explicit or k not in saved else saved[k]) for k, v in vars(settings).items()}
    changed = [f'--{k}: {saved[k]} -> {merged[k]}' for k in IDENTITY_FLAGS if k in saved and saved[k] != merged[k]]
    saved_seeds = saved.get('num_seeds', 1)  # Runs from before --num_seeds had one seed.
    if merged.get('num_seeds', 1) != saved_seeds:  # The checkpoint's arrays have one row per seed: not forceable.
        raise UsageError(f'--num_seeds={merged.get("num_seeds", 1)} cannot differ from the {saved_seeds} seed(s) '
                         'the run or checkpoint was trained with.')
    return Settings(**merged), changed


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
    from datasets.loading import check_dataset_name

    try:
        check_dataset_name(settings.env_name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    for name in ('log_interval', 'eval_interval', 'save_interval'):
        if getattr(settings, name) < 1:
            raise UsageError(f'--{name} must be positive, got {getattr(settings, name)}.')
    if settings.num_seeds < 1:
        raise UsageError(f'--num_seeds must be positive, got {settings.num_seeds}.')
    for name in ('train_steps', 'eval_episodes', 'video_episodes'):
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
    return weights
