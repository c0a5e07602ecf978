"""The ExORL collector's exploration agent: URLB's reward-free DDPG + RND (Random Network Distillation), in JAX.

Used only by datasets/exorl_gen/collect.py, never by main.py. Networks as URLB builds them for state observations, at
width H (`hidden_dim`; URLB 1024):
- actor: Linear(obs → H) → LayerNorm → tanh → Linear(H → H) → ReLU → Linear(H → A) → tanh;
- critic: Linear([obs, a] → H) → LayerNorm → tanh, then two heads Linear(H → H) → ReLU → Linear(H → 1);
- RND predictor and frozen random target: Linear(obs → H) → ReLU → Linear(H → H) → ReLU → Linear(H → 512), on
  observations normalised by the batch's own statistics, (x − mean) / √(var + 1e-5) (URLB's affine-free BatchNorm
  in training mode), clipped to ±5.
Every Linear kernel is orthogonal and every bias zero (URLB's weight_init). One update, in URLB's order:
1. RND: an Adam step of the predictor on e(s) = mean_k (f(s) − f̂(s))_k²;
2. reward: the updated predictor's e(s) / √(running variance of e) (URLB's RMS, updated with this batch first);
3. critic: an Adam step on Σ_heads mean (Q_i(s, a) − r − γⁿ min_i Q'_i(s_{t+n}, a'))², a' = π(s_{t+n}) + noise;
4. actor: an Adam step on −mean min_i Q_i(s, π(s) + noise), with the critic just updated;
5. target critic: Polyak averaging at rate τ.
Each network has its own Adam, as in URLB. Noise is N(0, 0.2²), clipped at ±0.3 in the updates; actions are clamped
to ±(1 − 1e-6) with a straight-through gradient (URLB's TruncatedNormal, whose clamp passes the gradient on).
"""
from typing import Any, Dict, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training.train_state import TrainState

ACTION_LIMIT = 1.0 - 1e-6  # URLB's TruncatedNormal clamps samples to the open interval.


def _linear(width: int, name: str) -> nn.Dense:
    """URLB's weight_init for Linear layers: orthogonal kernel, zero bias."""
    return nn.Dense(width, kernel_init=nn.initializers.orthogonal(), bias_init=nn.initializers.zeros, name=name)


def _trunk(x: jnp.ndarray, width: int) -> jnp.ndarray:
    """Linear → LayerNorm → tanh (torch's LayerNorm epsilon)."""
    return jnp.tanh(nn.LayerNorm(epsilon=1e-5, name='trunk_norm')(_linear(width, 'trunk')(x)))


class Actor(nn.Module):
    hidden_dim: int
    action_dim: int

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> jnp.ndarray:
        h = nn.relu(_linear(self.hidden_dim, 'hidden')(_trunk(observations, self.hidden_dim)))
        return jnp.tanh(_linear(self.action_dim, 'out')(h))


class Critic(nn.Module):
    """Two Q heads over one shared trunk on (observation, action); returns (2, B)."""

    hidden_dim: int

    @nn.compact
    def __call__(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        h = _trunk(jnp.concatenate([observations, actions], axis=-1), self.hidden_dim)
        heads = [_linear(1, f'q{i}_out')(nn.relu(_linear(self.hidden_dim, f'q{i}_hidden')(h)))[..., 0]
                 for i in (1, 2)]
        return jnp.stack(heads)


class RNDNet(nn.Module):
    hidden_dim: int
    rep_dim: int

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> jnp.ndarray:
        h = nn.relu(_linear(self.hidden_dim, 'l1')(observations))
        return _linear(self.rep_dim, 'l3')(nn.relu(_linear(self.hidden_dim, 'l2')(h)))


def get_config() -> ml_collections.ConfigDict:
    """URLB's RND settings; the width and batch are cut for CPUs (URLB: 1024 and 1024, one flag away in the
    collector: --hidden_dim=1024 --batch_size=1024)."""
    config = ml_collections.ConfigDict()
    config.lr = 1e-4  # Adam learning rate of every network (URLB).
    config.hidden_dim = 256  # Actor, critic and RND width (URLB: 1024).
    config.rnd_rep_dim = 512  # RND feature width (URLB).
    config.batch_size = 256  # Transitions per update (URLB: 1024).
    config.discount = 0.99
    config.nstep = 3  # n-step TD target (URLB).
    config.tau = 0.01  # Polyak rate of the target critic (URLB).
    config.stddev = 0.2  # Exploration and target-policy noise (URLB's constant schedule).
    config.stddev_clip = 0.3  # Clip of that noise in the updates.
    config.obs_clip = 5.0  # RND input clip after normalisation.
    config.rnd_scale = 1.0  # Intrinsic reward scale (URLB).
    return config


def clamp_straight_through(x: jnp.ndarray) -> jnp.ndarray:
    """x clamped to ±ACTION_LIMIT in value, with the identity's gradient everywhere (URLB's TruncatedNormal)."""
    return x + jax.lax.stop_gradient(jnp.clip(x, -ACTION_LIMIT, ACTION_LIMIT) - x)


def noisy_actions(mean: jnp.ndarray, rng: jnp.ndarray, std: float, clip: float | None) -> jnp.ndarray:
    """A sample of URLB's TruncatedNormal(mean, std): noise optionally clipped to ±clip, the sum clamped."""
    noise = std * jax.random.normal(rng, mean.shape)
    if clip is not None:
        noise = jnp.clip(noise, -clip, clip)
    return clamp_straight_through(mean + noise)


def rnd_moments(moments: jnp.ndarray, errors: jnp.ndarray) -> jnp.ndarray:
    """URLB's RMS: (mean, variance, count) of the RND errors, merged with a batch (torch.var: unbiased)."""
    mean, var, count = moments
    n = errors.shape[0]
    delta = errors.mean() - mean
    total = count + n
    new_var = (var * count + jnp.var(errors, ddof=1) * n + delta ** 2 * count * n / total) / total
    return jnp.stack([mean + delta * n / total, new_var, total])


class RNDDDPG(flax.struct.PyTreeNode):
    """Train states of the actor, the critic and the RND predictor; the target critic's and the frozen RND
    target's parameters; the RND error moments and the update key."""

    actor: TrainState
    critic: TrainState
    predictor: TrainState
    target_critic: Any
    rnd_target: Any
    reward_moments: jnp.ndarray
    rng: jnp.ndarray
    config: ml_collections.FrozenConfigDict = flax.struct.field(pytree_node=False)

    @classmethod
    def create(cls, seed: int, obs_dim: int, action_dim: int, config: ml_collections.ConfigDict) -> 'RNDDDPG':
        rng, actor_rng, critic_rng, predictor_rng, target_rng = jax.random.split(jax.random.PRNGKey(seed), 5)
        obs, actions = jnp.zeros((1, obs_dim)), jnp.zeros((1, action_dim))
        actor = Actor(config.hidden_dim, action_dim)
        critic = Critic(config.hidden_dim)
        rnd = RNDNet(config.hidden_dim, config.rnd_rep_dim)

        def state(module, key, *inputs):
            return TrainState.create(apply_fn=module.apply, params=module.init(key, *inputs)['params'],
                                     tx=optax.adam(config.lr))
        critic_state = state(critic, critic_rng, obs, actions)
        return cls(actor=state(actor, actor_rng, obs), critic=critic_state,
                   predictor=state(rnd, predictor_rng, obs), target_critic=critic_state.params,
                   rnd_target=rnd.init(target_rng, obs)['params'], reward_moments=jnp.array([0.0, 1.0, 1e-4]),
                   rng=rng, config=ml_collections.FrozenConfigDict(config))

    def rnd_error(self, observations: jnp.ndarray, predictor_params: Any) -> jnp.ndarray:
        mean, var = observations.mean(0), observations.var(0)
        x = jnp.clip((observations - mean) / jnp.sqrt(var + 1e-5), -self.config.obs_clip, self.config.obs_clip)
        target = self.predictor.apply_fn({'params': self.rnd_target}, x)
        prediction = self.predictor.apply_fn({'params': predictor_params}, x)
        return jnp.mean((prediction - target) ** 2, axis=-1)

    @jax.jit
    def act(self, observations: jnp.ndarray, rng: jnp.ndarray) -> jnp.ndarray:
        """Exploration actions: the actor's plus unclipped N(0, stddev²) noise, clamped (URLB's act)."""
        mean = self.actor.apply_fn({'params': self.actor.params}, observations)
        return noisy_actions(mean, rng, self.config.stddev, None)

    @jax.jit
    def update(self, batch: Dict[str, jnp.ndarray]) -> Tuple['RNDDDPG', Dict[str, jnp.ndarray]]:
        """One update in URLB's order (module docstring) on observations, actions and n-step next observations."""
        cfg, obs, actions = self.config, batch['observations'], batch['actions']
        rng, next_rng, actor_rng = jax.random.split(self.rng, 3)

        rnd_loss, grads = jax.value_and_grad(lambda p: self.rnd_error(obs, p).mean())(self.predictor.params)
        predictor = self.predictor.apply_gradients(grads=grads)
        errors = self.rnd_error(obs, predictor.params)
        moments = rnd_moments(self.reward_moments, errors)
        rewards = cfg.rnd_scale * errors / (jnp.sqrt(moments[1]) + 1e-8)

        actor_fn, critic_fn = self.actor.apply_fn, self.critic.apply_fn
        next_actions = noisy_actions(actor_fn({'params': self.actor.params}, batch['next_observations']), next_rng,
                                     cfg.stddev, cfg.stddev_clip)
        next_q = critic_fn({'params': self.target_critic}, batch['next_observations'], next_actions).min(0)
        target = rewards + cfg.discount ** cfg.nstep * next_q

        def critic_loss(params):
            q = critic_fn({'params': params}, obs, actions)
            return jnp.sum(jnp.mean((q - target[None]) ** 2, axis=1)), q.mean()
        (critic_loss_value, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(self.critic.params)
        critic = self.critic.apply_gradients(grads=grads)

        def actor_loss(params):
            policy = noisy_actions(actor_fn({'params': params}, obs), actor_rng, cfg.stddev, cfg.stddev_clip)
            return -jnp.mean(critic_fn({'params': critic.params}, obs, policy).min(0))
        actor_loss_value, grads = jax.value_and_grad(actor_loss)(self.actor.params)
        actor = self.actor.apply_gradients(grads=grads)

        target_critic = optax.incremental_update(critic.params, self.target_critic, cfg.tau)
        info = {'rnd_loss': rnd_loss, 'critic_loss': critic_loss_value, 'actor_loss': actor_loss_value,
                'q': q_mean, 'intrinsic_reward': rewards.mean()}
        return self.replace(actor=actor, critic=critic, predictor=predictor, target_critic=target_critic,
                            reward_moments=moments, rng=rng), info
