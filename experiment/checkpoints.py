"""Orbax checkpoints holding everything needed to continue a run bit for bit on the same machine.

A checkpoint `<run>/checkpoints/<step>/` has two items: `state` (the agent's parameters, optimiser state and RNG as
flax's state dict, plus the sampler's RNG; for --num_seeds > 1 every array has a leading seed axis) and `meta`
(JSON: step, agent, env_name, seed and the agent's config, so that a checkpoint alone can be re-evaluated). Saves
are synchronous: orbax writes into a temporary folder and renames it when complete, so a run killed mid-save (even
with SIGKILL) leaves only complete checkpoints behind, and the next manager ignores and cleans up the leftovers.
"""
import os
from typing import Any, Dict, Optional, Tuple

import flax
import jax
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINT_DIR = 'checkpoints'  # Inside a run directory.
MAX_TO_KEEP = 3


class CheckpointMismatch(ValueError):
    """The checkpoint's arrays do not have the shapes the current config gives the agent."""


class Checkpointer:
    """Saves and restores (agent, sampler rng, step) in `directory`, keeping the last `max_to_keep`."""

    def __init__(self, directory: str, max_to_keep: int = MAX_TO_KEEP, create: bool = True):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                               enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> Optional[int]:
        return self._manager.latest_step()

    def save(self, step: int, agent: Any, sampler_rng: jax.Array, meta: Dict[str, Any]) -> bool:
        """Saves a checkpoint at `step` unless one exists already (a final save right after a periodic one)."""
        if step in self._manager.all_steps():
            return False
        state = {'agent': flax.serialization.to_state_dict(agent), 'sampler_rng': sampler_rng}
        self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                         meta=ocp.args.JsonSave({**meta, 'step': int(step)})))
        self._manager.wait_until_finished()
        return True

    def restore(self, template_agent: Any, step: Optional[int] = None) -> Tuple[Any, jax.Array, int]:
        """(agent, sampler rng, step) of checkpoint `step` (default: the latest). `template_agent` is a freshly
        created agent of the same config: it supplies the structure, dtypes and devices of the arrays."""
        step = self.resolve_step(step)
        # The sampler's key has the layout of the agent's own key (one per seed for stacked agents).
        template = {'agent': flax.serialization.to_state_dict(template_agent),
                    'sampler_rng': np.zeros_like(template_agent.rng)}
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        self._check_shapes(step, abstract)
        state = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))['state']
        agent = flax.serialization.from_state_dict(template_agent, state['agent'])
        updates = np.unique(np.asarray(agent.network.step))  # One entry per seed for stacked agents.
        if updates.tolist() != [step]:
            raise RuntimeError(f'checkpoint {self.directory}/{step} holds an agent at update(s) {updates.tolist()}')
        return agent, state['sampler_rng'], step

    def _check_shapes(self, step: int, abstract: Any) -> None:
        saved = ocp.StandardCheckpointer().metadata(os.path.join(self.directory, str(step), 'state')).item_metadata
        saved = {jax.tree_util.keystr(p): tuple(m.shape) for p, m in jax.tree_util.tree_leaves_with_path(saved.tree)}
        wanted = {jax.tree_util.keystr(p): tuple(x.shape) for p, x in jax.tree_util.tree_leaves_with_path(abstract)}
        diffs = [f'{key}: saved {saved.get(key, "absent")}, now {shape}' for key, shape in wanted.items()
                 if saved.get(key) != shape]
        diffs += [f'{key}: saved {shape}, now absent' for key, shape in saved.items() if key not in wanted]
        if diffs:
            raise CheckpointMismatch(f'checkpoint {self.directory}/{step} does not fit the current config '
                                     f'({len(diffs)} arrays differ, e.g. {"; ".join(diffs[:3])}): a config change '
                                     'that alters array shapes cannot be resumed, even with --force.')

    def read_meta(self, step: Optional[int] = None) -> Dict[str, Any]:
        step = self.resolve_step(step)
        return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']

    def array_shapes(self, step: Optional[int] = None) -> Dict[str, Tuple[int, ...]]:
        """{key path: shape} of every array of checkpoint `step` (default: the latest), read without the arrays."""
        path = os.path.join(self.directory, str(self.resolve_step(step)), 'state')
        tree = ocp.StandardCheckpointer().metadata(path).item_metadata.tree
        return {jax.tree_util.keystr(key): tuple(leaf.shape) for key, leaf in jax.tree_util.tree_leaves_with_path(tree)}

    def resolve_step(self, step: Optional[int]) -> int:
        step = self.latest_step() if step is None else step
        if step is None or step not in self._manager.all_steps():
            raise FileNotFoundError(f'no checkpoint {"" if step is None else step} in {self.directory} '
                                    f'(available: {list(self._manager.all_steps()) or "none"}).')
        return step

    def close(self) -> None:
        self._manager.close()


def locate_checkpoint(path: str) -> Tuple[Checkpointer, int, Optional[str]]:
    """Resolves a run directory, its checkpoints folder or one `checkpoints/<step>` folder to
    (checkpointer, step, run directory or None if the checkpoint lives outside a run directory)."""
    path = os.path.abspath(os.path.expanduser(path))
    step = None
    if os.path.isdir(os.path.join(path, CHECKPOINT_DIR)):
        path = os.path.join(path, CHECKPOINT_DIR)
    elif os.path.basename(path).isdigit() and os.path.isdir(path):
        path, step = os.path.dirname(path), int(os.path.basename(path))
    if not os.path.isdir(path):
        raise FileNotFoundError(f'no checkpoint at {path}: expected a run directory, its {CHECKPOINT_DIR}/ folder '
                                f'or one {CHECKPOINT_DIR}/<step> folder.')
    checkpointer = Checkpointer(path, create=False)
    step = checkpointer.resolve_step(step)
    parent = os.path.dirname(path)
    run_dir = parent if os.path.basename(path) == CHECKPOINT_DIR and os.path.exists(
        os.path.join(parent, 'config.json')) else None
    return checkpointer, step, run_dir
