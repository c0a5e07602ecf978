"""A container that keeps several named modules under one parameter tree."""
from typing import Any, Dict

import flax.linen as nn


class ModuleDict(nn.Module):
    """Holds named sub-modules; `apply(params, *args, name=...)` calls one of them.

    Keeping every module of an agent (actor, critics, ...) in one tree lets a single optimizer and a single update
    step serve every agent. Calling with name=None initialises all modules (their inputs are given as a dict).
    """

    modules: Dict[str, nn.Module]

    @nn.compact
    def __call__(self, *args, name: str | None = None, **kwargs) -> Any:
        if name is None:
            # Initialisation: kwargs maps every module name to its tuple of example inputs.
            if set(kwargs) != set(self.modules):
                raise ValueError(f'init needs example inputs for {sorted(self.modules)}, got {sorted(kwargs)}')
            return {key: self.modules[key](*kwargs[key]) for key in self.modules}
        return self.modules[name](*args, **kwargs)
