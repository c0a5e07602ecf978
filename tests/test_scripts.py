"""Sweep scripts are current, and the launchers run the cells they should with the extra flags appended."""
import json
import os
import subprocess
import tarfile

import pytest

from scripts.make_sweeps import SWEEPS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_checked_in_sweeps_match_the_generator():
    for name, make in SWEEPS.items():
        with open(os.path.join(REPO, 'scripts', name)) as f:
            assert f.read() == '\n'.join(make()) + '\n', f'{name} is stale: run python -m scripts.make_sweeps'


def test_every_cell_names_a_registered_agent_and_a_valid_dataset():
    from agents import AGENTS
    from datasets.families import check_dataset_name

    for name, make in SWEEPS.items():
        for line in make():
            if line.startswith('python '):
                flags = dict(part.split('=', 1) for part in line.split()[2:])
                assert flags['--agent'] in AGENTS
                check_dataset_name(flags['--env_name'])


def _sweep(tmp_path):
    path = tmp_path / 'sweep.sh'
    cells = [f'python -c "import sys; print(\'cell{i}\', sys.argv[1:])"' for i in range(4)]
    path.write_text('#!/usr/bin/env bash\n# comment\n' + '\n'.join(cells) + '\n')
    return str(path)


def test_local_launcher_appends_flags_and_selects_cells(tmp_path):
    env = dict(os.environ, CELLS='1-2')
    out = subprocess.run(['bash', os.path.join(REPO, 'scripts/launch_local.sh'), _sweep(tmp_path), '--x=1'],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "cell1 ['--x=1']" in out.stdout and "cell2 ['--x=1']" in out.stdout
    assert 'cell0' not in out.stdout.replace('[cell', '') and "cell3 [" not in out.stdout


def test_slurm_cell_runs_the_array_task_index(tmp_path):
    env = dict(os.environ, SLURM_ARRAY_TASK_ID='3', SLURM_SAVE_DIR=str(tmp_path / 'runs'))
    out = subprocess.run(['bash', os.path.join(REPO, 'scripts/slurm_cell.sh'), _sweep(tmp_path), '--y=2'],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"cell3 ['--y=2', '--save_dir={tmp_path}/runs/sweep/cell_3']" in out.stdout  # The cell's own folder.


def test_value_profile_bins_values_by_distance_to_the_goal():
    import numpy as np

    from scripts.value_profile import format_profile, value_profile

    xy = np.array([[0.5, 0.0], [0.0, 2.0], [3.0, 4.0], [0.0, 9.0], [20.0, 0.0]])
    values = np.array([-1.0, -3.0, -5.0, -7.0, -9.0])
    rows = value_profile(values, xy, np.zeros(2), [0, 1, 6, 10])
    assert [r[:3] for r in rows] == [(0, 1, 1), (1, 6, 2), (6, 10, 1)]  # The state 20 away is in no bin.
    assert rows[1][3:] == (-4.0, 1.0)
    assert format_profile(rows).splitlines()[3] == '| 1–6 | 2 | -4.0 ± 1.0 |'


def test_gpu_check_picks_run_steps_from_the_benchmark_rate(tmp_path):
    from scripts.gpu_check import run_steps, train_rate

    bench = {'rows': [{'num_seeds': 1, 'vmapped_updates_per_s': 50.0},
                      {'num_seeds': 8, 'vmapped_updates_per_s': 800.0}]}
    speed = {'rows': [{'size': 'small', 'chunked_updates_per_s': 900.0},
                      {'size': 'paper', 'chunked_updates_per_s': 40.0}]}
    assert run_steps(bench, speed, 8, 150) == 15000  # 100 stacked steps/s for 150 s, in hundreds.
    assert run_steps(bench, None, 8, 0.5) == 100  # At least one hundred.
    assert run_steps(bench, speed, 4, 150) == 1500  # No 4-seed row: one seed's rate of the paper's network / 4.
    assert run_steps(None, None, 8, 150) is None
    (tmp_path / 'train.csv').write_text('step,steps_per_sec,loss\n10,1.0,0\n20,30.0,0\n30,10.0,0\n40,20.0,0\n')
    assert train_rate(str(tmp_path)) == 20.0  # Median after the first row (compilation).


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_part_and_writes_its_report(tmp_path):
    archive = tmp_path / 'check.tar.gz'
    out = subprocess.run(['bash', os.path.join(REPO, 'scripts/gpu_check.sh'), '--smoke', f'--out_root={tmp_path}/out',
                          f'--archive={archive}'], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (folder,) = (tmp_path / 'out').iterdir()
    with tarfile.open(archive) as tar:
        assert f'{folder.name}/report.md' in tar.getnames()
    report = (folder / 'report.md').read_text()
    parts = ['train_speed', 'multi_seed', 'run_train', 'run_eval', 'guided_sampling-accelerator', 'guided_sampling-cpu',
             'eval_speed-accelerator', 'eval_speed-cpu']
    for part in parts:
        assert f'| {part} | ok (' in report, report
    for name in parts[:2] + parts[4:] + ['run_summary']:
        assert json.loads((folder / f'{name}.json').read_text())
    summary = json.loads((folder / 'run_summary.json').read_text())
    assert sorted(summary['guidance'], key=float) == ['0', '1', '1.5', '2', '3', '5'] and summary['seeds'] == [0, 1]
    assert '| 5 |' in report and 'the paper\'s 1,000,000 steps' in report


def test_value_profile_reads_the_runs_own_dataset_dir(tmp_path):
    from scripts.value_profile import run_dataset_dir

    step_dir = tmp_path / 'run' / 'checkpoints' / '100'
    step_dir.mkdir(parents=True)
    (tmp_path / 'run' / 'flags.json').write_text(json.dumps({'dataset_dir': 'runs/ogbench_data'}))
    for path in (tmp_path / 'run', tmp_path / 'run' / 'checkpoints', step_dir):
        assert run_dataset_dir(str(path)) == 'runs/ogbench_data'
    assert run_dataset_dir(str(tmp_path)) is None  # No run here: OGBench's default folder.
