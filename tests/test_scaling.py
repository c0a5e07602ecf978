"""Several seeds in one process (vmap) and several devices (data parallel) train like their plain counterparts."""
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from agents import get_agent_class
from agents.seeds import create_agents, unstack
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from experiment.trainer import ChunkedTrainer
from tests.conftest import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_seed_k_of_a_vmapped_run_equals_a_single_run_with_seed_k(tiny_dataset):
    config = tiny_config('cfgrl')
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(tiny_dataset)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(0), sampling))
    seeds = [3, 5, 8]
    sampler_keys = jax.vmap(jax.random.PRNGKey)(np.asarray(seeds) + 100)

    stacked = create_agents(get_agent_class('cfgrl'), seeds, example, config)
    multi = ChunkedTrainer(sampling, data, chunk_size=10, num_seeds=len(seeds))
    stacked, _, infos = multi.run(stacked, sampler_keys, 20)
    assert infos['actor_loss'].shape == (3, 10)

    single = ChunkedTrainer(sampling, data, chunk_size=10)
    for k, seed in enumerate(seeds):
        agent = get_agent_class('cfgrl').create(seed, example, config)
        agent, _, single_infos = single.run(agent, jax.random.PRNGKey(seed + 100), 20)
        np.testing.assert_allclose(unstack(infos, k)['actor_loss'], single_infos['actor_loss'], rtol=1e-4)
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5),
                     unstack(stacked.network.params, k), agent.network.params)
    # Different seeds really are different runs.
    assert not np.allclose(infos['actor_loss'][0], infos['actor_loss'][1])


TWO_DEVICES_SCRIPT = textwrap.dedent('''
    import sys, types
    sys.path.insert(0, {repo!r})
    import jax, numpy as np, ogbench
    from jax.sharding import PartitionSpec
    from agents import get_agent_class
    from agents.seeds import create_agents
    from experiment.trainer import ChunkedTrainer, data_parallel_mesh
    from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
    from experiment.session import training_mesh
    from tests.conftest import tiny_config, write_synthetic_dataset
    assert jax.device_count() == 2, jax.devices()
    dataset = ogbench.load_dataset(str(write_synthetic_dataset({path!r})), compact_dataset=True)
    data = device_dataset(dataset)

    def train(agent_name, mesh, num_seeds):
        config = tiny_config(agent_name)
        sampling = GoalSamplingConfig.from_config(config)
        example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(0), sampling))
        trainer = ChunkedTrainer(sampling, data, chunk_size=15, num_seeds=num_seeds, mesh=mesh)
        if num_seeds == 1:
            agent, rng = get_agent_class(agent_name).create(0, example, config), jax.random.PRNGKey(1)
        else:
            agent = create_agents(get_agent_class(agent_name), list(range(num_seeds)), example, config)
            rng = jax.vmap(jax.random.PRNGKey)(np.arange(num_seeds) + 10)
        agent, _, infos = trainer.run(trainer.place(agent), trainer.place(rng), 30)
        return agent, np.asarray(infos['actor_loss'])

    # Data parallel (one seed): the batch split over the devices, the same losses as one device.
    (_, one), (_, two) = train('gcbc', None, 1), train('gcbc', data_parallel_mesh(), 1)
    np.testing.assert_allclose(one, two, rtol=1e-4)

    # Seed parallel: main.py splits 2 seeds over the 2 devices, and keeps 3 (which 2 cannot split) on one.
    config = tiny_config('cfgrl')
    mesh = training_mesh(types.SimpleNamespace(num_seeds=2), config)
    assert mesh is not None and mesh.size == 2 and mesh.axis_names == ('seeds',), mesh
    assert training_mesh(types.SimpleNamespace(num_seeds=3), config) is None
    (single, single_losses), (split, split_losses) = train('cfgrl', None, 2), train('cfgrl', mesh, 2)
    for leaf in jax.tree.leaves(split.network.params):  # Each device holds one seed's parameters.
        assert leaf.sharding.spec == PartitionSpec('seeds'), leaf.sharding
        assert [s.data.shape[0] for s in leaf.addressable_shards] == [1, 1]
    np.testing.assert_allclose(split_losses, single_losses, rtol=1e-5)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6),
                 jax.device_get(split.network.params), jax.device_get(single.network.params))
    print('TWO_DEVICES_OK')
''')


@pytest.mark.slow
def test_data_and_seed_parallelism_over_two_devices_match_one_device(tmp_path):
    """Two forced host devices: data parallelism (one seed) and seed parallelism (--num_seeds=2, one seed per
    device) train as on one device."""
    script = TWO_DEVICES_SCRIPT.format(repo=REPO, path=str(tmp_path / 'toy.npz'))
    env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2', JAX_PLATFORMS='cpu')
    out = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and 'TWO_DEVICES_OK' in out.stdout, out.stderr[-3000:]
