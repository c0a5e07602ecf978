"""Orbax checkpoints holding everything needed to continue a run bit for bit on the same machine.

A checkpoint `<run>/checkpoints/<step>/` has three items: `state` (the agent's parameters, optimiser state and RNG
as flax's state dict, plus the sampler's RNG; for --num_seeds > 1 every array has a leading seed axis), `meta`
(JSON: step, agent, env_name, seed and the agent's config, so that a checkpoint alone can be re-evaluated) and
`digest` (JSON: the SHA-256, shape and dtype of every array, computed on the host from the arrays written, and the
SHA-256 of `meta`; once the checkpoint is committed, also `files.json`, the SHA-256 of each file of `state`, which
names the file that damage is in). Saves are synchronous: orbax writes into a temporary folder and renames it when
complete, so a run killed mid-save (even with SIGKILL) leaves only complete checkpoints behind, and the next manager
ignores and cleans up the leftovers.

Integrity: a restore verifies the digest. A checkpoint that cannot be read or does not match its digest raises
CheckpointDamaged naming the step and the file; `--resume` and `--eval_only` of a run take the newest intact
checkpoint instead (`newest_intact`). A damaged checkpoint is never deleted or overwritten: a resumed run renames
it `<step>.damaged` (a name orbax ignores), so that the step can be saved anew. Checkpoints saved before digests
existed load with a note.
"""
import hashlib
import json
import logging as std_logging
import os
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

import flax
import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

CHECKPOINT_DIR = 'checkpoints'  # Inside a run directory.
MAX_TO_KEEP = 3
DIGEST_ITEM = 'digest'  # The item holding the arrays' digests.
DAMAGED_SUFFIX = '.damaged'  # A damaged checkpoint set aside by a resumed run: `<step>.damaged`.
FILES = 'files.json'  # In the digest item: {file of `state`: SHA-256}, to name the file damage is in.


class CheckpointMismatch(ValueError):
    """The checkpoint's arrays do not have the shapes the current config gives the agent."""


class CheckpointDamaged(ValueError):
    """A checkpoint that cannot be read, or whose arrays or meta do not match the digest saved with them."""

    def __init__(self, directory: str, step: int, where: str, reason: str, advice: str = ''):
        self.directory, self.step, self.where, self.reason = directory, step, where, reason
        super().__init__(f'checkpoint step {step} is damaged: {reason} ({where})' + (f'; {advice}' if advice else ''))


class _DropExpectedWarnings(std_logging.Filter):
    """Orbax warns that `_CHECKPOINT_METADATA` does not exist whenever one item's metadata is read on its own (it
    looks for the step's file in the item's folder), and that it failed to get the metadata of a damaged item:
    expected here (the damage is reported as CheckpointDamaged), and they would make every one-line error three."""

    EXPECTED = ('Metadata file does not exist', 'Failed to get item metadata')

    def filter(self, record: std_logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.EXPECTED)


UNREAD_ARRAY = 'Encountered error while reading array index'  # How orbax words each abandoned array read.


def _drop_unread_array_errors(previous):
    """An unreadable array makes orbax abandon the reads of the others, whose errors Python prints at exit as
    'Exception ignored in: <coroutine ...>' with a page of TensorStore spec each; the first is reported."""

    def hook(unraisable) -> None:
        if not str(unraisable.exc_value).startswith(UNREAD_ARRAY):
            previous(unraisable)

    return hook


class _AbandonedReads:
    """Once a damaged checkpoint's read is abandoned, TensorStore may still call back into orbax's closed event
    loop from its own threads, and each callback's 'Event loop is closed' is printed as a traceback (sys.excepthook).
    Those, and only after an abandoned read, are dropped."""

    happened = False

    @classmethod
    def hook(cls, previous):
        def excepthook(kind, value, tb) -> None:
            if not (cls.happened and isinstance(value, RuntimeError) and str(value) == 'Event loop is closed'):
                previous(kind, value, tb)

        return excepthook


class _DropUnreadArrayTasks(std_logging.Filter):
    """The same abandoned reads, when asyncio collects their tasks while its loop still runs: it logs 'Task
    exception was never retrieved' with the same page of spec."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        return not (record.exc_info and str(record.exc_info[1]).startswith(UNREAD_ARRAY))


std_logging.getLogger('absl').addFilter(_DropExpectedWarnings())
std_logging.getLogger('asyncio').addFilter(_DropUnreadArrayTasks())
sys.unraisablehook = _drop_unread_array_errors(sys.unraisablehook)
sys.excepthook = _AbandonedReads.hook(sys.excepthook)
_NOTED: set = set()  # (directory, step) of digest-less checkpoints already noted in this process.


def state_digest(state: Any) -> Dict[str, Dict[str, Any]]:
    """{key path: {sha256, shape, dtype}} of every array of `state`, from a host copy of its bytes. An array split
    over several processes (none is in this code base: parameters are replicated) gets sha256 None: not checked."""
    digest = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            host = np.asarray(leaf.addressable_data(0)) if leaf.is_fully_replicated else None
        else:
            host = np.asarray(jax.device_get(leaf))
        sha = None if host is None else hashlib.sha256(host.tobytes(order='C')).hexdigest()
        digest[jax.tree_util.keystr(path)] = {'sha256': sha, 'shape': list(np.shape(leaf)),
                                              'dtype': str(leaf.dtype if host is None else host.dtype)}
    return digest


def _restore_target(leaf: Any) -> jax.ShapeDtypeStruct:
    """Where a template leaf is read to: its own devices if this process holds them, else this process's first
    device. (A numpy leaf, such as the sampler key's template, would otherwise go to the job's device 0, which
    only process 0 of a multi-process job can address.)"""
    sharding = getattr(leaf, 'sharding', None)
    if sharding is None or not sharding.is_fully_addressable:
        sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)


def _json_sha256(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _first_line(exc: Any, limit: int = 160) -> str:
    text = ' '.join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Checkpointer:
    """Saves and restores (agent, sampler rng, step) in `directory`, keeping the last `max_to_keep`."""

    def __init__(self, directory: str, max_to_keep: int = MAX_TO_KEEP, create: bool = True):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                               enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> Optional[int]:
        return self._manager.latest_step()

    def all_steps(self) -> List[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, agent: Any, sampler_rng: jax.Array, meta: Dict[str, Any]) -> bool:
        """Saves a checkpoint at `step` unless one exists already (a final save right after a periodic one)."""
        if step in self._manager.all_steps():
            return False
        state = {'agent': flax.serialization.to_state_dict(agent), 'sampler_rng': sampler_rng}
        meta = {**meta, 'step': int(step)}
        digest = {'algorithm': 'sha256', 'arrays': state_digest(state), 'meta_sha256': _json_sha256(meta)}
        self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                         meta=ocp.args.JsonSave(meta),
                                                         **{DIGEST_ITEM: ocp.args.JsonSave(digest)}))
        self._manager.wait_until_finished()
        if jax.process_index() == 0:
            self._record_files(step)
        return True

    def _record_files(self, step: int) -> None:
        """Writes `digest/files.json`, the size and SHA-256 of every file of the committed `state` item, so that
        damage can be traced to the file it is in. Written after the commit (orbax names the data files itself);
        a checkpoint whose list is missing is still verified, array by array."""
        files = {}
        state_dir = self._path(step, 'state')
        for root, _, names in os.walk(state_dir):
            for name in sorted(names):
                path = os.path.join(root, name)
                with open(path, 'rb') as f:
                    files[os.path.relpath(path, state_dir)] = hashlib.sha256(f.read()).hexdigest()
        target = self._path(step, DIGEST_ITEM, FILES)
        try:
            with open(target + '.tmp', 'w') as f:
                json.dump(files, f, indent=0, sort_keys=True)
            os.replace(target + '.tmp', target)
        except BaseException:
            if os.path.exists(target + '.tmp'):
                os.remove(target + '.tmp')
            raise

    def _changed_file(self, step: int) -> Optional[str]:
        """The first file of `state` that differs from (or is missing in) `digest/files.json`, if it is known."""
        try:
            with open(self._path(step, DIGEST_ITEM, FILES)) as f:
                files = json.load(f)
        except (OSError, ValueError):
            return None
        state_dir = self._path(step, 'state')
        for name, sha in sorted(files.items(), key=lambda item: ('/' in item[0], item[0])):
            path = os.path.join(state_dir, name)
            try:
                with open(path, 'rb') as f:
                    if hashlib.sha256(f.read()).hexdigest() != sha:
                        return path
            except OSError:
                return path
        return None

    def _check_files(self, step: int) -> None:
        """Raises CheckpointDamaged if a file of `state` differs from the hash recorded when it was saved. Checked
        before any array is read: a read that fails midway leaves TensorStore threads printing tracebacks."""
        changed = self._changed_file(step)
        if changed is not None:
            raise CheckpointDamaged(self.directory, step, changed, 'the file differs from the one saved')

    def restore(self, template_agent: Any, step: Optional[int] = None) -> Tuple[Any, jax.Array, int]:
        """(agent, sampler rng, step) of checkpoint `step` (default: the latest), verified against its digest.
        `template_agent` is a freshly created agent of the same config: it supplies the structure, dtypes and
        devices of the arrays. Raises CheckpointDamaged (unreadable, or not matching its digest) or
        CheckpointMismatch (readable, but saved with other array shapes)."""
        step = self.resolve_step(step)
        # The sampler's key has the layout of the agent's own key (one per seed for stacked agents).
        template = {'agent': flax.serialization.to_state_dict(template_agent),
                    'sampler_rng': np.zeros_like(template_agent.rng)}
        abstract = jax.tree.map(_restore_target, template)
        digest = self.read_digest(step)
        self._check_shapes(step, abstract, digest)
        self._check_files(step)
        try:
            state = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract)))['state']
        except Exception as e:  # noqa: BLE001  (whatever orbax or tensorstore raise on unreadable data)
            _AbandonedReads.happened = True
            raise self._damaged(step, 'state', e) from None
        self._verify_arrays(step, state, digest)
        if jax.process_count() > 1:  # Host copies: the trainer places them on the job's mesh (`place`), which a
            state = jax.device_get(state)  # device array committed to one process's device cannot be moved to.
        agent = flax.serialization.from_state_dict(template_agent, state['agent'])
        updates = np.unique(np.asarray(agent.network.step))  # One entry per seed for stacked agents.
        if updates.tolist() != [step]:
            raise CheckpointDamaged(self.directory, step, self._path(step, 'state'),
                                    f'it holds an agent at update(s) {updates.tolist()}')
        return agent, state['sampler_rng'], step

    def verify(self, step: int) -> bool:
        """Reads checkpoint `step` whole (onto the CPU; no template needed) and checks it against its digest: True
        if verified, False if readable but without a digest (saved by an earlier version). Raises
        CheckpointDamaged."""
        digest = self.read_digest(step)
        self.read_meta(step)
        tree = self._saved_tree(step)
        if digest is not None:
            self._check_against_digest(step, tree, digest)
        self._check_files(step)
        cpu = jax.sharding.SingleDeviceSharding(jax.devices('cpu')[0])
        abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=cpu), tree)
        try:
            with ocp.StandardCheckpointer() as reader:
                state = reader.restore(self._path(step, 'state'), abstract)
        except Exception as e:  # noqa: BLE001
            _AbandonedReads.happened = True
            raise self._damaged(step, 'state', e) from None
        self._verify_arrays(step, state, digest)
        return digest is not None

    def newest_intact(self, template_agent: Any = None, report: Callable[[str], None] = _stderr,
                      set_aside: bool = False) -> Tuple[Optional[int], Any]:
        """(step, (agent, sampler rng, step) restored onto `template_agent`'s devices, or None without a template)
        of the newest checkpoint that reads and verifies, checking from the newest down; (None, None) if there is
        none at all. Each damaged one skipped is reported in one line and, with `set_aside`, renamed
        `<step>.damaged`. Raises CheckpointDamaged (the newest's) if every checkpoint is damaged, and
        CheckpointMismatch (not damage: another config) as restore does.

        In a multi-process job every process calls this and finds the same steps damaged (they read the same
        files); process 0 renames them once all have read, and all reload the list of steps after the rename."""
        damaged: List[CheckpointDamaged] = []
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                result = self.restore(template_agent, step) if template_agent is not None else self.verify(step)
            except CheckpointDamaged as e:
                damaged.append(e)
                continue
            aside = self._set_aside_everywhere([e.step for e in damaged]) if damaged and set_aside else {}
            if jax.process_index() == 0:
                for e in damaged:
                    kept = aside.get(e.step, os.path.join(self.directory, str(e.step)))
                    report(f'warning: {e}; skipped (kept as {kept}).')
            return step, (result if template_agent is not None else None)
        if damaged:
            first = damaged[0]
            others = ', '.join(str(e.step) for e in damaged[1:])
            raise CheckpointDamaged(first.directory, first.step, first.where, first.reason,
                                    'no other checkpoint is intact either'
                                    + (f' (steps {others} are damaged too)' if others else ''))
        return None, None

    def newest_verified_step(self) -> Optional[int]:
        """The newest checkpoint that reads and matches its digest (or, saved before digests, reads)."""
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                self.verify(step)
                return step
            except CheckpointDamaged:
                continue
        return None

    def _set_aside_everywhere(self, steps: List[int]) -> Dict[int, str]:
        """Sets damaged `steps` aside (process 0 renames, between barriers of every process) and reloads the list
        of checkpoints, so each step can be saved anew rather than skipped as existing. Returns step -> its new
        path on process 0 (empty on the others)."""
        multi = jax.process_count() > 1
        if multi:  # Nobody renames while another process may still be reading.
            multihost_utils.sync_global_devices('checkpoints: damaged ones read')
        aside = {step: self._set_aside(step) for step in steps} if jax.process_index() == 0 else {}
        if multi:
            multihost_utils.sync_global_devices('checkpoints: damaged ones set aside')
        self._manager.reload()
        return aside

    def _set_aside(self, step: int) -> str:
        """Renames damaged checkpoint `step` to `<step>.damaged` (or `.damaged-<k>`), out of orbax's sight: kept
        for inspection, never deleted, and the step can be saved anew."""
        source = os.path.join(self.directory, str(step))
        for k in range(1000):
            target = source + DAMAGED_SUFFIX + (f'-{k}' if k else '')
            if not os.path.exists(target):
                os.rename(source, target)
                return target
        return source

    def read_digest(self, step: int) -> Optional[Dict[str, Any]]:
        """The digest saved with checkpoint `step`; None (noted once) for one saved before digests existed."""
        path = self._path(step, DIGEST_ITEM, 'metadata')
        if not os.path.exists(path):
            if (self.directory, step) not in _NOTED:
                _NOTED.add((self.directory, step))
                _stderr(f'note: checkpoint step {step} in {self.directory} has no digest (saved by an earlier '
                        'version): it is read without verification.')
            return None
        try:
            with open(path, 'rb') as f:
                digest = json.loads(f.read().decode())
            if not isinstance(digest.get('arrays'), dict):
                raise ValueError('it lists no arrays')
            return digest
        except Exception as e:  # noqa: BLE001
            raise CheckpointDamaged(self.directory, step, path, f'unreadable digest ({_first_line(e)})') from None

    def _saved_tree(self, step: int) -> Any:
        """The saved arrays' metadata tree (shapes, dtypes), read from `state/_METADATA`."""
        path = self._path(step, 'state')
        try:
            tree = ocp.StandardCheckpointer().metadata(path).item_metadata.tree
            if not jax.tree_util.tree_leaves(tree):
                raise ValueError('it lists no arrays')
            return tree
        except Exception as e:  # noqa: BLE001
            reason = 'unreadable' if isinstance(e, AttributeError) else _first_line(e)
            raise CheckpointDamaged(self.directory, step, os.path.join(path, '_METADATA'),
                                    f'unreadable array metadata ({reason})') from None

    def _check_shapes(self, step: int, abstract: Any, digest: Optional[Dict[str, Any]] = None) -> None:
        tree = self._saved_tree(step)
        if digest is not None:  # Metadata disagreeing with the digest is damage, not another config.
            self._check_against_digest(step, tree, digest)
        saved = {jax.tree_util.keystr(p): tuple(m.shape) for p, m in jax.tree_util.tree_leaves_with_path(tree)}
        wanted = {jax.tree_util.keystr(p): tuple(x.shape) for p, x in jax.tree_util.tree_leaves_with_path(abstract)}
        diffs = [f'{key}: saved {saved.get(key, "absent")}, now {shape}' for key, shape in wanted.items()
                 if saved.get(key) != shape]
        diffs += [f'{key}: saved {shape}, now absent' for key, shape in saved.items() if key not in wanted]
        if diffs:
            raise CheckpointMismatch(f'checkpoint {self.directory}/{step} does not fit the current config '
                                     f'({len(diffs)} arrays differ, e.g. {"; ".join(diffs[:3])}): a config change '
                                     'that alters array shapes cannot be resumed, even with --force.')

    def _check_against_digest(self, step: int, tree: Any, digest: Dict[str, Any]) -> None:
        saved = {jax.tree_util.keystr(p): list(m.shape) for p, m in jax.tree_util.tree_leaves_with_path(tree)}
        recorded = {key: entry.get('shape') for key, entry in digest['arrays'].items()}
        differing = sorted(k for k in set(saved) | set(recorded) if saved.get(k) != recorded.get(k))
        if differing:
            key = differing[0]
            raise CheckpointDamaged(self.directory, step, self._path(step, 'state', '_METADATA'),
                                    f'array metadata disagrees with the digest ({key}: {saved.get(key, "absent")} '
                                    f'vs {recorded.get(key, "absent")})')

    def _verify_arrays(self, step: int, state: Any, digest: Optional[Dict[str, Any]]) -> None:
        if digest is None:
            return
        actual, recorded = state_digest(state), digest['arrays']
        for key in sorted(set(actual) | set(recorded)):
            if key in actual and key in recorded and None in (actual[key]['sha256'], recorded[key]['sha256']):
                continue  # Split over processes when saved or now: not checked.
            if actual.get(key, {}).get('sha256') != recorded.get(key, {}).get('sha256'):
                raise CheckpointDamaged(self.directory, step, self._changed_file(step) or self._path(step, 'state'),
                                        f'array {key} does not match its digest')

    def _damaged(self, step: int, item: str, exc: BaseException) -> CheckpointDamaged:
        """CheckpointDamaged for an error raised reading `item`, naming the file the error names, if it does."""
        while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
            exc = exc.__cause__ or exc.__context__  # The innermost error says what could not be read.
        text = re.sub(r' in OCDBT database at local file "[^"]*"', '', str(exc))
        return CheckpointDamaged(self.directory, step, self._changed_file(step) or self._path(step, item),
                                 f'unreadable ({_first_line(text)})')

    def _path(self, step: int, *parts: str) -> str:
        return os.path.join(self.directory, str(step), *parts)

    def read_meta(self, step: Optional[int] = None) -> Dict[str, Any]:
        step = self.resolve_step(step)
        path = self._path(step, 'meta', 'metadata')
        try:
            meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
            if not isinstance(meta, dict) or not {'agent', 'env_name', 'seed', 'config'} <= set(meta):
                raise ValueError('it does not describe a checkpoint')
        except Exception as e:  # noqa: BLE001
            raise CheckpointDamaged(self.directory, step, path, f'unreadable meta ({_first_line(e)})') from None
        digest = self.read_digest(step)
        if digest is not None and digest.get('meta_sha256') not in (None, _json_sha256(meta)):
            raise CheckpointDamaged(self.directory, step, path, 'meta does not match its digest')
        return meta

    def array_shapes(self, step: Optional[int] = None) -> Dict[str, Tuple[int, ...]]:
        """{key path: shape} of every array of checkpoint `step` (default: the latest), read without the arrays."""
        tree = self._saved_tree(self.resolve_step(step))
        return {jax.tree_util.keystr(key): tuple(leaf.shape) for key, leaf in jax.tree_util.tree_leaves_with_path(tree)}

    def resolve_step(self, step: Optional[int]) -> int:
        step = self.latest_step() if step is None else step
        if step is None or step not in self._manager.all_steps():
            raise FileNotFoundError(f'no checkpoint {"" if step is None else step} in {self.directory} '
                                    f'(available: {list(self._manager.all_steps()) or "none"}).')
        return step

    def close(self) -> None:
        self._manager.close()


_LOCATED: Dict[str, Tuple[str, int, Optional[str]]] = {}  # locate_checkpoint's answers, verified once a process.


def locate_checkpoint(path: str) -> Tuple[Checkpointer, int, Optional[str]]:
    """Resolves a run directory, its checkpoints folder or one `checkpoints/<step>` folder to
    (checkpointer, step, run directory or None if the checkpoint lives outside a run directory).

    The checkpoint is verified (read whole and checked against its digest). Given a step, a damaged one raises
    CheckpointDamaged; given a run or its checkpoints folder, the newest intact checkpoint is chosen, each damaged
    one skipped being reported in one line and kept as it is."""
    path = os.path.abspath(os.path.expanduser(path))
    if path in _LOCATED:
        directory, step, run_dir = _LOCATED[path]
        return Checkpointer(directory, create=False), step, run_dir
    step = None
    if os.path.isdir(os.path.join(path, CHECKPOINT_DIR)):
        directory = os.path.join(path, CHECKPOINT_DIR)
    elif os.path.basename(path).isdigit() and os.path.isdir(path):
        directory, step = os.path.dirname(path), int(os.path.basename(path))
    else:
        directory = path
    if not os.path.isdir(directory):
        raise FileNotFoundError(f'no checkpoint at {directory}: expected a run directory, its {CHECKPOINT_DIR}/ '
                                f'folder or one {CHECKPOINT_DIR}/<step> folder.')
    checkpointer = Checkpointer(directory, create=False)
    if step is None:
        latest = checkpointer.resolve_step(None)  # FileNotFoundError when there is none.
        step, _ = checkpointer.newest_intact()
        if step != latest:
            print(f'Using step {step}, the newest intact checkpoint in {directory}.', flush=True)
    else:
        checkpointer.resolve_step(step)
        try:
            checkpointer.verify(step)
        except CheckpointDamaged as e:
            others = [s for s in checkpointer.all_steps() if s != step]
            raise CheckpointDamaged(e.directory, e.step, e.where, e.reason,
                                    'it is kept as it is; other checkpoints: '
                                    f'{", ".join(map(str, others)) or "none"}') from None
    parent = os.path.dirname(directory)
    run_dir = parent if os.path.basename(directory) == CHECKPOINT_DIR and os.path.exists(
        os.path.join(parent, 'config.json')) else None
    _LOCATED[path] = (directory, step, run_dir)
    return checkpointer, step, run_dir
