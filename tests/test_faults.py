"""Faults and bad input: each gives a correct result or one clear line, loses nothing, and fails before work
where its cause is knowable then. Real main.py processes get real signals; a full or read-only disk is a small
tmpfs or a read-only bind mount in a private mount namespace (`unshare -r -m`; those tests skip without it).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_main import (  # noqa: F401
    ENV,
    REPO,
    TRAIN_FLAGS,
    TRAIN_STEPS,
    _command,
    _env,
    assert_bitwise_equal,
    checkpoint_steps,
    only_run_dir,
    run_a,
    run_main,
    start_main,
    wait_for_checkpoint,
    workspace,
)


def _can_unshare() -> bool:
    try:
        return subprocess.run(['unshare', '-r', '-m', 'true'], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


needs_mounts = pytest.mark.skipif(not _can_unshare(), reason='needs private mount namespaces (unshare -r -m)')


def run_mounted(root, setup, *args, cwd=REPO, after='true', timeout=300):
    """main.py with `args` in a private mount namespace prepared by the shell commands `setup`; `after` runs once
    it exits (its status is main.py's, printed last as 'rc=N')."""
    command = ' '.join(f"'{part}'" for part in [sys.executable, str(REPO / 'main.py'), f'--dataset_dir={root / "data"}',
                                                 *args])
    script = f'set -e; {setup}; set +e; {command}; rc=$?; {after}; echo rc=$rc'
    result = subprocess.run(['unshare', '-r', '-m', 'sh', '-c', script], cwd=cwd, env=_env(root),
                            capture_output=True, text=True, timeout=timeout)
    result.returncode = int(result.stdout.strip().splitlines()[-1].split('=')[1])
    return result


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith('error:')]


def copy_run(run, destination):
    return Path(shutil.copytree(run, destination))


# ------------------------------------------------------------------------------------------------------------------
# 1. Non-finite actions.
# ------------------------------------------------------------------------------------------------------------------
class AlwaysSucceedsEnv:
    """An environment that reports success at every step: only the accounting can make an episode fail."""

    def __init__(self):
        import gymnasium

        self.action_space = gymnasium.spaces.Box(-1, 1, (2,), np.float32)
        self.t = 0

    def reset(self, seed=None, options=None):
        self.t = 0
        return np.zeros(2, np.float32), {'goal': np.ones(2, np.float32)}

    def step(self, action):
        assert np.isfinite(action).all(), 'a non-finite action reached the environment'
        self.t += 1
        return np.zeros(2, np.float32), 0.0, False, self.t >= 4, {'success': 1.0}

    def close(self):
        pass


def nan_at_weight_two(obs, goals, key, guidance):
    return np.where((guidance == 2)[:, None], np.nan, 0.1).astype(np.float32)


@pytest.mark.parametrize('mode', ['lockstep', 'sequential'])
def test_nonfinite_actions_are_failures_and_counted(mode):
    from evaluation.envs import LocalEnvs
    from evaluation.rollout import EvalPlan, evaluate_lockstep, evaluate_sequential

    plan = EvalPlan(task_ids=(1, 2), num_episodes=3, guidance=(1.0, 2.0))
    if mode == 'lockstep':
        result = evaluate_lockstep(nan_at_weight_two, LocalEnvs(AlwaysSucceedsEnv), plan, seed=0, step=5,
                                   progress=False)
    else:
        result = evaluate_sequential(nan_at_weight_two, AlwaysSucceedsEnv(), plan, seed=0, step=5, progress=False)
    assert result.overall_scores.tolist() == [1.0, 0.0]  # w = 2 emitted NaN in every episode.
    assert result.num_nonfinite == 6 and result.nonfinite[1].all() and not result.nonfinite[0].any()
    assert (result.lengths[1] == 1).all()  # Each ended at its first non-finite action.
    assert result.summary(ENV, 'cfgrl')['nonfinite_episodes'] == 6
    assert '6 of 12 episodes with non-finite actions' in result.table()


def test_nonfinite_actions_never_reach_mujoco(tmp_path, monkeypatch):
    from evaluation.envs import EnvFactory, LocalEnvs
    from evaluation.rollout import EvalPlan, evaluate_lockstep

    monkeypatch.chdir(tmp_path)
    plan = EvalPlan(task_ids=(1,), num_episodes=2)
    result = evaluate_lockstep(lambda obs, goals, key, w: np.full((len(obs), 2), np.nan, np.float32),
                               LocalEnvs(EnvFactory(ENV, 5)), plan, seed=0, step=0, progress=False)
    assert result.num_nonfinite == 2 and result.overall_scores.tolist() == [0.0]
    assert not (tmp_path / 'MUJOCO_LOG.TXT').exists()


@pytest.mark.slow
def test_a_checkpoint_whose_policy_samples_nan_is_not_saved(tmp_path):
    """Finite parameters whose policy overflows (what a negative learning rate makes) are not a good checkpoint."""
    import dataclasses

    import jax

    from agents import get_config
    from agents.seeds import create_agent
    from experiment import session
    from experiment.checkpoints import Checkpointer
    from experiment.loop import NonFiniteMetric, Saver
    from experiment.settings import Settings

    config = get_config('cfgrl')
    config.actor_hidden_dims, config.batch_size = (32, 32), 32
    fields = {f.name: None for f in dataclasses.fields(Settings)}
    settings = Settings(**{**fields, 'agent': 'cfgrl', 'seed': 0, 'num_seeds': 1, 'env_name': ENV,
                               'eval_guidance': ['0', '1', '2']})
    example = session.example_batch(ENV, config)
    agent = create_agent(settings.agent, settings.seeds, example, config)
    huge = agent.replace(network=agent.network.replace(
        params=jax.tree.map(lambda p: p * 1e30, agent.network.params)))
    assert all(bool(np.isfinite(leaf).all()) for leaf in jax.tree.leaves(huge.network.params))
    checkpointer = Checkpointer(str(tmp_path / 'checkpoints'))
    saver = Saver(checkpointer, {}, check_policy=session.policy_check(settings, example, guided=True))
    saver.save(10, agent, agent.rng)  # A sane policy is saved...
    with pytest.raises(NonFiniteMetric, match='non-finite actions sampled at step 20'):
        saver.save(20, huge, huge.rng)  # ...an overflowing one is not.
    assert checkpointer.latest_step() == 10


# ------------------------------------------------------------------------------------------------------------------
# 2. Repeated tuple overrides, 3. the run-directory lock, 7. bad config, shape-changing --force.
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_repeated_tuple_override_replaces_the_earlier_one(workspace, run_a, tmp_path):
    run = copy_run(run_a, tmp_path / 'run')
    # The run has [32, 32]: appending would make [64, 32, 32], a difference that --resume refuses.
    result = run_main(workspace, f'--resume={run}', '--config.actor_hidden_dims=64', '--config.actor_hidden_dims=32,32')
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run / 'config.json').read_text())['actor_hidden_dims'] == [32, 32]


def test_a_locked_run_is_refused_and_a_killed_holders_lock_is_not(workspace, run_a, tmp_path):
    from experiment.lock import RunLock

    run = copy_run(run_a, tmp_path / 'run')
    meta = (run / 'meta.json').read_text()
    holder = subprocess.Popen([sys.executable, '-c', 'import sys, time; from experiment.lock import RunLock; '
                               'RunLock(sys.argv[1]).acquire(); print("locked", flush=True); time.sleep(120)',
                               str(run)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        result = run_main(workspace, f'--resume={run}')
        assert result.returncode == 2, result.stderr[-2000:]
        assert error_lines(result.stderr) == result.stderr.strip().splitlines()
        assert f'in use by pid {holder.pid}' in result.stderr and 'Traceback' not in result.stderr
        assert (run / 'meta.json').read_text() == meta
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        holder.kill()
    assert (run / '.lock').exists()  # The killed holder's lock file stays behind, and does not block.
    RunLock(str(run)).acquire().release()


@pytest.mark.slow
def test_resume_from_another_folder_with_a_relative_dataset_dir_is_refused(workspace, run_a, tmp_path):
    from experiment.restore import check_relative_dataset_dir
    from experiment.run_dir import RunDir
    from experiment.settings import UsageError

    run = copy_run(run_a, tmp_path / 'run')
    flags, meta = json.loads((run / 'flags.json').read_text()), json.loads((run / 'meta.json').read_text())
    flags['dataset_dir'], meta['sessions'][0]['cwd'] = 'data', str(workspace)  # Started in workspace/ with data/.
    (run / 'flags.json').write_text(json.dumps(flags))
    (run / 'meta.json').write_text(json.dumps(meta))
    before = {p: p.read_bytes() for p in run.rglob('*') if p.is_file()}
    # From the repository, data/ would be a new, empty folder: the data would be regenerated there.
    result = subprocess.run([sys.executable, 'main.py', f'--resume={run}'], cwd=REPO, env=_env(workspace),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert f'was started in {workspace} with the relative --dataset_dir=data' in result.stderr
    assert f'cd {workspace}' in result.stderr and not (REPO / 'data').exists()
    assert {p: p.read_bytes() for p in run.rglob('*') if p.is_file()} == before
    # From the folder it started in, or with an absolute --dataset_dir, or saved before the folder was recorded: fine.
    cwd = os.getcwd()
    try:
        os.chdir(workspace)
        check_relative_dataset_dir(RunDir(str(run)), 'data')
    finally:
        os.chdir(cwd)
    check_relative_dataset_dir(RunDir(str(run)), str(workspace / 'data'))
    del meta['sessions'][0]['cwd']
    (run / 'meta.json').write_text(json.dumps(meta))
    check_relative_dataset_dir(RunDir(str(run)), 'data')
    with pytest.raises(UsageError):  # Any recorded session's folder counts, the first one that has it.
        meta['sessions'].append({'cwd': str(workspace)})
        (run / 'meta.json').write_text(json.dumps(meta))
        check_relative_dataset_dir(RunDir(str(run)), 'data')


@pytest.mark.slow
def test_resume_force_cannot_change_array_shapes(workspace, run_a, tmp_path):
    run = copy_run(run_a, tmp_path / 'run')
    before = {p: p.read_bytes() for p in run.rglob('*') if p.is_file()}
    result = run_main(workspace, f'--resume={run}', '--force', '--config.actor_hidden_dims=64,64')
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert '--force cannot change shapes' in result.stderr and '(32,) -> (64,)' in result.stderr
    assert {p: p.read_bytes() for p in run.rglob('*') if p.is_file()} == before  # Nothing touched.


@pytest.mark.parametrize('args,expected', [
    (['--config.batch_size=0'], 'config.batch_size must be positive'),
    pytest.param(['--config.actor_hidden_dims=0,8'], 'tuple of int > 0', marks=pytest.mark.slow),
    pytest.param(['--train_steps=0'], '--train_steps must be positive', marks=pytest.mark.slow),
])
def test_bad_values_fail_before_any_work(workspace, args, expected, tmp_path):
    result = run_main(workspace, *args, f'--save_dir={tmp_path / "runs"}', timeout=120)
    assert result.returncode == 2 and expected in result.stderr, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr and not (tmp_path / 'runs').exists()


# ------------------------------------------------------------------------------------------------------------------
# 4. A dataset holding NaN; stale temporary files of killed generations.
# ------------------------------------------------------------------------------------------------------------------
def test_nan_in_a_dataset_is_named_before_a_run_directory_is_made(workspace, tmp_path):
    data = Path(shutil.copytree(workspace / 'data', tmp_path / 'data'))
    path = data / f'{ENV}.npz'
    with np.load(path) as f:
        arrays = dict(f)
    arrays['observations'][7, 1] = np.nan
    np.savez_compressed(path, **arrays)
    result = run_main(workspace, f'--dataset_dir={data}', f'--save_dir={tmp_path / "runs"}')
    assert result.returncode == 2, result.stderr[-2000:]
    assert error_lines(result.stderr) == result.stderr.strip().splitlines()
    assert str(path) in result.stderr and "non-finite values (NaN or inf) in 'observations'" in result.stderr
    assert not (tmp_path / 'runs').exists()


def test_a_killed_generations_temporary_files_are_removed_by_the_next(tmp_path):
    from datasets.ogbench_gen.generate import generate

    killed = subprocess.Popen([sys.executable, '-m', 'datasets.ogbench_gen.generate', f'--dataset={ENV}',
                               '--num_episodes=200',
                               f'--dataset_dir={tmp_path}', '--workers=1'], cwd=REPO, env=_env(tmp_path),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not list(tmp_path.glob('*.shards')):
            assert killed.poll() is None and time.time() < deadline
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        killed.kill()
    running = tmp_path / f'.other.pid{os.getpid()}@{socket.gethostname().split(".")[0]}.x.shards'
    running.mkdir()  # A live generation's folder: kept.
    generate(ENV, num_episodes=1, episode_length=20, dataset_dir=str(tmp_path), workers=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, f'{ENV}.npz', f'{ENV}-val.npz'])


# ------------------------------------------------------------------------------------------------------------------
# 5. Disk full, 6. read-only places.
# ------------------------------------------------------------------------------------------------------------------
@needs_mounts
def test_disk_full_from_the_start_is_one_line_and_leaves_no_half_made_run(workspace, tmp_path):
    full = tmp_path / 'full'
    full.mkdir()
    result = run_mounted(workspace, f"mount -t tmpfs -o size=8k tmpfs '{full}'", *TRAIN_FLAGS,
                         f'--save_dir={full}/runs', after=f"find '{full}' -type f | sed 's/^/LEFT /'")
    assert result.returncode == 74, result.stderr[-2000:]
    assert error_lines(result.stderr) == [line for line in result.stderr.splitlines() if line.strip()]
    assert 'no space left on the device' in result.stderr and 'was removed' in result.stderr
    assert 'LEFT ' not in result.stdout  # No file is left behind.


@needs_mounts
@pytest.mark.slow
def test_disk_full_mid_run_is_one_line_and_resume_ends_bitwise_equal(workspace, run_a, tmp_path):
    full, saved = tmp_path / 'full', tmp_path / 'saved'
    full.mkdir()
    result = run_mounted(workspace, f"mount -t tmpfs -o size=300k tmpfs '{full}'", *TRAIN_FLAGS,
                         f'--save_dir={full}/runs', after=f"cp -a '{full}/runs' '{saved}'")
    assert result.returncode == 74, result.stderr[-2000:]
    # Orbax's writer threads may log their own tracebacks first; the run ends on one summary line.
    assert error_lines(result.stderr) == [line for line in result.stderr.splitlines() if line.strip()][-1:]
    assert 'no space left on the device' in result.stderr and 'is intact' in result.stderr
    run = only_run_dir(saved)  # "Free space": the run, copied off the full disk.
    assert 0 < checkpoint_steps(run)[-1] < TRAIN_STEPS
    resumed = run_main(workspace, f'--resume={run}')
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_bitwise_equal(run_a, run, TRAIN_STEPS)


def read_only(path):
    return f"mount --bind '{path}' '{path}' && mount -o remount,bind,ro '{path}'"


@needs_mounts
def test_a_read_only_save_dir_is_refused_before_work(workspace, tmp_path):
    place = tmp_path / 'ro'
    place.mkdir()
    result = run_mounted(workspace, read_only(place), *TRAIN_FLAGS, f'--save_dir={place}/runs')
    assert result.returncode == 2, result.stderr[-2000:]
    assert error_lines(result.stderr) == result.stderr.strip().splitlines()
    assert f'--save_dir: cannot write in {place} (read-only file system)' in result.stderr


@needs_mounts
@pytest.mark.slow
def test_eval_only_of_a_read_only_run_writes_under_save_dir(workspace, run_a, tmp_path):
    run, cwd = copy_run(run_a, tmp_path / 'run'), tmp_path / 'cwd'
    cwd.mkdir()
    result = run_mounted(workspace, read_only(run), '--eval_only', f'--restore_path={run}', '--eval_max_steps=5',
                         cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'Writing this evaluation under --save_dir=runs instead' in result.stdout
    (out,) = (cwd / 'runs' / ENV / 'cfgrl').iterdir()
    assert json.loads((out / 'summary.json').read_text())['step'] == TRAIN_STEPS
    assert not (run / 'evals').exists()


@pytest.mark.slow
def test_eval_only_uses_the_runs_evaluation_flags_and_says_so(workspace, run_a, tmp_path):
    result = run_main(workspace, '--eval_only', f'--restore_path={run_a}', '--eval_episodes=1',
                      '--eval_max_steps=5', f'--save_dir={tmp_path}')
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("Evaluating with --eval_episodes=1 --eval_tasks=1,2 --eval_guidance=0,1,2 --eval_max_steps=5 "
            "(not given: from the run's flags.json)") in result.stdout
    (out,) = (tmp_path / ENV / 'cfgrl').iterdir()  # An explicit --save_dir is where the evaluation goes.
    summary = json.loads((out / 'summary.json').read_text())
    assert set(summary['guidance']) == {'0', '1', '2'} and set(summary['guidance']['0']['task_success']) == {
        'task1', 'task2'}


# ------------------------------------------------------------------------------------------------------------------
# 8. SIGTERM / SIGUSR1 and the SLURM cell; a second Ctrl-C before any checkpoint.
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_saves_exits_for_requeue_and_resume_ends_bitwise_equal(workspace, run_a, tmp_path):
    proc = start_main(workspace, *TRAIN_FLAGS, f'--save_dir={tmp_path}')
    try:
        run = wait_for_checkpoint(proc, tmp_path / ENV / 'cfgrl', 20)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 75, err[-3000:]
    assert 'SIGTERM: stopping' in out and 'checkpoint saved' in out and 'Traceback' not in err
    assert checkpoint_steps(run)[-1] < TRAIN_STEPS
    result = run_main(workspace, f'--resume={run}')
    assert result.returncode == 0, result.stderr[-3000:]
    assert_bitwise_equal(run_a, run, TRAIN_STEPS)


@pytest.mark.slow
def test_sigusr1_requests_a_stop_for_requeue():
    code = ('import os, signal; from experiment.loop import GracefulStop, StopRequested\n'
            'with GracefulStop() as stop:\n'
            '    os.kill(os.getpid(), signal.SIGUSR1)\n'
            '    try:\n'
            '        stop.check()\n'
            '    except StopRequested:\n'
            '        print("stop", stop.exit_status)\n')
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and 'stop 75' in result.stdout, result.stderr[-2000:]


def test_slurm_cell_forwards_sigterm_requeues_and_resumes_its_run(tmp_path):
    cell = tmp_path / 'cell.py'
    cell.write_text('import signal, sys, time\nprint("argv", sys.argv[1:], flush=True)\n'
                    'if any(a.startswith("--resume=") for a in sys.argv): sys.exit(0)\n'
                    'signal.signal(signal.SIGTERM, lambda *_: sys.exit(75))\n'
                    'open(sys.argv[0] + ".ready", "w").close()\ntime.sleep(60)\n')
    sweep = tmp_path / 'sweep.sh'
    sweep.write_text(f'python {cell} --agent=x\n')
    scontrol = tmp_path / 'scontrol'
    scontrol.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/requeued\n')
    scontrol.chmod(0o755)
    env = dict(os.environ, SLURM_ARRAY_TASK_ID='0', SLURM_ARRAY_JOB_ID='7', SLURM_SAVE_DIR=str(tmp_path / 'runs'),
               SCONTROL=str(scontrol))
    launch = ['bash', str(REPO / 'scripts' / 'slurm_cell.sh'), str(sweep), '--seed=1']
    proc = subprocess.Popen(launch, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not Path(f'{cell}.ready').exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    save_dir = tmp_path / 'runs' / 'sweep' / 'cell_0'
    assert proc.returncode == 0, err
    assert f"argv ['--agent=x', '--seed=1', '--save_dir={save_dir}']" in out  # The cell's own folder.
    assert (tmp_path / 'requeued').read_text().strip() == 'requeue 7_0'
    run = save_dir / ENV / 'cfgrl' / '20260101-000000_s1'
    run.mkdir(parents=True)
    (run / 'config.json').write_text('{}')
    again = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert f"argv ['--resume={run}']" in again.stdout  # The requeued task continues the run it started.


def test_a_second_ctrl_c_before_any_checkpoint_says_none_exists(tmp_path, capsys):
    from experiment.checkpoints import Checkpointer
    from experiment.loop import EXIT_INTERRUPTED, Saver, Schedule, train_loop
    from experiment.run_dir import RunDir

    class Aborted:
        def run(self, *args):
            raise KeyboardInterrupt

    checkpointer = Checkpointer(str(tmp_path / 'checkpoints'))
    try:
        status = train_loop(None, None, 0, run=RunDir(str(tmp_path)), trainer=Aborted(), saver=Saver(checkpointer, {}),
                            evaluate=None, schedule=Schedule(10, 10, 10, 10), progress=False)
    except KeyboardInterrupt:  # Escaping, it would also stop pytest.
        pytest.fail('a second Ctrl-C escaped the training loop')
    assert status == EXIT_INTERRUPTED
    assert f'Aborted. Last checkpoint: none (--resume={tmp_path} would start from step 0).' in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------------------
# Dataset generation: a full disk and stopping signals end in one line, no worker outlives it, nothing is left.
# ------------------------------------------------------------------------------------------------------------------
def last_lines(stderr):
    """stderr without tqdm's progress bars."""
    return [line for line in stderr.replace('\r', '\n').splitlines() if line.strip() and 'ep/s' not in line
            and not line.startswith(ENV)]


@needs_mounts
@pytest.mark.parametrize('size,stage,workers', [('48k', '.shards/', 1), ('120k', '.partial', 2)])
def test_disk_full_during_generation_is_one_line_at_either_stage(tmp_path, size, stage, workers):
    # One worker at the shard stage: a pool worker stopped while still importing can have a grandchild (glfw's
    # version probe) print a BrokenPipeError of its own, a race outside this code.
    full = tmp_path / 'full'
    full.mkdir()
    command = (f"mount -t tmpfs -o size={size} tmpfs '{full}' && '{sys.executable}' -m datasets.ogbench_gen.generate "
               f"--dataset={ENV} --num_episodes=4 --episode_length=201 --dataset_dir='{full}/data' "
               f"--workers={workers}; "
               f"echo rc=$?; find '{full}/data' -mindepth 1 | sed 's/^/LEFT /'")
    result = subprocess.run(['unshare', '-r', '-m', 'sh', '-c', command], cwd=REPO, env=_env(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert 'rc=74' in result.stdout, result.stderr[-2000:]
    lines = last_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith('error: no space left on the device at '), lines
    assert stage in lines[0] and 'temporary files were removed' in lines[0]
    assert 'LEFT ' not in result.stdout


def _children(pid):
    try:
        return [int(p) for p in Path(f'/proc/{pid}/task/{pid}/children').read_text().split()]
    except FileNotFoundError:  # Gone meanwhile.
        return []


def _gone(pid, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] in 'ZX':
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def start_generation(folder, workers=2):
    proc = subprocess.Popen([sys.executable, '-m', 'datasets.ogbench_gen.generate', f'--dataset={ENV}',
                             '--num_episodes=400', f'--dataset_dir={folder}', f'--workers={workers}'],
                            cwd=REPO, env=_env(folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    # Until a block is written and every worker has finished importing (glfw probes its library in a child).
    while not list(folder.glob('*.shards/episodes_*')) or any(_children(w) for w in _children(proc.pid)):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize('signum,status', [(signal.SIGTERM, 143),
                                           pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])
def test_a_stopped_generation_says_so_ends_its_workers_and_leaves_nothing(tmp_path, signum, status):
    folder = tmp_path / 'data'
    folder.mkdir()
    proc = start_generation(folder)
    try:
        workers = _children(proc.pid)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err[-2000:]
    name = 'Ctrl-C' if signum == signal.SIGINT else 'SIGTERM'
    assert last_lines(err) == [f'error: generation stopped by {name}; no dataset file was written and the '
                               'temporary files were removed.'], err[-2000:]
    assert workers and all(_gone(pid) for pid in workers)
    assert not list(folder.iterdir())  # Shards and partial files removed.


@pytest.mark.slow
def test_generation_workers_end_with_a_killed_parent(tmp_path):
    folder = tmp_path / 'data'
    folder.mkdir()
    proc = start_generation(folder)
    try:
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        (shards,) = folder.glob('*.shards')
        blocks = sorted(shards.iterdir())
    finally:
        proc.kill()
    assert workers and all(_gone(pid, timeout=1) for pid in workers)  # At once, not after their current block...
    time.sleep(2)
    assert sorted(shards.iterdir()) == blocks  # ...so none writes into the leftover folder after its parent died.


# ------------------------------------------------------------------------------------------------------------------
# Signals outside the training loop: during start-up and during --eval_only.
# ------------------------------------------------------------------------------------------------------------------
def wait_for_handlers(proc, signums, timeout=60):
    """Waits until `proc` catches every signal of `signums` (its start-up handlers are installed)."""
    mask = sum(1 << (s - 1) for s in signums)
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        status = Path(f'/proc/{proc.pid}/status').read_text()
        caught = int(next(line for line in status.splitlines() if line.startswith('SigCgt:')).split()[1], 16)
        if caught & mask == mask:
            return
        time.sleep(0.01)
    raise TimeoutError('no signal handlers')


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_before_the_run_directory_exists_is_one_line(workspace, tmp_path, signum):
    proc = start_main(workspace, *TRAIN_FLAGS, f'--save_dir={tmp_path / "runs"}')
    try:
        wait_for_handlers(proc, [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT])
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 75, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'error: stopped by {signal.Signals(signum).name}'), lines
    assert not (tmp_path / 'runs').exists()


@pytest.mark.slow
@pytest.mark.parametrize('signum,status', [(signal.SIGTERM, 75), (signal.SIGINT, 130)])
def test_an_interrupted_eval_only_says_so_and_leaves_no_half_folder(workspace, run_a, tmp_path, signum, status):
    run = copy_run(run_a, tmp_path / 'run')
    proc = start_main(workspace, '--eval_only', f'--restore_path={run}', '--eval_episodes=50',
                      '--eval_max_steps=400', '--eval_workers=1')
    try:
        deadline = time.time() + 120
        while not list((run / 'evals').glob('*/flags.json')):
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(1)  # Into the rollouts.
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err[-2000:]
    lines = [line for line in err.replace('\r', '\n').splitlines() if line.strip() and 'eval @' not in line]
    name = 'Ctrl-C' if signum == signal.SIGINT else 'SIGTERM'
    assert len(lines) == 1 and lines[0].startswith(f'error: evaluation stopped by {name}; its unfinished folder')
    assert list((run / 'evals').iterdir()) == []  # Nothing for scripts/aggregate.py to read half of.


# ------------------------------------------------------------------------------------------------------------------
# No space at all, a failed write's temporary file, --eval_only of a read-only run into the same place.
# ------------------------------------------------------------------------------------------------------------------
FILL = "{{ dd if=/dev/zero of='{0}/fill' bs=4k 2>/dev/null || true; }}"


@pytest.mark.slow
@needs_mounts
def test_no_space_at_all_leaves_no_run_directory_nor_lock(workspace, tmp_path):
    full = tmp_path / 'full'
    full.mkdir()
    result = run_mounted(workspace, f"mount -t tmpfs -o size=64k tmpfs '{full}' && {FILL.format(full)}",
                         *TRAIN_FLAGS, f'--save_dir={full}/runs',
                         after=f"find '{full}/runs' -type f | sed 's/^/LEFT /'")
    assert result.returncode == 74, result.stderr[-2000:]
    assert error_lines(result.stderr) == result.stderr.strip().splitlines()
    assert 'held no checkpoint and was removed' in result.stderr
    assert 'LEFT ' not in result.stdout  # Not even a 0-byte .lock.


@pytest.mark.slow
@needs_mounts
def test_a_failed_write_of_a_resumed_run_leaves_no_temporary_file(workspace, run_a, tmp_path):
    full = tmp_path / 'full'
    full.mkdir()
    setup = f"mount -t tmpfs -o size=4m tmpfs '{full}' && cp -a '{run_a}' '{full}/run' && {FILL.format(full)}"
    result = run_mounted(workspace, setup, f'--resume={full}/run', f'--train_steps={TRAIN_STEPS + 20}',
                         after=f"find '{full}/run' -name '*.tmp' | sed 's/^/LEFT /'")
    assert result.returncode == 74, result.stderr[-2000:]
    assert error_lines(result.stderr)[-1].startswith('error: no space left on the device at ')
    assert 'is intact' in result.stderr and 'LEFT ' not in result.stdout


@pytest.mark.slow
@needs_mounts
def test_eval_only_of_a_read_only_run_into_the_same_read_only_place_is_refused(workspace, run_a, tmp_path):
    run = copy_run(run_a, tmp_path / 'ro' / 'run')
    result = run_mounted(workspace, read_only(tmp_path / 'ro'), '--eval_only', f'--restore_path={run}',
                         f'--save_dir={tmp_path / "ro"}', '--eval_max_steps=5')
    assert result.returncode == 2, result.stderr[-2000:]
    assert error_lines(result.stderr) == result.stderr.strip().splitlines()
    assert f'--save_dir: cannot write in {tmp_path / "ro"} (read-only file system)' in result.stderr
