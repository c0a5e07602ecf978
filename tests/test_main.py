"""main.py end to end (subprocesses, tiny networks, a 4-episode regenerated dataset): every artefact of a run,
SIGKILL / Ctrl-C then --resume ending bitwise equal to an uninterrupted run, --eval_only, refusals and bad input.

Subprocesses share a persistent JAX compilation cache, so only the first run pays for most compilations.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiment import restore
from experiment.loop import Schedule
from experiment.settings import config_from_dict, config_to_dict

REPO = Path(__file__).resolve().parents[1]
ENV = 'pointmaze-medium-navigate-v0'
TRAIN_STEPS = 100
# chunk = gcd(10, 20, 20) = 10: a Ctrl-C checkpoint may fall between periodic ones (at 30, 50, ...).
TRAIN_FLAGS = ['--agent=cfgrl', f'--train_steps={TRAIN_STEPS}', '--log_interval=10', '--eval_interval=20',
               '--save_interval=20', '--eval_episodes=1', '--eval_tasks=1,2', '--eval_guidance=0,1,2',
               '--eval_max_steps=20', '--config.actor_hidden_dims=32,32', '--config.batch_size=32']


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    from datasets.ogbench_gen.generate import generate

    root = tmp_path_factory.mktemp('main')
    generate(ENV, num_episodes=4, episode_length=201, dataset_dir=str(root / 'data'), seed=0, workers=1,
             progress=False)
    return root


def _env(root):
    return dict(os.environ, MUJOCO_GL='egl', JAX_COMPILATION_CACHE_DIR=str(root / 'jax_cache'),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0', JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0')


def _command(root, *args):
    return [sys.executable, 'main.py', f'--dataset_dir={root / "data"}', *args]


def run_main(root, *args, timeout=300):
    return subprocess.run(_command(root, *args), cwd=REPO, env=_env(root), capture_output=True, text=True,
                          timeout=timeout)


def start_main(root, *args):
    return subprocess.Popen(_command(root, *args), cwd=REPO, env=_env(root), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def only_run_dir(save_dir, agent='cfgrl'):
    runs = list((Path(save_dir) / ENV / agent).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def checkpoint_steps(run):
    return sorted(int(p.name) for p in (run / 'checkpoints').iterdir() if p.name.isdigit())


def checkpoint_arrays(run, step):
    import jax
    import orbax.checkpoint as ocp

    # Restored onto this process's CPU, whatever devices saved it (a multi-process run saves from two).
    path = str(run / 'checkpoints' / str(step) / 'state')
    checkpointer = ocp.StandardCheckpointer()
    cpu = jax.sharding.SingleDeviceSharding(jax.devices('cpu')[0])
    tree = checkpointer.metadata(path).item_metadata.tree
    state = checkpointer.restore(path, jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=cpu),
                                                    tree))
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(state)}


def assert_bitwise_equal(run_a, run_b, step):
    a, b = checkpoint_arrays(run_a, step), checkpoint_arrays(run_b, step)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


def wait_for_checkpoint(proc, run_parent, step, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        runs = list(run_parent.glob('*/checkpoints'))
        if runs and (runs[0] / str(step)).is_dir():
            return runs[0].parent
        time.sleep(0.05)
    raise TimeoutError(f'no checkpoint {step} after {timeout} s')


@pytest.fixture(scope='module')
def run_a(workspace):
    """The uninterrupted reference run."""
    result = run_main(workspace, *TRAIN_FLAGS, f'--save_dir={workspace / "a"}')
    assert result.returncode == 0, result.stderr[-3000:]
    return only_run_dir(workspace / 'a')


def test_a_run_writes_every_artefact(run_a):
    flags = json.loads((run_a / 'flags.json').read_text())
    assert flags['agent'] == 'cfgrl' and flags['train_steps'] == TRAIN_STEPS and 'resume' not in flags
    # `--config.actor_hidden_dims=32,32` (the documented tuple syntax) reached the agent as ints.
    assert json.loads((run_a / 'config.json').read_text())['actor_hidden_dims'] == [32, 32]
    session = json.loads((run_a / 'meta.json').read_text())['sessions'][0]
    assert session['packages']['jax'] and session['python'] and session['devices'] and 'revision' in session['git']
    assert session['cwd'] == str(REPO)  # What a relative --dataset_dir is relative to.

    lines = (run_a / 'eval.csv').read_text().splitlines()
    assert lines[0] == 'step,guidance,overall_success,task1,task2'
    assert len(lines) == 1 + 3 * (TRAIN_STEPS // 20)  # One row per evaluation step and weight.
    summary = json.loads((run_a / 'summary.json').read_text())
    assert summary['env_name'] == ENV and summary['agent'] == 'cfgrl' and summary['step'] == TRAIN_STEPS
    assert set(summary['guidance']) == {'0', '1', '2'}
    for entry in summary['guidance'].values():
        assert set(entry['task_success']) == {'task1', 'task2'}
        assert 0.0 <= entry['overall_success'] <= 1.0
    assert (run_a / 'success.png').stat().st_size > 0
    assert list((run_a / 'tb').glob('events.out.tfevents.*'))
    assert checkpoint_steps(run_a) == [60, 80, 100]  # max_to_keep = 3.
    train = (run_a / 'train.csv').read_text().splitlines()
    assert train[0].startswith('step,actor_loss') and 'val_loss' in train[0].split(',')
    assert len(train) == 1 + TRAIN_STEPS // 10  # One row per log step.


@pytest.mark.slow
def test_value_agents_log_value_diagnostics(workspace):
    result = run_main(workspace, '--agent=cfgrl_iql', '--env_name=pointmaze-medium-navigate-singletask-v0',
                      '--train_steps=10', '--log_interval=10', '--eval_episodes=0', '--config.batch_size=32',
                      '--config.actor_hidden_dims=32,32', '--config.value_hidden_dims=32,32',
                      f'--save_dir={workspace / "iql"}')
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (workspace / 'iql' / 'pointmaze-medium-navigate-singletask-v0' / 'cfgrl_iql').iterdir()
    columns = (run / 'train.csv').read_text().splitlines()[0].split(',')
    for key in ('v_mean', 'q_min', 'adv_max', 'adv_positive_fraction', 'optimal_fraction', 'val_loss'):
        assert key in columns
    from tensorboardX.proto import event_pb2  # The same diagnostics in TensorBoard.

    (events,) = (run / 'tb').glob('events.out.tfevents.*')
    tags = {v.tag for record in _tfrecords(events) for v in event_pb2.Event.FromString(record).summary.value}
    assert {'train/adv_mean', 'train/adv_positive_fraction', 'val/loss'} <= tags


def _tfrecords(path):
    data, records, i = path.read_bytes(), [], 0
    while i < len(data):
        length = int.from_bytes(data[i:i + 8], 'little')
        records.append(data[i + 12:i + 12 + length])
        i += 12 + length + 4
    return records


@pytest.mark.slow
def test_sigkill_then_resume_ends_bitwise_equal(workspace, run_a):
    proc = start_main(workspace, *TRAIN_FLAGS, f'--save_dir={workspace / "b"}')
    try:
        run_b = wait_for_checkpoint(proc, workspace / 'b' / ENV / 'cfgrl', 20)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert TRAIN_STEPS not in checkpoint_steps(run_b), 'the run finished before it was killed'
    result = run_main(workspace, f'--resume={run_b}')
    assert result.returncode == 0, result.stderr[-3000:]
    assert_bitwise_equal(run_a, run_b, TRAIN_STEPS)
    assert (run_b / 'eval.csv').read_text() == (run_a / 'eval.csv').read_text()
    sessions = json.loads((run_b / 'meta.json').read_text())['sessions']
    assert len(sessions) == 2 and sessions[1]['start_step'] >= 20


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_ends_bitwise_equal(workspace, run_a):
    proc = start_main(workspace, *TRAIN_FLAGS, f'--save_dir={workspace / "c"}')
    try:
        run_c = wait_for_checkpoint(proc, workspace / 'c' / ENV / 'cfgrl', 20)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert 'checkpoint saved' in out and 'Traceback' not in err
    stopped_at = checkpoint_steps(run_c)[-1]
    assert stopped_at < TRAIN_STEPS and stopped_at % 10 == 0
    result = run_main(workspace, f'--resume={run_c}')
    assert result.returncode == 0, result.stderr[-3000:]
    assert_bitwise_equal(run_a, run_c, TRAIN_STEPS)


@pytest.mark.slow
def test_eval_only_writes_a_new_folder_and_touches_nothing_else(workspace, run_a):
    before = {p: p.stat().st_mtime_ns for p in run_a.iterdir() if p.is_file()}
    result = run_main(workspace, '--eval_only', f'--restore_path={run_a / "checkpoints" / "80"}',
                      '--eval_guidance=0,4', '--eval_tasks=2', '--eval_max_steps=5', '--video_episodes=1')
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in run_a.iterdir() if p.is_file()} == before
    (out,) = (run_a / 'evals').iterdir()
    assert out.name.endswith('_step80')
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['step'] == 80 and set(summary['guidance']) == {'0', '4'}
    assert set(summary['guidance']['4']['task_success']) == {'task2'}
    assert sorted(p.name for p in (out / 'videos' / 'step_80').iterdir()) == ['w0_task2_ep0.gif', 'w4_task2_ep0.gif']
    assert 'overall' in result.stdout  # The result table.


def test_resume_with_other_settings_is_refused_naming_them(workspace, run_a):
    meta = (run_a / 'meta.json').read_text()
    result = run_main(workspace, f'--resume={run_a}', '--config.batch_size=64', '--seed=3')
    assert result.returncode == 2
    assert 'config.batch_size: 32 -> 64' in result.stderr and '--seed: 0 -> 3' in result.stderr
    assert '--force' in result.stderr
    assert (run_a / 'meta.json').read_text() == meta


@pytest.mark.slow
def test_a_run_directory_written_by_an_earlier_version_evaluates_and_resumes(workspace):
    """tests/fixtures/run_7c9eb26: a 20-step run written by main.py at commit 7c9eb26 (before train.csv)."""
    run = Path(shutil.copytree(REPO / 'tests' / 'fixtures' / 'run_7c9eb26', workspace / 'old_run'))
    flags = json.loads((run / 'flags.json').read_text())
    (run / 'flags.json').write_text(json.dumps({**flags, 'dataset_dir': str(workspace / 'data')}))
    result = run_main(workspace, '--eval_only', f'--restore_path={run}', '--eval_episodes=1', '--eval_tasks=1',
                      '--eval_max_steps=5')
    assert result.returncode == 0, result.stderr[-3000:]
    (out,) = (run / 'evals').iterdir()
    assert json.loads((out / 'summary.json').read_text())['step'] == 20
    result = run_main(workspace, f'--resume={run}', '--train_steps=30')
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoint_steps(run)[-1] == 30
    assert [row.split(',')[0] for row in (run / 'eval.csv').read_text().splitlines()[1:]] == ['20', '20', '30', '30']
    assert (run / 'train.csv').read_text().splitlines()[1].startswith('30,')


@pytest.mark.slow
def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(workspace, run_a):
    run = Path(shutil.copytree(run_a, workspace / 'nan_run'))
    result = run_main(workspace, f'--resume={run}', '--force', '--config.lr=1e30', f'--train_steps={TRAIN_STEPS + 40}')
    assert result.returncode == 1, result.stderr[-3000:]
    assert 'non-finite' in result.stdout and f'last good checkpoint: step {TRAIN_STEPS}' in result.stdout
    assert checkpoint_steps(run)[-1] == TRAIN_STEPS
    assert_bitwise_equal(run_a, run, TRAIN_STEPS)
    notes = json.loads((run / 'meta.json').read_text())['sessions'][-1]['notes']
    assert any('config.lr' in note for note in notes)


@pytest.fixture(scope='module')
def run_seeds(workspace):
    """Seeds 0 and 1 trained together (--num_seeds=2)."""
    result = run_main(workspace, *TRAIN_FLAGS, '--num_seeds=2', f'--save_dir={workspace / "seeds"}')
    assert result.returncode == 0, result.stderr[-3000:]
    assert '± std' in result.stdout
    return only_run_dir(workspace / 'seeds')


@pytest.mark.slow
def test_num_seeds_trains_each_seed_like_its_own_run(workspace, run_a, run_seeds):
    single = run_main(workspace, *TRAIN_FLAGS, '--seed=1', f'--save_dir={workspace / "seed1"}')
    assert single.returncode == 0, single.stderr[-3000:]
    stacked = checkpoint_arrays(run_seeds, TRAIN_STEPS)
    for k, alone in enumerate([checkpoint_arrays(run_a, TRAIN_STEPS),
                               checkpoint_arrays(only_run_dir(workspace / 'seed1'), TRAIN_STEPS)]):
        assert stacked.keys() == alone.keys()
        for key, value in alone.items():
            assert stacked[key].shape == (2, *value.shape), key
            if np.issubdtype(value.dtype, np.floating):
                np.testing.assert_allclose(stacked[key][k], value, rtol=1e-4, atol=1e-5, err_msg=key)
            else:  # RNG keys and update counters: exactly those of the single run.
                np.testing.assert_array_equal(stacked[key][k], value, err_msg=key)


@pytest.mark.slow
def test_num_seeds_reports_each_seed_and_their_mean(workspace, run_seeds):
    from scripts.aggregate import find_runs

    summary = json.loads((run_seeds / 'summary.json').read_text())
    assert summary['seeds'] == [0, 1] and set(summary['guidance']) == {'0', '1', '2'}
    for key, entry in summary['guidance'].items():
        per_seed = [json.loads((run_seeds / f'seed_{k}' / 'summary.json').read_text())['guidance'][key]
                    for k in (0, 1)]
        assert entry['overall_success_per_seed'] == [e['overall_success'] for e in per_seed]
        assert entry['overall_success'] == pytest.approx(np.mean(entry['overall_success_per_seed']))
        assert entry['overall_success_std'] == pytest.approx(np.std(entry['overall_success_per_seed']))
    assert (run_seeds / 'eval.csv').read_text().splitlines()[0].endswith('overall_success_std')
    for k in (0, 1):
        assert json.loads((run_seeds / f'seed_{k}' / 'flags.json').read_text())['seed'] == k
        assert (run_seeds / f'seed_{k}' / 'success.png').stat().st_size > 0
    # Aggregation counts the two seeds, not their mean as a third run.
    assert find_runs([str(run_seeds)]) == [str(run_seeds / 'seed_0'), str(run_seeds / 'seed_1')]


@pytest.mark.slow
def test_num_seeds_eval_only_and_refusals(workspace, run_seeds):
    result = run_main(workspace, '--eval_only', f'--restore_path={run_seeds}', '--eval_guidance=3',
                      '--eval_tasks=1', '--eval_max_steps=5')
    assert result.returncode == 0, result.stderr[-3000:]
    (out,) = (run_seeds / 'evals').iterdir()
    assert json.loads((out / 'summary.json').read_text())['seeds'] == [0, 1]
    assert (out / 'seed_1' / 'summary.json').exists()
    refused = run_main(workspace, f'--resume={run_seeds}', '--num_seeds=3', '--force')
    assert refused.returncode == 2 and 'cannot differ' in refused.stderr, refused.stderr[-2000:]
    refused = run_main(workspace, f'--resume={run_seeds / "seed_1"}')
    assert refused.returncode == 2 and 'one seed of the multi-seed run' in refused.stderr, refused.stderr[-2000:]


@pytest.mark.slow
def test_load_checkpoint_agent_rebuilds_the_stacked_seeds(run_seeds):
    """What the tools that read checkpoints (benchmarks, scripts.value_profile) restore: the run's own agent."""
    import jax

    from experiment.session import load_checkpoint_agent

    agent, meta, step = load_checkpoint_agent(str(run_seeds))
    assert (meta['agent'], meta['seeds'], step) == ('cfgrl', [0, 1], TRAIN_STEPS)
    saved = checkpoint_arrays(run_seeds, TRAIN_STEPS)
    leaves = jax.tree_util.tree_leaves_with_path(agent.network.params)
    assert len(leaves) > 4
    for path, leaf in leaves:  # Every parameter, stacked over the two seeds, equals the saved array.
        (key,) = [k for k in saved if 'params' in k and k.endswith(jax.tree_util.keystr(path))]
        assert leaf.shape[0] == 2
        np.testing.assert_array_equal(np.asarray(leaf), saved[key], err_msg=key)


@pytest.mark.slow
def test_two_processes_with_distributed_train_one_run_like_one_process(workspace, run_a):
    """Multi-host data parallelism through main.py, emulated by two CPU processes on this machine."""
    from tests.conftest import free_port, run_processes

    port = free_port()
    outputs = run_processes([_command(workspace, *TRAIN_FLAGS, f'--save_dir={workspace / "dist"}', '--distributed',
                                      f'--coordinator_address=localhost:{port}', '--num_processes=2',
                                      f'--process_id={i}') for i in (0, 1)],
                            timeout=600, cwd=REPO, env=_env(workspace))
    for code, _, err in outputs:
        assert code == 0, err[-3000:]
    assert 'Run directory' in outputs[0][1] and 'Run directory' not in outputs[1][1]  # Process 0 reports.
    run = only_run_dir(workspace / 'dist')  # One run directory for the job.
    assert len((run / 'eval.csv').read_text().splitlines()) == 1 + 3 * (TRAIN_STEPS // 20)
    assert 'distributed' not in json.loads((run / 'flags.json').read_text())
    a, b = checkpoint_arrays(run_a, TRAIN_STEPS), checkpoint_arrays(run, TRAIN_STEPS)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.parametrize('args,expected', [
    (['--agent=nope'], 'valid agents: awr, cfgrl'),
    (['--config.nope=1'], 'valid keys: actor_hidden_dims'),
    pytest.param(['--config.actor_hidden_dims=a,b'], 'tuple of int', marks=pytest.mark.slow),
    pytest.param(['--env_name=pointmaze-huge-navigate-v0'], 'pointmaze-medium', marks=pytest.mark.slow),
    pytest.param(['--eval_tasks=0,9'], '1..5', marks=pytest.mark.slow),
    pytest.param(['--num_seeds=0'], '--num_seeds must be positive', marks=pytest.mark.slow),
    pytest.param(['--unknown_flag=1'], 'Unknown command line flag', marks=pytest.mark.slow),
    (['--eval_guidance=1,x'], '--eval_guidance must be numbers'),
    pytest.param(['--eval_episodes=2', '--video_episodes=3'], '--video_episodes=3 exceeds --eval_episodes=2',
                 marks=pytest.mark.slow),
    pytest.param(['--eval_device=tpu'], '--eval_device=tpu: no such device', marks=pytest.mark.slow),
    (['--resume=/'], 'is not a run directory'),
])
def test_bad_command_lines_fail_before_any_work(workspace, args, expected):
    result = run_main(workspace, *args, f'--save_dir={workspace / "bad"}', timeout=120)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
    assert not (workspace / 'bad').exists()


def test_a_flagfile_chooses_the_agent_whose_config_keys_apply(workspace, tmp_path):
    flagfile = tmp_path / 'flags.txt'
    flagfile.write_text('--agent=gcbc\n--config.use_goals=False\n--config.nope=1\n')
    result = run_main(workspace, f'--flagfile={flagfile}', f'--save_dir={workspace / "bad"}', timeout=120)
    assert result.returncode == 2 and "Unknown config key 'nope' for agent 'gcbc'" in result.stderr, result.stderr
    assert not (workspace / 'bad').exists()


def test_schedule_chunks_divide_every_interval():
    schedule = Schedule(train_steps=1_000_000, log_interval=5_000, eval_interval=100_000, save_interval=250_000)
    assert schedule.chunk == 1_000
    odd = Schedule(train_steps=95, log_interval=30, eval_interval=45, save_interval=90)
    assert odd.chunk == 15 and odd.chunk_end(90) == 95 and odd.chunk_end(0) == 15
    assert odd.due(95, odd.eval_interval) and odd.due(45, odd.eval_interval) and not odd.due(30, odd.eval_interval)


def test_config_json_round_trip():
    from agents import get_config

    config = get_config('hcfgrl')
    config.actor_hidden_dims = (8, 8)
    restored = config_from_dict(json.loads(json.dumps(config_to_dict(config))))
    assert restored.to_dict() == config.to_dict() and isinstance(restored.actor_hidden_dims, tuple)
    assert restore.config_differences(config_to_dict(config), {**config_to_dict(config), 'lr': 1.0}) == [
        f'config.lr: {config.lr} -> 1.0']
    # A run saved before a key existed resumes under the key's default, and only under it.
    older = {k: v for k, v in config_to_dict(config).items() if k != 'p_aug'}
    assert restore.config_differences(older, config_to_dict(config)) == []
    assert restore.config_differences(older, {**config_to_dict(config), 'p_aug': 0.5}) == [
        'config.p_aug: <absent> -> 0.5']
