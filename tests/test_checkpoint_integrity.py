"""A damaged checkpoint (truncated or flipped array data, damaged array metadata or meta) is reported in one line
naming its step and file, never deleted or overwritten; --resume and --eval_only of a run continue from the newest
intact checkpoint, naming it, and an explicit --restore_path of a damaged step is refused (exit 2)."""
import glob
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.test_main import ENV, REPO, _env, checkpoint_arrays, run_main, workspace  # noqa: F401

STEPS = 40
FLAGS = ['--agent=cfgrl', f'--train_steps={STEPS}', '--log_interval=20', '--eval_interval=20', '--save_interval=20',
         '--eval_episodes=0', '--config.actor_hidden_dims=32,32', '--config.batch_size=32']
EVAL = ['--eval_episodes=1', '--eval_tasks=1', '--eval_guidance=1', '--eval_max_steps=5']


@pytest.fixture(scope='module')
def run_b(workspace):  # noqa: F811
    """A 40-step run with checkpoints 20 and 40, no evaluation."""
    result = run_main(workspace, *FLAGS, f'--save_dir={workspace / "b"}')
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (workspace / 'b' / ENV / 'cfgrl').iterdir()
    return run


def largest_data_file(checkpoint):
    return Path(max(glob.glob(f'{checkpoint}/state/ocdbt.process_0/d/*'), key=os.path.getsize))


def damage(checkpoint, kind):
    """Damages `checkpoint` in place; returns the file damaged."""
    if kind == 'truncated array file':
        path = largest_data_file(checkpoint)
        os.truncate(path, 100)
    elif kind == 'flipped array bytes':
        path = largest_data_file(checkpoint)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x40
        path.write_bytes(bytes(data))
    elif kind == 'flipped array metadata':
        path = checkpoint / 'state' / '_METADATA'
        data = bytearray(path.read_bytes())
        data[10:20] = b'\xff' * 10
        path.write_bytes(bytes(data))
    elif kind == 'flipped meta':
        path = checkpoint / 'meta' / 'metadata'
        data = bytearray(path.read_bytes())
        data[5:9] = b'\xfe\xff\x00\x01'
        path.write_bytes(bytes(data))
    elif kind == 'truncated meta':
        path = checkpoint / 'meta' / 'metadata'
        os.truncate(path, 20)
    return path


def snapshot(folder):
    return {p: p.read_bytes() for p in Path(folder).rglob('*') if p.is_file()}


def damaged_copy(run, tmp_path, kind, step=STEPS):
    copy = Path(shutil.copytree(run, tmp_path / 'run'))
    return copy, damage(copy / 'checkpoints' / str(step), kind)


KINDS = ['truncated array file', 'flipped array bytes', 'flipped array metadata', 'flipped meta', 'truncated meta']


@pytest.mark.slow
@pytest.mark.parametrize('kind', KINDS)
def test_a_damaged_step_is_refused_in_one_line_and_kept(workspace, run_b, tmp_path, kind):  # noqa: F811
    run, path = damaged_copy(run_b, tmp_path, kind)
    before = snapshot(run)
    result = run_main(workspace, '--eval_only', f'--restore_path={run}/checkpoints/{STEPS}', *EVAL,
                      f'--save_dir={tmp_path / "evals"}')
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f'error: checkpoint step {STEPS} is damaged'), lines
    assert str(path) in lines[0]  # The file the damage is in.
    assert '_CHECKPOINT_METADATA' not in result.stderr  # Orbax's warning made every refusal two lines.
    assert snapshot(run) == before and not (tmp_path / 'evals').exists()


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['truncated array file', 'flipped array bytes', 'flipped meta'])
def test_eval_only_of_a_run_falls_back_to_the_newest_intact_checkpoint(workspace, run_b, tmp_path, kind):  # noqa: F811
    run, path = damaged_copy(run_b, tmp_path, kind)
    checkpoints = snapshot(run / 'checkpoints')
    result = run_main(workspace, '--eval_only', f'--restore_path={run}', *EVAL)
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith('warning:')]
    assert len(warnings) == 1 and f'checkpoint step {STEPS} is damaged' in warnings[0] and str(path) in warnings[0]
    assert 'Traceback' not in result.stderr and 'Exception ignored' not in result.stderr
    assert 'Using step 20, the newest intact checkpoint' in result.stdout
    (out,) = (run / 'evals').iterdir()
    assert json.loads((out / 'summary.json').read_text())['step'] == 20
    assert snapshot(run / 'checkpoints') == checkpoints  # Evaluation never touches a checkpoint.


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['flipped array bytes', 'truncated array file', 'flipped array metadata'])
def test_resume_continues_from_the_newest_intact_checkpoint_and_sets_the_damaged_one_aside(workspace, run_b,  # noqa: F811
                                                                                           tmp_path, kind):
    from experiment.checkpoints import Checkpointer

    run, path = damaged_copy(run_b, tmp_path, kind)
    damaged = snapshot(run / 'checkpoints' / str(STEPS))
    result = run_main(workspace, f'--resume={run}')
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith('warning:')]
    assert len(warnings) == 1 and str(path) in warnings[0] and f'{STEPS}.damaged' in warnings[0], warnings
    assert 'Traceback' not in result.stderr
    assert f'Resuming {run} from step 20, the newest intact checkpoint.' in result.stdout
    aside = run / 'checkpoints' / f'{STEPS}.damaged'  # Kept byte for byte, under a name orbax ignores.
    assert {p.relative_to(aside): b for p, b in snapshot(aside).items()} == {
        p.relative_to(run / 'checkpoints' / str(STEPS)): b for p, b in damaged.items()}
    checkpointer = Checkpointer(str(run / 'checkpoints'), create=False)
    assert checkpointer.all_steps() == [20, STEPS] and checkpointer.verify(STEPS)  # Step 40 trained again.


@pytest.mark.slow
def test_a_distributed_resume_sets_the_damaged_checkpoint_aside_once(workspace, run_b, tmp_path):  # noqa: F811
    """Two processes of one job read the same damaged step; process 0 alone renames it (after both have read) and
    reports it, and both then save that step anew instead of skipping it as existing."""
    import sys

    from experiment.checkpoints import Checkpointer
    from tests.conftest import free_port, run_processes

    run, path = damaged_copy(run_b, tmp_path, 'flipped array bytes')
    damaged = snapshot(run / 'checkpoints' / str(STEPS))
    port = free_port()
    outputs = run_processes([[sys.executable, 'main.py', f'--resume={run}', '--distributed',
                              f'--coordinator_address=localhost:{port}', '--num_processes=2', f'--process_id={i}']
                             for i in (0, 1)], timeout=600, cwd=REPO, env=_env(workspace))
    for code, _, err in outputs:
        assert code == 0 and 'Traceback' not in err, err[-3000:]
    warnings = [[line for line in err.splitlines() if line.startswith('warning:')] for _, _, err in outputs]
    assert len(warnings[0]) == 1 and str(path) in warnings[0][0] and f'{STEPS}.damaged' in warnings[0][0], warnings
    assert warnings[1] == []
    aside = run / 'checkpoints' / f'{STEPS}.damaged'
    assert {p.relative_to(aside): b for p, b in snapshot(aside).items()} == {
        p.relative_to(run / 'checkpoints' / str(STEPS)): b for p, b in damaged.items()}
    assert not (run / 'checkpoints' / f'{STEPS}.damaged-1').exists()  # Renamed once, not once per process.
    checkpointer = Checkpointer(str(run / 'checkpoints'), create=False)
    assert checkpointer.all_steps() == [20, STEPS] and checkpointer.verify(STEPS)
    # Both processes restored step 20 and trained on as the one-process run did (data-parallel: equal to rounding).
    a, b = checkpoint_arrays(run_b, STEPS), checkpoint_arrays(run, STEPS)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.slow
def test_the_nan_guards_last_good_checkpoint_is_a_verified_one(run_b, tmp_path):
    from experiment.checkpoints import Checkpointer
    from experiment.loop import Saver
    from experiment.run_dir import RunDir

    run, _ = damaged_copy(run_b, tmp_path, 'flipped array bytes')
    saver = Saver(Checkpointer(str(run / 'checkpoints'), create=False), {})
    assert saver.last(RunDir(str(run)), verified=True) == f'step 20 in {run}/checkpoints (verified)'
    assert saver.last(RunDir(str(run))) == f'step 40 in {run}/checkpoints'  # The newest, damaged or not.


@pytest.mark.slow
def test_a_digest_matches_what_was_written_and_catches_any_changed_value(run_b):
    import jax

    from experiment.checkpoints import Checkpointer, state_digest

    checkpointer = Checkpointer(str(run_b / 'checkpoints'), create=False)
    assert checkpointer.verify(20) is True
    digest = checkpointer.read_digest(20)['arrays']
    state = {'x': np.arange(6, dtype=np.float32).reshape(2, 3), 'k': jax.random.PRNGKey(0), 's': np.int32(3)}
    entries = state_digest(state)
    assert entries["['s']"]['shape'] == [] and entries["['x']"]['shape'] == [2, 3]
    state['x'][1, 2] = np.nextafter(np.float32(5), np.float32(6))  # One ulp.
    assert state_digest(state)["['x']"]['sha256'] != entries["['x']"]['sha256']
    assert all(entry['sha256'] for entry in digest.values())


def test_a_state_digest_records_shapes_and_changes_with_one_ulp():
    import jax

    from experiment.checkpoints import state_digest

    state = {'x': np.arange(6, dtype=np.float32).reshape(2, 3), 'k': jax.random.PRNGKey(0), 's': np.int32(3)}
    entries = state_digest(state)
    assert entries["['s']"]['shape'] == [] and entries["['x']"]['shape'] == [2, 3]
    assert entries["['x']"]['dtype'] == 'float32' and all(len(e['sha256']) == 64 for e in entries.values())
    state['x'][1, 2] = np.nextafter(np.float32(5), np.float32(6))
    assert state_digest(state)["['x']"]['sha256'] != entries["['x']"]['sha256']


def test_a_checkpoint_saved_before_digests_loads_with_a_note(capsys):
    from experiment.checkpoints import Checkpointer

    checkpointer = Checkpointer(str(REPO / 'tests' / 'fixtures' / 'run_7c9eb26' / 'checkpoints'), create=False)
    assert checkpointer.verify(20) is False  # Readable, not verifiable.
    assert checkpointer.newest_intact() == (20, None)
    err = capsys.readouterr().err
    assert err.count('has no digest (saved by an earlier version)') == 1 and 'Metadata file does not exist' not in err
