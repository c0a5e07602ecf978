"""Several seeds in one process (vmap) and several devices (data parallel) train like their plain counterparts."""
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

from agents import get_agent_class
from agents.trainer import ChunkedTrainer, create_agents, unstack
from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
from tests.conftest import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


DATA_PARALLEL_SCRIPT = textwrap.dedent('''
    import os, sys
    sys.path.insert(0, {repo!r})
    import jax, numpy as np, ogbench
    from agents import get_agent_class
    from agents.trainer import ChunkedTrainer, data_parallel_mesh
    from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
    from tests.conftest import tiny_config, write_synthetic_dataset
    assert jax.device_count() == 2, jax.devices()
    dataset = ogbench.load_dataset(str(write_synthetic_dataset({path!r})), compact_dataset=True)
    config = tiny_config('gcbc')
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(dataset)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(0), sampling))
    losses = []
    for mesh in (None, data_parallel_mesh()):
        trainer = ChunkedTrainer(sampling, data, chunk_size=15, mesh=mesh)
        agent = trainer.place(get_agent_class('gcbc').create(0, example, config))
        agent, _, infos = trainer.run(agent, trainer.place(jax.random.PRNGKey(1)), 30)
        losses.append(np.asarray(infos['actor_loss']))
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
    print('DATA_PARALLEL_OK', losses[1][-1])
''')


def test_data_parallel_over_two_devices_matches_one_device(tmp_path):
    script = DATA_PARALLEL_SCRIPT.format(repo=REPO, path=str(tmp_path / 'toy.npz'))
    env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2', JAX_PLATFORMS='cpu')
    out = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and 'DATA_PARALLEL_OK' in out.stdout, out.stderr[-3000:]


SEED_PARALLEL_SCRIPT = textwrap.dedent('''
    import sys, types
    sys.path.insert(0, {repo!r})
    import jax, numpy as np, ogbench
    from jax.sharding import PartitionSpec
    from agents import get_agent_class
    from agents.trainer import ChunkedTrainer, create_agents
    from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
    from experiment.session import training_mesh
    from tests.conftest import tiny_config, write_synthetic_dataset
    assert jax.device_count() == 2, jax.devices()
    dataset = ogbench.load_dataset(str(write_synthetic_dataset({path!r})), compact_dataset=True)
    config = tiny_config('cfgrl')
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(dataset)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(0), sampling))
    # main.py's choice: 2 seeds split over the 2 devices; 3 seeds, which 2 devices cannot split, on one device.
    mesh = training_mesh(types.SimpleNamespace(num_seeds=2), config)
    assert mesh is not None and mesh.size == 2 and mesh.axis_names == ('seeds',), mesh
    assert training_mesh(types.SimpleNamespace(num_seeds=3), config) is None
    results = []
    for mesh in (None, mesh):
        trainer = ChunkedTrainer(sampling, data, chunk_size=15, num_seeds=2, mesh=mesh)
        agent = trainer.place(create_agents(get_agent_class('cfgrl'), [0, 1], example, config))
        keys = trainer.place(jax.vmap(jax.random.PRNGKey)(np.array([10, 11])))
        agent, keys, infos = trainer.run(agent, keys, 30)
        results.append((agent, infos))
    (single, single_infos), (split, split_infos) = results
    for leaf in jax.tree.leaves(split.network.params):  # Each device holds one seed's parameters.
        assert leaf.sharding.spec == PartitionSpec('seeds'), leaf.sharding
        assert [s.data.shape[0] for s in leaf.addressable_shards] == [1, 1]
    np.testing.assert_allclose(split_infos['actor_loss'], single_infos['actor_loss'], rtol=1e-5)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6),
                 jax.device_get(split.network.params), jax.device_get(single.network.params))
    print('SEED_PARALLEL_OK')
''')


def test_seeds_split_over_two_devices_match_one_device(tmp_path):
    """Seed parallelism: --num_seeds=2 on two devices trains each seed on its own device, as on one device."""
    script = SEED_PARALLEL_SCRIPT.format(repo=REPO, path=str(tmp_path / 'toy.npz'))
    env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2', JAX_PLATFORMS='cpu')
    out = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and 'SEED_PARALLEL_OK' in out.stdout, out.stderr[-3000:]


MULTI_PROCESS_SCRIPT = textwrap.dedent('''
    import os, sys
    sys.path.insert(0, {repo!r})
    import jax, numpy as np, ogbench
    from agents.trainer import initialize_distributed
    process_id = int(sys.argv[1])
    if process_id >= 0:
        initialize_distributed('localhost:{port}', num_processes=2, process_id=process_id)
        assert jax.process_count() == 2 and jax.device_count() == 2 and jax.local_device_count() == 1
    from agents import get_agent_class
    from agents.trainer import ChunkedTrainer, data_parallel_mesh
    from datasets.sampler import GoalSamplingConfig, device_dataset, sample_goal_batch
    from tests.conftest import tiny_config
    dataset = ogbench.load_dataset({path!r}, compact_dataset=True)
    config = tiny_config('gcbc')
    sampling = GoalSamplingConfig.from_config(config)
    data = device_dataset(dataset)
    example = jax.tree.map(np.asarray, sample_goal_batch(data, jax.random.PRNGKey(0), sampling))
    trainer = ChunkedTrainer(sampling, data, chunk_size=15, mesh=data_parallel_mesh() if process_id >= 0 else None)
    agent = trainer.place(get_agent_class('gcbc').create(0, example, config))
    agent, _, infos = trainer.run(agent, trainer.place(jax.random.PRNGKey(1)), 30)
    print('LOSSES', ','.join(f'{{x:.9g}}' for x in np.asarray(infos['actor_loss'])))
''')


def _losses(out: str) -> np.ndarray:
    line = next(l for l in out.splitlines() if l.startswith('LOSSES '))
    return np.array([float(x) for x in line.split()[1].split(',')])


def test_two_processes_with_jax_distributed_match_one_process(tmp_path):
    """Multi-host data parallelism, emulated by two CPU processes on this machine (one device each, gloo)."""
    from tests.conftest import free_port, run_processes, write_synthetic_dataset

    script = MULTI_PROCESS_SCRIPT.format(repo=REPO, path=str(write_synthetic_dataset(str(tmp_path / 'toy.npz'))),
                                         port=free_port())
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    outputs = run_processes([[sys.executable, '-c', script, str(i)] for i in (0, 1)], timeout=300, env=env)
    for code, out, err in outputs:
        assert code == 0 and 'LOSSES' in out, err[-3000:]
    single = subprocess.run([sys.executable, '-c', script, '-1'], env=env, capture_output=True, text=True,
                            timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    np.testing.assert_array_equal(_losses(outputs[0][1]), _losses(outputs[1][1]))  # One program, two hosts.
    np.testing.assert_allclose(_losses(outputs[0][1]), _losses(single.stdout), rtol=1e-4)
