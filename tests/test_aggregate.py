"""The aggregation turns fixture run directories into the expected table."""
import json

import numpy as np
import pytest

from scripts.aggregate import _paired, collect, find_runs, gain_table, main, table, variant_label, versus_table, w_table


def _run(root, name, env, agent, config, guidance, step=1000):
    folder = root / name
    folder.mkdir(parents=True)
    summary = {'env_name': env, 'agent': agent, 'step': step,
               'guidance': {w: {'overall_success': s, 'task_success': {'task1': s, 'task2': s}}
                            for w, s in guidance.items()}}
    (folder / 'summary.json').write_text(json.dumps(summary))
    (folder / 'config.json').write_text(json.dumps(config))


def test_table_from_fixture_runs(tmp_path, capsys):
    env = 'pointmaze-large-navigate-oraclerep-v0'
    _run(tmp_path, 'a/s0', env, 'cfgrl', {'p_uncond': 0.1}, {'1': 0.5, '3': 0.7, '1.5': 0.9})
    _run(tmp_path, 'a/s1', env, 'cfgrl', {'p_uncond': 0.1}, {'1': 0.3, '3': 0.5, '1.5': 0.7})
    _run(tmp_path, 'b/s0', env, 'gcfbc', {'use_goals': True}, {'none': 0.4})
    _run(tmp_path, 'b/s1', env, 'gcfbc', {'use_goals': False}, {'none': 0.1})
    (tmp_path / 'a/s0/checkpoints').mkdir()  # Not a run.
    cells = collect(find_runs([str(tmp_path)]))
    assert set(cells) == {(env, 'cfgrl'), (env, 'gcfbc'), (env, 'flow_bc')}
    text = table(cells, fixed_w='3')
    row = next(line for line in text.splitlines() if '| cfgrl |' in line)
    # Best w is 1.5 (mean 80 ± 10); w = 3 gives 60 ± 10; the paper's CFGRL number for this task is 77.
    assert row == f'| {env} | cfgrl | 2 | 1000 | 1.5 | 80 ± 10 | 60 ± 10 | 77 |'
    gcfbc = next(line for line in text.splitlines() if '| gcfbc |' in line)
    assert gcfbc == f'| {env} | gcfbc | 1 | 1000 | none | 40 | – | 74 |'  # One seed: no '± 0'.
    per_w = w_table(cells)
    assert per_w.splitlines()[0] == '| env | variant | seeds | w = 1 | w = 1.5 | w = 3 |'
    assert per_w.splitlines()[2] == f'| {env} | cfgrl | 2 | 40 ± 10 | 80 ± 10 | 60 ± 10 |'
    assert len(per_w.splitlines()) == 3  # Unguided variants have no weights.
    # Paired by seed: w = 1.5 is +40 for both seeds; w = 3 is +20 for both, so the std of the gain is 0 although
    # each column's own std is 10.
    gains = gain_table(cells)
    assert gains.splitlines()[0] == '| env | variant | seeds | w = 1.5 | w = 3 |'
    assert gains.splitlines()[2] == f'| {env} | cfgrl | 2 | +40 ± 0 (2/2 up) | +20 ± 0 (2/2 up) |'
    assert len(gains.splitlines()) == 3
    main([str(tmp_path), '--out', str(tmp_path / 'out/table.md'), '--figures', str(tmp_path / 'fig')])
    assert (tmp_path / 'out/table.md').read_text().strip().startswith(text)
    assert per_w in (tmp_path / 'out/table.md').read_text()
    assert gains in (tmp_path / 'out/table.md').read_text()
    assert (tmp_path / 'fig' / f'{env}.png').stat().st_size > 1000


def test_variant_labels():
    assert variant_label('hcfgrl', {'p_uncond': 0.0}) == 'flow_hgcbc'
    assert variant_label('gcbc', {'use_goals': False}) == 'bc'
    assert variant_label('awr', {'alpha': 3.0}) == 'awr(alpha=3)'
    assert variant_label('cfgrl', {'p_uncond': 0.1}) == 'cfgrl'


def test_step_takes_each_runs_evaluation_at_that_step(tmp_path, capsys):
    env = 'cube-single-play-oraclerep-v0'
    for name, curve in (('s0', {500: (0.1, 0.3), 1000: (0.2, 0.6)}), ('s1', {500: (0.1, 0.5), 1000: (0.4, 0.8)})):
        _run(tmp_path, name, env, 'cfgrl', {'p_uncond': 0.1}, {'1': curve[1000][0], '3': curve[1000][1]})
        lines = ['step,guidance,overall_success,task1,task2']
        lines += [f'{step},{w},{s},{s},{s}' for step, (s1, s3) in curve.items() for w, s in (('1', s1), ('3', s3))]
        (tmp_path / name / 'eval.csv').write_text('\n'.join(lines) + '\n')
    _run(tmp_path, 'late', env, 'cfgrl', {'p_uncond': 0.1}, {'1': 0.9, '3': 0.9})
    (tmp_path / 'late' / 'eval.csv').write_text('step,guidance,overall_success,task1,task2\n1000,1,0.9,0.9,0.9\n')

    cell = collect(find_runs([str(tmp_path)]), step=500)[(env, 'cfgrl')]
    assert cell.steps == [500, 500] and cell.stats('1') == (10.0, 0.0) and cell.stats('3') == (40.0, 10.0)
    assert cell.tasks[1]['3'] == {'task1': 0.5, 'task2': 0.5}
    assert 'left out (no evaluation at step 500)' in capsys.readouterr().err  # The run evaluated at 1000 only.
    assert collect(find_runs([str(tmp_path)]))[(env, 'cfgrl')].steps == [1000, 1000, 1000]  # Default: the last.

    # --window=2: each run's mean over its last two evaluations; 'late' has one, and is left out, said so.
    cell = collect(find_runs([str(tmp_path)]), window=2)[(env, 'cfgrl')]
    assert cell.steps == [1000, 1000]
    assert cell.stats('1') == pytest.approx((20.0, 5.0)) and cell.stats('3') == pytest.approx((55.0, 10.0))
    assert cell.tasks[0]['3'] == pytest.approx({'task1': 0.45, 'task2': 0.45})
    assert 'left out (fewer than 2 evaluations)' in capsys.readouterr().err
    assert collect(find_runs([str(tmp_path)]), step=500, window=2) == {}  # One evaluation up to step 500.
    main([str(tmp_path), '--window', '2'])
    out = capsys.readouterr().out
    assert out.startswith('Each run scored by the mean of its last 2 evaluations')
    assert f'| {env} | cfgrl | 2 | 1000 | 3 | 55 ± 10 | 55 ± 10 | – |' in out


def test_exorl_runs_are_tabled_as_returns_unscaled(tmp_path):
    from scripts.aggregate import metric

    def exorl_run(name, agent, guidance):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        summary = {'env_name': 'exorl-walker-stand', 'agent': agent, 'step': 100,
                   'guidance': {w: {'overall_return': r, 'task_return': {'task1': r}} for w, r in guidance.items()}}
        (folder / 'summary.json').write_text(json.dumps(summary))
        (folder / 'config.json').write_text(json.dumps({'alpha': 3.0} if agent == 'awr' else {}))

    exorl_run('c0', 'cfgrl_exorl', {'1': 300.0, '10': 420.0})
    exorl_run('c1', 'cfgrl_exorl', {'1': 320.0, '10': 400.0})
    exorl_run('a0', 'awr', {'none': 384.0})
    cells = collect(find_runs([str(tmp_path)]))
    assert metric(cells) == 'return'
    text = table(cells, fixed_w='10')
    assert text.splitlines()[0].startswith('| env | variant | seeds | steps | best w | return at best w | return at w')
    # Returns are not multiplied by 100; the paper's Table 1 numbers stand beside them.
    assert '| exorl-walker-stand | cfgrl_exorl | 2 | 100 | 10 | 410 ± 10 | 410 ± 10 | 782 ± 8 |' in text
    assert '| exorl-walker-stand | awr(alpha=3) | 1 | 100 | none | 384 | – | 603 ± 8 |' in text
    assert gain_table(cells).splitlines()[2] == '| exorl-walker-stand | cfgrl_exorl | 2 | +100 ± 20 (2/2 up) |'
    _run(tmp_path, 'p0', 'pointmaze-large-navigate-oraclerep-v0', 'cfgrl', {'p_uncond': 0.1}, {'1': 0.5})
    assert metric(collect(find_runs([str(tmp_path)]))) == 'score'  # A mix says neither.


def test_configs_differing_in_a_key_no_agent_lists_are_never_averaged_as_seeds(tmp_path):
    env = 'pointmaze-large-navigate-oraclerep-v0'
    for p, scores in (('0.1', (0.2, 0.4)), ('0.2', (0.6, 0.8))):
        for seed, s in enumerate(scores):
            _run(tmp_path, f'p{p}/s{seed}', env, 'cfgrl', {'p_uncond': float(p)}, {'1': s, '3': s})
    cells = collect(find_runs([str(tmp_path)]))
    assert set(cells) == {(env, 'cfgrl(p_uncond=0.1)'), (env, 'cfgrl(p_uncond=0.2)')}
    assert cells[(env, 'cfgrl(p_uncond=0.1)')].stats('3') == (30.0, 10.0)
    assert cells[(env, 'cfgrl(p_uncond=0.2)')].stats('3') == (70.0, 10.0)
    row = next(line for line in table(cells).splitlines() if 'p_uncond=0.2' in line)
    assert row == f'| {env} | cfgrl(p_uncond=0.2) | 2 | 1000 | 1 | 70 ± 10 | 70 ± 10 | 77 |'  # The paper's CFGRL.


def test_flags_split_runs_unless_they_only_say_which_seed_or_how_it_ran(tmp_path):
    env = 'cube-single-play-oraclerep-v0'
    flags = {'agent': 'cfgrl', 'env_name': env, 'dataset_dir': None, 'eval_tasks': ['1', '2'], 'train_steps': 1000}
    runs = {'a0': {**flags, 'seed': 0}, 'a1': {**flags, 'seed': 1, 'train_steps': 2000, 'save_dir': 'elsewhere'},
            'b0': {**flags, 'seed': 0, 'dataset_dir': 'data/v2'}}
    for name, run_flags in runs.items():
        _run(tmp_path, name, env, 'cfgrl', {'p_uncond': 0.1, 'guidance_rule': 'cfg'}, {'1': 0.5})
        (tmp_path / name / 'flags.json').write_text(json.dumps(run_flags))
    # A run saved before a config key existed (here guidance_rule) and before a flag existed (eval_tasks): the key
    # counts at its default, and a flag some run lacks tells no run apart.
    _run(tmp_path, 'old', env, 'cfgrl', {'p_uncond': 0.1}, {'1': 0.5})  # No guidance_rule.
    (tmp_path / 'old' / 'flags.json').write_text(json.dumps({'agent': 'cfgrl', 'env_name': env, 'seed': 2,
                                                             'dataset_dir': None}))
    cells = collect(find_runs([str(tmp_path)]))
    assert {variant: len(cell.per_seed) for (_, variant), cell in cells.items()} == {
        'cfgrl(--dataset_dir=None)': 3, 'cfgrl(--dataset_dir=data/v2)': 1}


def test_curves_follow_each_variant_and_weight_over_steps(tmp_path):
    from scripts import curves

    env = 'pointmaze-large-navigate-oraclerep-v0'
    runs = {'c0': ('cfgrl', {'p_uncond': 0.1}, {100: {'1': 0.2, '3': 0.4}, 200: {'1': 0.4, '3': 0.8}}),
            'c1': ('cfgrl', {'p_uncond': 0.1}, {100: {'1': 0.4, '3': 0.6}}),  # Still running: one evaluation so far.
            'g0': ('gcfbc', {'use_goals': True}, {100: {'none': 0.3}, 200: {'none': 0.5}})}
    for name, (agent, config, evals) in runs.items():
        last = evals[max(evals)]
        _run(tmp_path, name, env, agent, config, last, step=max(evals))
        lines = ['step,guidance,overall_success,task1,task2']
        lines += [f'{step},{w},{s},{s},{s}' for step, ws in evals.items() for w, s in ws.items()]
        (tmp_path / name / 'eval.csv').write_text('\n'.join(lines) + '\n')
    data, name = curves.curves(find_runs([str(tmp_path)]))
    assert name == 'success'
    assert data[(env, 'cfgrl', '3')] == {100: (50.0, 10.0, 2), 200: (80.0, 0.0, 1)}
    assert data[(env, 'gcfbc', 'none')] == {100: (30.0, 0.0, 1), 200: (50.0, 0.0, 1)}
    text = curves.table(data, name)
    assert '| variant | 100 | 200 | mean of the last 2 |' in text
    assert '| cfgrl, w = 3 (2 seeds) | 50 ± 10 | 80 | 65 |' in text
    assert '| gcfbc (1 seed) | 30 | 50 | 40 |' in text  # One seed has no spread: no '± 0'.
    assert '| cfgrl, w = 3 (2 seeds) | 50 ± 10 | 80 | 80 |' in curves.table(data, name, window=1)
    curves.main([str(tmp_path), '--figures', str(tmp_path / 'fig')])
    assert (tmp_path / 'fig' / f'{env}_curves.png').stat().st_size > 1000


def test_versus_pairs_each_variant_with_a_separately_trained_baseline_by_seed(tmp_path, capsys):
    env = 'pointmaze-large-navigate-oraclerep-v0'
    # Seed 0 is the easy one for every agent; seed 2 of CFGRL has no gcfbc partner and is left out of the pairing.
    scores = {'cfgrl': {0: {'1': 0.6, '3': 0.8}, 1: {'1': 0.2, '3': 0.5}, 2: {'1': 0.9, '3': 0.9}},
              'gcfbc': {0: {'none': 0.7}, 1: {'none': 0.3}},
              'gcbc': {0: {'none': 0.5}, 1: {'none': 0.4}}}
    for agent, per_seed in scores.items():
        for seed, guidance in per_seed.items():
            _run(tmp_path, f'{agent}/seed_{seed}', env, agent, {}, guidance)
            (tmp_path / f'{agent}/seed_{seed}/flags.json').write_text(json.dumps({'seed': seed}))
    cells = collect(find_runs([str(tmp_path)]))
    lines = versus_table(cells, 'gcfbc').splitlines()
    assert lines[0] == '| env | variant | seeds paired | minus gcfbc, per weight |'
    # CFGRL − gcfbc by seed: w = 1: −10, −10; w = 3: +10, +20 (its unpaired seed 2 would have raised both).
    assert lines[2] == f'| {env} | cfgrl | 2 | w = 1: -10 ± 0 (0/2 up); w = 3: +15 ± 5 (2/2 up) |'
    assert lines[3] == f'| {env} | gcbc | 2 | unguided: -5 ± 15 (1/2 up) |'
    assert len(lines) == 4
    assert _paired(np.array([-5.0])) == '-5 (0/1 up)'  # One pair has no spread to show.
    main([str(tmp_path), '--versus', 'gcfbc'])
    assert 'Against the separately trained gcfbc, paired by seed' in capsys.readouterr().out
    with pytest.raises(SystemExit, match="No variant 'flow_hgcbc'.*'cfgrl', 'gcbc', 'gcfbc'"):
        main([str(tmp_path), '--versus', 'flow_hgcbc'])


def test_export_copies_result_files_and_sums_each_sessions_wall_time(tmp_path, capsys):
    import time

    from tensorboardX import SummaryWriter

    from scripts import export_runs

    run = tmp_path / 'runs' / 'env' / 'cfgrl' / '20261202-000000_s0-1'
    for folder in (run, run / 'seed_0', run / 'seed_1'):
        folder.mkdir(parents=True)
        for name in ('flags.json', 'summary.json', 'config.json', 'eval.csv'):
            (folder / name).write_text(json.dumps({'train_steps': 100, 'step': 60}) if name.endswith('json') else 'x')
    (run / 'meta.json').write_text('{}')
    (run / 'checkpoints' / '60').mkdir(parents=True)
    (run / 'checkpoints' / '60' / 'state').write_text('arrays')
    # Two sessions (a resume), each file opened now: 250 s, then 30 s; the time between sessions does not count.
    for suffix, start, offsets in (('.a', time.time(), (100, 250)), ('.b', time.time(), (10, 30))):
        writer = SummaryWriter(str(run / 'tb'), filename_suffix=suffix)
        writer.add_scalar('x', 0.0, 0, walltime=start)
        for step, offset in enumerate(offsets, 1):
            writer.add_scalar('x', 1.0, step, walltime=start + offset)
        writer.close()
    dest = tmp_path / 'results'
    export_runs.main([str(tmp_path / 'runs'), str(dest), '--finished'])  # At step 60 of 100: not copied.
    assert not dest.exists() or not any(dest.rglob('summary.json'))
    export_runs.main([str(tmp_path / 'runs'), str(dest)])
    copy = dest / 'env' / 'cfgrl' / '20261202-000000_s0-1'
    assert sorted(p.name for p in copy.iterdir()) == ['config.json', 'eval.csv', 'flags.json', 'meta.json', 'seed_0',
                                                       'seed_1', 'summary.json']
    assert sorted(p.name for p in (copy / 'seed_1').iterdir()) == ['config.json', 'eval.csv', 'flags.json',
                                                                   'summary.json']
    line = (dest / 'wall_times.txt').read_text().strip()
    seconds = int(line.split('wall_s=')[1].split()[0])
    assert abs(seconds - 280) <= 2 and '2 sessions' in line and line.endswith('step=60 in progress'), line
    # A second export replaces the run's line and keeps the others'.
    (dest / 'wall_times.txt').write_text('other/run wall_s=5 (0 min, 1 session) step=10 finished\n' + line + '\n')
    export_runs.main([str(tmp_path / 'runs'), str(dest)])
    lines = (dest / 'wall_times.txt').read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith('other/run') and lines[0] == line
