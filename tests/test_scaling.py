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
        agent = trainer.replicate(get_agent_class('gcbc').create(0, example, config))
        agent, _, infos = trainer.run(agent, trainer.replicate(jax.random.PRNGKey(1)), 30)
        losses.append(np.asarray(infos['actor_loss']))
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
    print('DATA_PARALLEL_OK', losses[1][-1])
''')


def test_data_parallel_over_two_devices_matches_one_device(tmp_path):
    script = DATA_PARALLEL_SCRIPT.format(repo=REPO, path=str(tmp_path / 'toy.npz'))
    env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2', JAX_PLATFORMS='cpu')
    out = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and 'DATA_PARALLEL_OK' in out.stdout, out.stderr[-3000:]
