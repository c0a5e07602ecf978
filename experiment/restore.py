"""Continuing a run (--resume) and evaluating a checkpoint (--eval_only): what was saved, how this command line
merges with it (a changed agent, environment, seed, dataset or config is refused unless --force) and which
checkpoint is meant."""
import dataclasses
import os
from typing import Any, Dict, List, Optional, Set, Tuple

import ml_collections

from experiment.checkpoints import Checkpointer, locate_checkpoint
from experiment.run_dir import RunDir
from experiment.settings import (
    EVAL_FLAGS,
    IDENTITY_FLAGS,
    Settings,
    UsageError,
    config_to_dict,
    default_config,
)


def resume(settings: Settings, explicit: Set[str],
           config: ml_collections.ConfigDict) -> Tuple[Settings, RunDir, List[str]]:
    """(settings, run directory, notes for meta.json) of --resume: flags not given take the run's saved values; a
    changed identity flag or config value is refused, naming each difference, unless --force."""
    run = RunDir.open(settings.resume)
    settings, changes = merge_saved(settings, explicit, run.read_json(RunDir.FLAGS))
    if 'dataset_dir' not in explicit:
        check_relative_dataset_dir(run, settings.dataset_dir)
    changes += config_differences(run.read_json(RunDir.CONFIG), config_to_dict(config))
    if changes and not settings.force:
        raise UsageError(f'refusing to resume {run.path} with different settings: {"; ".join(changes)}. '
                             'Pass --force to resume anyway.')
    return settings, run, [f'forced change on resume: {c}' for c in changes]


def check_relative_dataset_dir(run: RunDir, dataset_dir: Optional[str]) -> None:
    """UsageError if the run's saved --dataset_dir is relative and this command runs in another folder than the
    run started in: the data would be looked for (and, when missing, regenerated) somewhere else. Runs saved before
    the folder was recorded are not checked."""
    if not dataset_dir or os.path.isabs(os.path.expanduser(dataset_dir)):
        return
    sessions = run.read_json(RunDir.META).get('sessions', []) if os.path.isfile(run.file(RunDir.META)) else []
    started_in = next((s['cwd'] for s in sessions if 'cwd' in s), None)
    if started_in and os.path.realpath(started_in) != os.path.realpath(os.getcwd()):
        raise UsageError(f'{run.path} was started in {started_in} with the relative --dataset_dir={dataset_dir}; '
                         f'resume it from that folder (cd {started_in}), so that it reads the same data.')


def eval_only(settings: Settings, explicit: Set[str], config: ml_collections.ConfigDict
              ) -> Tuple[Settings, Checkpointer, int, Optional[str], List[str]]:
    """(settings, checkpointer, step, run directory or None, notes) of --eval_only: agent, environment and seed
    default to the checkpoint's, the evaluation flags not given (EVAL_FLAGS) to its run's; config overrides
    apply (e.g. another flow_steps) and are recorded."""
    checkpointer, step, run_path = locate_checkpoint(settings.restore_path)
    meta = checkpointer.read_meta(step)
    run_flags = RunDir(run_path).read_json(RunDir.FLAGS) if run_path and os.path.isfile(
        os.path.join(run_path, RunDir.FLAGS)) else {}
    settings, changes = merge_saved(settings, explicit, {
        **{k: v for k, v in run_flags.items() if k in EVAL_FLAGS}, **meta})
    source = "the run's flags.json" if run_flags else "main.py's defaults"
    print('Evaluating with ' + ' '.join(f'--{k}={_flag_text(getattr(settings, k))}' for k in EVAL_FLAGS)
          + f' (not given: from {source}).')
    if changes and not settings.force:
        raise UsageError(f'the checkpoint was trained with other settings: {"; ".join(changes)}. '
                             'Pass --force to evaluate it anyway.')
    notes = [f'restored from {checkpointer.directory}/{step}']
    notes += [f'config override: {c}' for c in config_differences(meta['config'], config_to_dict(config))]
    return settings, checkpointer, step, run_path, notes


def _flag_text(value) -> str:
    return ','.join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def merge_saved(settings: Settings, explicit: Set[str],
                saved: Dict[str, Any]) -> Tuple[Settings, List[str]]:
    """Settings of a continued run: the saved value of every flag not given on this command line.

    Returns (merged settings, the identity flags given with a different value: refused unless --force)."""
    merged = {k: (v if k in explicit or k not in saved else saved[k])
              for k, v in dataclasses.asdict(settings).items()}
    changed = [f'--{k}: {saved[k]} -> {merged[k]}' for k in IDENTITY_FLAGS if k in saved and saved[k] != merged[k]]
    saved_seeds = saved.get('num_seeds', 1)  # Runs from before --num_seeds had one seed.
    if merged['num_seeds'] != saved_seeds:  # The checkpoint's arrays have one row per seed: not forceable.
        raise UsageError(f'--num_seeds={merged["num_seeds"]} cannot differ from the {saved_seeds} seed(s) '
                         'the run or checkpoint was trained with.')
    return Settings(**merged), changed


def config_differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """'config.<key>: old -> new' for each key whose value differs. A key the saved config (`old`) lacks but whose
    new value is the agent's default is no difference: it was added to the code after that run was saved, with the
    behaviour the run had."""
    try:
        defaults = config_to_dict(default_config(new.get('agent_name', old.get('agent_name', ''))))
    except ValueError:  # An unknown agent: no defaults to compare with.
        defaults = {}
    return [f'config.{key}: {old.get(key, "<absent>")} -> {new.get(key, "<absent>")}'
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)
            and not (key not in old and key in defaults and new.get(key) == defaults[key])]
