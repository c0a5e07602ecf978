"""Pixel observations, written once for every agent that supports them (the paper's visual OGBench tasks).

- Encoder: `config.encoder` names an image encoder (networks/encoders.py). It is the 'encoder' module of the agent's
  ModuleDict; the policy heads never see pixels, only the encoding (`Agent.encode`). An agent encodes a batch ONCE
  and reuses the features: the flow sampler integrates all its steps on one encoding, and the loss
  encodes with the parameters being differentiated, so the actor loss trains the encoder.
- Augmentation: random shifts as in the authors' (OGBench's) GCDataset: with probability `config.p_aug` a training
  batch is augmented, each row shifted by its own offset of up to `config.aug_padding` pixels (pad by edge
  replication, crop back to the original size). Every image of the batch (ndim 4) shares its row's offset. Applied
  on device inside the update (`Agent.update`), never at evaluation.
Goals stay vectors (`-oraclerep` datasets): image goals are refused with a clear error.
"""
from typing import Any, Dict, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from agents import pixel_agents
from networks import make_encoder as make_named_encoder


def make_encoder(config: ml_collections.ConfigDict) -> nn.Module | None:
    """The image encoder `config.encoder` names, or None for state observations."""
    name = config.get('encoder')
    if name is None:
        return None
    return make_named_encoder(name)


def example_features(observations: jnp.ndarray, config: ml_collections.ConfigDict) -> jnp.ndarray:
    """An example of what the policy heads receive for `observations`: the observations themselves for state
    agents, zeros of the encoding's shape with an encoder (for initialising the heads)."""
    encoder = make_encoder(config)
    if encoder is None:
        return observations
    return jnp.zeros((observations.shape[0], encoder.feature_dim), jnp.float32)


def encoder_inputs(config: ml_collections.ConfigDict, example_inputs: Dict[str, Tuple],
                   observations: jnp.ndarray | None) -> Tuple[nn.Module | None, Dict[str, Tuple]]:
    """Checks that the config's encoder and augmentation fit the agent and its data; returns (encoder or None, the
    example inputs with the encoder's added). `observations` is None for agents that do not support pixels."""
    encoder = make_encoder(config)
    agent, p_aug = config.get('agent_name', 'this agent'), config.get('p_aug', 0.0)
    if not 0.0 <= p_aug <= 1.0:
        raise ValueError(f'config.p_aug is a probability, got {p_aug}.')
    if p_aug > 0 and encoder is None:
        raise ValueError(f'config.p_aug={p_aug} augments images: it needs pixel observations and config.encoder.')
    hint = f'pixel observations are supported by {", ".join(pixel_agents())} with --config.encoder=impala_small'
    if encoder is not None and observations is None:
        raise ValueError(f'agent {agent!r} takes state observations only (config.encoder={config.encoder!r}); {hint}.')
    if encoder is not None and observations.ndim != 4:
        raise ValueError(f'config.encoder={config.encoder!r} needs image observations (batch, height, width, '
                         f'channels), got shape {observations.shape}; state observations need config.encoder=None.')
    # The heads take vectors; an image among their inputs is either unencoded pixels or an image goal.
    images = [x.shape for x in jax.tree.leaves(example_inputs) if getattr(x, 'ndim', 0) > 2]
    if images and encoder is None:
        raise ValueError(f'agent {agent!r} got image inputs of shape {images[0]} without an encoder; {hint}.')
    if images:
        raise ValueError(f'image goals (shape {images[0]}) are not supported: goals must be vectors, as in the '
                         '-oraclerep datasets (e.g. visual-cube-single-play-oraclerep-v0).')
    if encoder is None:
        return None, example_inputs
    return encoder, {**example_inputs, 'encoder': (observations,)}


def shift_crop(images: jnp.ndarray, offsets: jnp.ndarray, padding: int) -> jnp.ndarray:
    """Pads (B, H, W, C) images by `padding` pixels with edge replication and crops each back to H × W, row i
    starting at `offsets[i]` = (dy, dx) in [0, 2·padding]. Offsets (padding, padding) give the image itself."""
    _, height, width, channels = images.shape
    padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode='edge')
    crop = lambda image, offset: jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, channels))
    return jax.vmap(crop)(padded, offsets)


def augment(batch: Dict[str, jnp.ndarray], rng: jnp.ndarray, p_aug: float, padding: int) -> Dict[str, Any]:
    """Random-shift augmentation of every image in `batch` (module docstring); vectors pass unchanged."""
    coin_rng, shift_rng = jax.random.split(rng)
    batch_size = batch['observations'].shape[0]
    offsets = jax.random.randint(shift_rng, (batch_size, 2), 0, 2 * padding + 1)
    # One coin for the whole batch, as the authors' sampler; a batch left alone gets the centre (identity) crop.
    offsets = jnp.where(jax.random.bernoulli(coin_rng, p_aug), offsets, padding)
    return {key: shift_crop(value, offsets, padding) if value.ndim == 4 else value for key, value in batch.items()}
