"""What every agent shares: the train state, the agent base class and the ONE update step.

An agent is a `flax.struct.PyTreeNode` with three fields (rng, network, config) and three verbs:
`create(seed, example_batch, config)`, `update(batch) -> (agent, info)` and
`sample_actions(observations, goals, seed, guidance=...)`. A concrete agent writes only `create`, `loss` and
`sample_actions`; `update` (loss -> grads -> optax) is written here once, and so is the pixel plumbing: `encode`
(observation features for the heads) and the augmentation inside `update` (agents/pixels.py).
"""
from typing import Any, Callable, ClassVar, Dict, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from agents import pixels
from networks import ModuleDict

Batch = Dict[str, jnp.ndarray]
Info = Dict[str, jnp.ndarray]


def nonpytree_field(**kwargs):
    """A static (hashable, never traced) dataclass field."""
    return flax.struct.field(pytree_node=False, **kwargs)


class TrainState(flax.struct.PyTreeNode):
    """Parameters, optimiser state and step of one `ModuleDict` network.

    `select(name)` returns a function calling one sub-module; it uses the state's own parameters unless `params=`
    is passed. Gradients therefore flow only into modules called with the parameters being differentiated
    (OGBench's idiom): every other call is a stop-gradient by construction.
    """

    step: jnp.ndarray
    apply_fn: Callable = nonpytree_field()
    tx: optax.GradientTransformation = nonpytree_field()
    params: Any = None
    opt_state: Any = None

    @classmethod
    def create(cls, module: nn.Module, params: Any, tx: optax.GradientTransformation) -> 'TrainState':
        return cls(step=jnp.zeros((), jnp.int32), apply_fn=module.apply, tx=tx, params=params,
                   opt_state=tx.init(params))

    def select(self, name: str) -> Callable:
        def call(*args, params=None, **kwargs):
            return self.apply_fn({'params': self.params if params is None else params}, *args, name=name, **kwargs)

        return call

    def apply_gradients(self, grads: Any) -> 'TrainState':
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                            opt_state=opt_state)


def init_network(seed: int, modules: Dict[str, nn.Module], example_inputs: Dict[str, Tuple],
                 config: ml_collections.ConfigDict, observations: jnp.ndarray | None = None
                 ) -> Tuple[jnp.ndarray, TrainState]:
    """Initialise a ModuleDict of `modules` and its Adam optimiser; returns (agent rng, train state).

    Agents that support pixels pass their raw example `observations`: with `config.encoder` set, an 'encoder'
    module is added for them, and the heads' example inputs hold `pixels.example_features` instead. Agents that pass
    none take state observations only, and a config or dataset asking for pixels fails here with a clear error.
    """
    encoder, example_inputs = pixels.encoder_inputs(config, example_inputs, observations)
    if encoder is not None:
        modules = {**modules, 'encoder': encoder}
    rng, init_rng = jax.random.split(jax.random.PRNGKey(seed))
    network = ModuleDict(modules)
    params = network.init(init_rng, **example_inputs)['params']
    return rng, TrainState.create(network, params, optax.adam(learning_rate=config.lr))


def polyak_update(network: TrainState, tau: float, source: str = 'critic', target: str = 'target_critic'
                  ) -> TrainState:
    """`network` with its `target` module moved toward its `source` module by Polyak averaging:
    target ← τ·source + (1 − τ)·target (optax.incremental_update, which the ExORL collector's agent calls too)."""
    params = dict(network.params)
    params[f'modules_{target}'] = optax.incremental_update(params[f'modules_{source}'], params[f'modules_{target}'],
                                                           tau)
    return network.replace(params=params)


def freeze_config(config: ml_collections.ConfigDict) -> ml_collections.FrozenConfigDict:
    """Agents hold a frozen (hashable) copy of their config, so it can be a static jit field and is never mutated."""
    return ml_collections.FrozenConfigDict(config)


# What an agent declares about itself (read by the registry's users: tests, sweeps, evaluation, aggregation).
CAPABILITIES = ('supports_pixels', 'single_task', 'baselines', 'label_keys', 'w1_label', 'guided_by')


class Agent(flax.struct.PyTreeNode):
    """Base class of every agent. Subclasses implement `create`, `loss` and `sample_actions`, and declare what they
    support: each of `CAPABILITIES` is set in the class's own body, or named in its own `inherits` to take its
    parent's on purpose (the registry refuses a class that does neither, `check_capabilities`), so a variant
    subclassing another agent never picks up, say, its baselines or pixel support unnoticed."""

    rng: jnp.ndarray
    network: TrainState
    config: ml_collections.FrozenConfigDict = nonpytree_field()
    action_dim: int = nonpytree_field()

    supports_pixels: ClassVar[bool] = False  # `create` passes its observations to `init_network` (config.encoder).
    single_task: ClassVar[bool] = False  # Trains on rewards and masks (`-singletask` datasets).
    baselines: ClassVar[Dict[str, Dict[str, Any]]] = {}  # Baseline name -> the config overrides that make it.
    label_keys: ClassVar[Tuple[str, ...]] = ()  # Config keys always named in the agent's table labels.
    w1_label: ClassVar[str] = 'w = 1'  # What guidance weight 1 samples, for plots.
    inherits: ClassVar[Tuple[str, ...]] = ()  # The capabilities this class takes from its parent (its own only).

    @classmethod
    def check_capabilities(cls) -> None:
        """TypeError unless each capability is set in this class's body or named in its own `inherits`."""
        own, inherits = cls.__dict__, cls.__dict__.get('inherits', ())
        problems = []
        if set(inherits) - set(CAPABILITIES):
            problems.append(f'`inherits` names {sorted(set(inherits) - set(CAPABILITIES))}, which are not '
                            f'capabilities ({", ".join(CAPABILITIES)})')
        if [c for c in inherits if c in own]:
            problems.append(f'{[c for c in inherits if c in own]} are both set and inherited')
        missing = [c for c in CAPABILITIES if c not in own and c not in inherits]
        if missing:
            problems.append(f'{", ".join(missing)} neither set in the class body nor named in its `inherits` '
                            '(to take the parent\'s on purpose)')
        if problems:
            raise TypeError(f'agent class {cls.__module__}.{cls.__qualname__}: {"; ".join(problems)}.')

    @classmethod
    def guided_by(cls, config) -> bool:
        """Whether an agent with `config` is guided: it trains with condition dropout (`p_uncond` > 0); without it
        there is no unconditional field to guide away from."""
        return config.get('p_uncond', 0.0) > 0

    @property
    def guided(self) -> bool:
        """Whether `sample_actions` takes a guidance weight worth sweeping (evaluation sweeps w only then)."""
        return self.guided_by(self.config)

    def encode(self, observations: jnp.ndarray, params: Any = None) -> jnp.ndarray:
        """What the policy heads read: the encoder's features of pixel observations, the observations themselves
        otherwise (agents/pixels.py). Encode a batch once and reuse it; pass `params=grad_params` in a loss so that
        the loss trains the encoder."""
        if self.config.get('encoder') is None:
            return observations
        return self.network.select('encoder')(observations, params=params)

    def loss(self, batch: Batch, grad_params: Any, rng: jnp.ndarray) -> Tuple[jnp.ndarray, Info]:
        """Total loss of the agent at `grad_params` and a dict of scalar diagnostics."""
        raise NotImplementedError

    def after_update(self) -> 'Agent':
        """Hook run after each gradient step (e.g. target-network updates). Identity by default."""
        return self

    def update(self, batch: Batch) -> Tuple['Agent', Info]:
        """One gradient step on `batch`: the single update step shared by every agent. Pure, so it can be
        jitted, scanned over (training chunks) and vmapped over stacked agents (several seeds)."""
        rng, loss_rng = jax.random.split(self.rng)
        if self.config.get('p_aug', 0.0) > 0:
            # Augmentation draws from a key of its own; without it the RNG stream is exactly the state agents'.
            rng, aug_rng = jax.random.split(rng)
            batch = pixels.augment(batch, aug_rng, self.config.p_aug, self.config.aug_padding)
        grads, info = jax.grad(self.loss, argnums=1, has_aux=True)(batch, self.network.params, loss_rng)
        info['grad_norm'] = optax.global_norm(grads)
        agent = self.replace(rng=rng, network=self.network.apply_gradients(grads))
        return agent.after_update(), info
