"""Flow-matching math, written once for every flow agent (docs/method.md#flow-policies).

Training:  a0 ~ N(0, I), t ~ U[0, 1), a_t = (1 − t)·a0 + t·a1, loss = mean ‖v(a_t, t) − (a1 − a0)‖².
Sampling:  a ~ N(0, I); for i in 0..K−1, t = i/K: a ← a + v(a, t)/K; the caller clips the final action.
Guidance:  v = rule(v_cond, v_unc, w, t); by default classifier-free guidance v_unc + w·(v_cond − v_unc) (w = 1 is
           the conditional field). The rules are in agents/guidance.py.
"""
from typing import Callable, Tuple

import jax
import jax.numpy as jnp

from agents.guidance import GuidanceRule, cfg

VelocityFn = Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]


def interpolate(noise: jnp.ndarray, actions: jnp.ndarray, times: jnp.ndarray) -> jnp.ndarray:
    """The straight path a_t = (1 − t)·a0 + t·a1; `times` has shape (B, 1)."""
    return (1.0 - times) * noise + times * actions


def flow_target(noise: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
    """The path's constant velocity a1 − a0, the regression target."""
    return actions - noise


def sample_flow_inputs(rng: jnp.ndarray, actions: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Draws (noise a0, times t of shape (B, 1), noisy actions a_t) for a batch of data actions a1."""
    noise_rng, time_rng = jax.random.split(rng)
    noise = jax.random.normal(noise_rng, actions.shape, actions.dtype)
    times = jax.random.uniform(time_rng, (actions.shape[0], 1), actions.dtype)
    return noise, times, interpolate(noise, actions, times)


def flow_matching_loss(velocity: jnp.ndarray, noise: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
    """Mean squared error between the predicted velocity and a1 − a0 (no time weighting)."""
    return jnp.mean((velocity - flow_target(noise, actions)) ** 2)


def dropout_flow_loss(velocity_net: Callable, observations: jnp.ndarray, conds: jnp.ndarray, targets: jnp.ndarray,
                      p_uncond: float, rng: jnp.ndarray, params) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """Flow-matching loss of a conditional field whose condition is dropped to the unconditional embedding with
    probability `p_uncond` (classifier-free guidance training). Returns (loss, fraction of dropped rows)."""
    flow_rng, drop_rng = jax.random.split(rng)
    noise, times, noisy_targets = sample_flow_inputs(flow_rng, targets)
    if p_uncond > 0:
        uncond = jax.random.bernoulli(drop_rng, p_uncond, (targets.shape[0],))
        velocity = velocity_net(observations, conds, noisy_targets, times, uncond, params=params)
        return flow_matching_loss(velocity, noise, targets), uncond.mean()
    # No dropout (flow GCBC / flow HGCBC): the field has no unconditional embedding at all.
    velocity = velocity_net(observations, conds, noisy_targets, times, params=params)
    return flow_matching_loss(velocity, noise, targets), jnp.zeros(())


def euler_integrate(velocity_fn: VelocityFn, noise: jnp.ndarray, num_steps: int) -> jnp.ndarray:
    """Integrates da/dt = v(a, t) from t = 0 to 1 with `num_steps` Euler steps (t = i/K, step size 1/K).

    `num_steps` is static; the loop is a `fori_loop`, so the network is traced once whatever K is.
    """
    step_size = 1.0 / num_steps

    def body(i, actions):
        times = jnp.full((actions.shape[0], 1), i * step_size, actions.dtype)
        return actions + step_size * velocity_fn(actions, times)

    return jax.lax.fori_loop(0, num_steps, body, noise)


def fused_guided_velocity(velocity_net: Callable, observations: jnp.ndarray, conds: jnp.ndarray,
                          guidance: jnp.ndarray, rule: GuidanceRule = cfg) -> VelocityFn:
    """The guided velocity field as ONE network pass over the stacked [conditional; unconditional] batch.

    `velocity_net(observations, conds, noisy_actions, times, uncond)` must replace the condition of rows whose
    `uncond` flag is set by its learned unconditional embedding. `guidance` has shape (B, 1); `rule(v_cond, v_uncond,
    w, t)` mixes the two fields at flow time t (agents/guidance.py; classifier-free guidance by default).
    """
    batch_size = observations.shape[0]
    stacked_obs = jnp.concatenate([observations, observations], axis=0)
    stacked_conds = jnp.concatenate([conds, conds], axis=0)
    uncond = jnp.concatenate([jnp.zeros(batch_size, bool), jnp.ones(batch_size, bool)])

    def velocity_fn(actions, times):
        v = velocity_net(stacked_obs, stacked_conds, jnp.concatenate([actions, actions], axis=0),
                         jnp.concatenate([times, times], axis=0), uncond)
        return rule(v[:batch_size], v[batch_size:], guidance, times)

    return velocity_fn


def sample_guided(velocity_net: Callable, observations: jnp.ndarray, conds: jnp.ndarray, guidance: jnp.ndarray,
                  rng: jnp.ndarray, out_dim: int, num_steps: int, guided: bool = True,
                  rule: GuidanceRule = cfg) -> jnp.ndarray:
    """Guided flow samples (not clipped): noise ~ N(0, I), then `num_steps` Euler steps of the fused guided field.

    `guidance` is a scalar or a per-row (B,) vector; `velocity_net` is as in `fused_guided_velocity`. With
    `guided=False` (a field trained without condition dropout) only the conditional field exists: w is 1. `rule`
    is the guidance rule (agents/guidance.py; classifier-free guidance by default).
    """
    batch_size = observations.shape[0]
    if guided:
        w = jnp.broadcast_to(jnp.asarray(guidance, jnp.float32), (batch_size,))[:, None]
        velocity_fn = fused_guided_velocity(velocity_net, observations, conds, w, rule)
    else:
        velocity_fn = lambda actions, times: velocity_net(observations, conds, actions, times)
    noise = jax.random.normal(rng, (batch_size, out_dim))
    return euler_integrate(velocity_fn, noise, num_steps)
