"""Pixel observations: the IMPALA encoder, random-shift augmentation, and the flat agents on a synthetic image
dataset (uint8 images, vector goals as in the `-oraclerep` visual datasets)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import AGENTS, get_agent_class, get_config, pixel_agents, pixels, variants
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from experiment.trainer import ChunkedTrainer
from networks import ENCODERS, ImpalaEncoder
from tests.conftest import tiny_config

IMAGE = 16  # Tiny images keep the CPU tests fast; the encoder is resolution-agnostic.
PIXEL_VARIANTS = [pytest.param(name, overrides, marks=[pytest.mark.slow] if overrides else [])
                  for name, overrides in variants() if name in pixel_agents()]
FLOW_PIXEL_AGENTS = [name for name in pixel_agents() if 'flow_steps' in get_config(name)]
STATE_ONLY_AGENTS = [name for name in AGENTS if name not in pixel_agents()]


@pytest.fixture(scope='module')
def pixel_dataset(tiny_dataset):
    """The toy dataset seen through a camera: each state tints a fixed random texture (so shifts are visible and the
    image carries the state); the goals are the states themselves as `oracle_reps`."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 200, (IMAGE, IMAGE, 3))
    states = tiny_dataset['observations']
    tint = np.round((states[:, None, None, :3] + 1.0) * 27.0).astype(np.int64)  # In [0, 54].
    dataset = dict(tiny_dataset)
    dataset['observations'] = (texture[None] + tint).astype(np.uint8)
    dataset['oracle_reps'] = states.astype(np.float32)
    return dataset


def _setup(name, dataset, **overrides):
    config = tiny_config(name, **{'encoder': 'impala_tiny', 'batch_size': 16, **overrides})
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(dataset)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(0), sampling))
    return get_agent_class(name).create(0, example, config), sampling, data, example


def numpy_shift_crop(images, offsets, padding):
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode='edge')
    h, w = images.shape[1:3]
    return np.stack([p[dy:dy + h, dx:dx + w] for p, (dy, dx) in zip(padded, offsets)])


def test_impala_small_has_the_reference_shapes():
    # 64×64×3 → three stacks (16, 32, 32), each halving the resolution → 8×8×32 = 2048 → dense 512.
    images = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.uint8)
    encoder = ENCODERS['impala_small']()
    params = jax.eval_shape(encoder.init, jax.random.PRNGKey(0), images)['params']
    out = jax.eval_shape(encoder.apply, {'params': params}, images)
    assert out.shape == (2, 512) and out.dtype == jnp.float32 and encoder.feature_dim == 512
    assert params['MLP_0']['Dense_0']['kernel'].shape == (2048, 512)
    stacks = [params[f'ResidualStack_{i}'] for i in range(3)]
    assert [s['Conv_0']['kernel'].shape[-1] for s in stacks] == [16, 32, 32]
    assert all(len(s) == 3 for s in stacks)  # One residual block per stack: the input conv + two.


def test_encoder_output_shape_and_pixel_scaling():
    import flax.linen as nn

    encoder = ImpalaEncoder(stack_sizes=(4, 8), num_blocks=1, mlp_hidden_dims=(24,))
    images = np.random.default_rng(0).integers(0, 256, (3, IMAGE, IMAGE, 3), dtype=np.uint8)
    images[0, 0, 0] = 255
    # Parameters drawn with numpy: compiling the initialisers' RNG would cost this test most of its time.
    shapes = jax.eval_shape(encoder.init, jax.random.PRNGKey(0), images)
    rng = np.random.default_rng(1)
    params = jax.tree.map(lambda x: rng.normal(0.0, 0.3, x.shape).astype(np.float32), shapes)

    @jax.jit
    def encode(params, images):
        """The features and what the first convolution receives."""
        first_conv_inputs = []

        def record(call, args, kwargs, context):
            if isinstance(context.module, nn.Conv) and not first_conv_inputs:
                first_conv_inputs.append(args[0])
            return call(*args, **kwargs)

        with nn.intercept_methods(record):
            return encoder.apply(params, images), first_conv_inputs[0]

    features, conv_inputs = encode(params, images)
    assert features.shape == (3, 24) and features.dtype == jnp.float32
    # uint8 pixels reach the first convolution scaled to [0, 1].
    np.testing.assert_allclose(conv_inputs, images / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match='images of shape'):
        encoder.apply(params, np.zeros((3, 5), np.float32))


def test_shift_crop_matches_a_numpy_reference():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, IMAGE, IMAGE, 3), dtype=np.uint8)
    offsets = rng.integers(0, 2 * 3 + 1, (6, 2)).astype(np.int32)
    offsets[0] = (3, 3)  # The centre crop is the image itself.
    offsets[1] = (0, 6)  # Extreme corners exercise the edge replication.
    cropped = pixels.shift_crop(jnp.asarray(images), jnp.asarray(offsets), 3)
    assert cropped.dtype == jnp.uint8 and cropped.shape == images.shape
    np.testing.assert_array_equal(cropped, numpy_shift_crop(images, offsets, 3))
    np.testing.assert_array_equal(cropped[0], images[0])


def test_augment_shifts_every_image_of_a_row_alike_and_leaves_vectors_alone():
    rng = np.random.default_rng(2)
    padding, b = 3, 32
    batch = {'observations': jnp.asarray(rng.integers(0, 256, (b, IMAGE, IMAGE, 3), dtype=np.uint8)),
             'next_observations': jnp.asarray(rng.integers(0, 256, (b, IMAGE, IMAGE, 3), dtype=np.uint8)),
             'goals': jnp.asarray(rng.normal(size=(b, 4)).astype(np.float32))}
    out = pixels.augment(batch, jax.random.PRNGKey(0), 1.0, padding)
    assert {k: (v.shape, v.dtype) for k, v in out.items()} == {k: (v.shape, v.dtype) for k, v in batch.items()}
    np.testing.assert_array_equal(out['goals'], batch['goals'])
    # Recover each row's offset from the observations, then check the next observations used the same one.
    obs, shifted = np.asarray(batch['observations']), np.asarray(out['observations'])
    all_offsets = [(dy, dx) for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)]
    found = []
    for i in range(b):
        crops = numpy_shift_crop(np.repeat(obs[i:i + 1], len(all_offsets), axis=0), all_offsets, padding)
        matches = [o for o, crop in zip(all_offsets, crops) if np.array_equal(crop, shifted[i])]
        assert matches, f'row {i} is not a shifted crop of its image'
        found.append(matches[0])
    np.testing.assert_array_equal(out['next_observations'],
                                  numpy_shift_crop(np.asarray(batch['next_observations']), found, padding))
    assert len(set(found)) > 5, 'offsets should vary from row to row'


def test_augment_is_the_identity_when_p_aug_is_zero():
    images = jnp.asarray(np.random.default_rng(3).integers(0, 256, (8, IMAGE, IMAGE, 3), dtype=np.uint8))
    for seed in range(5):
        out = pixels.augment({'observations': images}, jax.random.PRNGKey(seed), 0.0, 3)
        np.testing.assert_array_equal(out['observations'], images)
    # With p_aug in (0, 1) whole batches are augmented or left alone (one coin per batch, as the authors' code).
    kept = [bool(jnp.array_equal(pixels.augment({'observations': images}, jax.random.PRNGKey(s), 0.5, 3)
                                 ['observations'], images)) for s in range(40)]
    assert 5 < sum(kept) < 35


@pytest.mark.slow
def test_update_trains_on_the_augmented_batch_with_its_own_key(pixel_dataset):
    agent, _, _, example = _setup('cfgrl', pixel_dataset, p_aug=1.0)

    @jax.jit
    def losses(agent, batch):
        _, info = agent.update(batch)
        # The update's keys: the loss key as for state agents, then augmentation's own split of the carried key.
        rng, loss_rng = jax.random.split(agent.rng)
        augmented = pixels.augment(batch, jax.random.split(rng)[1], 1.0, agent.config.aug_padding)
        loss = lambda b: agent.loss(b, agent.network.params, loss_rng)[0]
        return info['actor_loss'], loss(augmented), loss(batch), augmented['observations']

    update_loss, augmented_loss, plain_loss, augmented_obs = losses(agent, example)
    assert not np.array_equal(augmented_obs, example['observations'])
    np.testing.assert_allclose(update_loss, augmented_loss, rtol=1e-5)
    assert abs(float(augmented_loss) - float(plain_loss)) > 1e-6


@pytest.mark.parametrize('name,overrides', PIXEL_VARIANTS)
def test_pixel_agents_train_and_sample(pixel_dataset, name, overrides):
    agent, sampling, data, example = _setup(name, pixel_dataset, p_aug=0.5, **overrides)
    encoder_before = jax.tree.map(np.array, agent.network.params['modules_encoder'])
    trainer = ChunkedTrainer(sampling, data, chunk_size=3)
    agent, _, infos = trainer.run(agent, jax.random.PRNGKey(1), 3)
    assert np.all(np.isfinite(infos['actor_loss']))
    # The actor loss trains the encoder: every encoder parameter moved.
    moved = jax.tree.map(lambda x, y: not np.allclose(x, y), encoder_before, agent.network.params['modules_encoder'])
    assert all(jax.tree.leaves(moved)), moved
    kwargs = {'guidance': 3.0} if agent.guided else {}
    actions = agent.sample_actions(example['observations'], example['goals'], jax.random.PRNGKey(0), **kwargs)
    assert actions.shape == example['actions'].shape
    assert np.all(np.isfinite(actions)) and float(jnp.abs(actions).max()) <= 1.0


def _conv_sites(jaxpr, in_loop=False):
    """(batch size, inside a loop?) of every convolution in `jaxpr` and the jaxprs nested in it."""
    sites = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == 'conv_general_dilated':
            sites.append((eqn.invars[0].aval.shape[0], in_loop))
        loop = in_loop or eqn.primitive.name in ('while', 'scan')
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                sub = getattr(sub, 'jaxpr', sub)  # ClosedJaxpr -> Jaxpr.
                if hasattr(sub, 'eqns'):
                    sites += _conv_sites(sub, loop)
    return sites


@pytest.mark.parametrize('name', FLOW_PIXEL_AGENTS)
def test_sampling_encodes_once_outside_the_flow_loop(pixel_dataset, name):
    agent, _, _, example = _setup(name, pixel_dataset)
    obs, goals, b = example['observations'], example['goals'], example['observations'].shape[0]
    kwargs = {'guidance': 3.0} if agent.guided else {}
    jaxpr = jax.make_jaxpr(lambda o, g: agent.sample_actions(o, g, jax.random.PRNGKey(0), **kwargs))(obs, goals)
    sites = _conv_sites(jaxpr.jaxpr)
    # impala_tiny: 2 stacks × (1 + 2) convolutions = one encoding, of the B observations only (CFGRL's fused
    # [conditional; unconditional] pass reuses it), and none inside the flow steps' loop.
    assert sites == [(b, False)] * 6, sites


@pytest.mark.parametrize('name', STATE_ONLY_AGENTS)
def test_state_only_agents_refuse_an_encoder(pixel_dataset, tiny_singletask_dataset, name):
    with pytest.raises(ValueError, match='state observations only.*' + ', '.join(pixel_agents())):
        _setup(name, tiny_singletask_dataset if get_agent_class(name).single_task else pixel_dataset)


def test_mismatched_pixel_configs_fail_clearly(tiny_dataset, pixel_dataset):
    with pytest.raises(ValueError, match='without an encoder.*--config.encoder=impala_small'):
        _setup('cfgrl', pixel_dataset, encoder=None)
    with pytest.raises(ValueError, match='needs image observations'):
        _setup('gcbc', tiny_dataset)
    with pytest.raises(ValueError, match='p_aug'):
        _setup('gcbc', tiny_dataset, encoder=None, p_aug=0.5)
    with pytest.raises(ValueError, match='impala_small'):
        _setup('gcbc', pixel_dataset, encoder='resnet')
    image_goals = dict(pixel_dataset)
    del image_goals['oracle_reps']  # Goals are then observations: images.
    with pytest.raises(ValueError, match='image goals'):
        _setup('cfgrl', image_goals)


def test_state_configs_default_to_no_encoder(tiny_dataset):
    for name in ('cfgrl', 'gcbc', 'awr'):
        config = get_config(name)
        assert config.encoder is None and config.p_aug == 0.0
    agent = get_agent_class('cfgrl').create(0, jax.tree.map(np.asarray, sample_goal_batch(
        device_dataset(tiny_dataset), jax.random.PRNGKey(0), GoalSamplingConfig(batch_size=4))), tiny_config('cfgrl'))
    assert set(agent.network.params) == {'modules_velocity'}
