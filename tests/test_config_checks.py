"""Every config key has a declared valid range (configs/checks.py), and a value outside it (or a non-finite
guidance weight) is one usage line naming the key and the range, exit 2, before any run directory exists."""
import pytest

from tests.test_main import run_main, workspace  # noqa: F401

TINY = ['--agent=cfgrl', '--train_steps=10', '--log_interval=10', '--eval_interval=10', '--save_interval=10',
        '--eval_episodes=0', '--config.actor_hidden_dims=32,32', '--config.batch_size=32']


def every_config():
    """(name, config) of every registered agent at its defaults, each baseline and its exorl-* overrides, every
    other module of configs/ with a get_config, and the ant expert's SAC config (in the data factory)."""
    import importlib
    import pkgutil

    import configs
    from agents import get_config, variants
    from datasets.ogbench_gen import sac_config
    from experiment.settings import default_config

    for name, overrides in variants():
        config = get_config(name)
        config.update(overrides)
        yield f'{name} {overrides or ""}', config
        yield f'{name} on exorl', default_config(name, 'exorl-walker-walk')
    for module in pkgutil.iter_modules(configs.__path__):
        get = getattr(importlib.import_module(f'configs.{module.name}'), 'get_config', None)
        if get is not None:
            yield f'configs.{module.name}', get()
    yield 'datasets.ogbench_gen.sac_config', sac_config.get_config()


def test_every_key_of_every_agents_config_has_a_check():
    from configs.checks import CHECKS, EXEMPT

    missing = {key: name for name, config in every_config() for key in config.keys()
               if key not in CHECKS and key not in EXEMPT}
    assert not missing, f'config keys without a check in configs/checks.py (key: agent): {missing}'
    assert not set(CHECKS) & set(EXEMPT)


def test_every_default_config_passes_its_checks():
    from configs.checks import check_values

    for _, config in every_config():
        check_values(config)


@pytest.mark.parametrize('key,value,expected', [
    ('flow_steps', 0, 'config.flow_steps must be an integer ≥ 1, got 0'),
    ('p_uncond', 1.0, 'config.p_uncond must be a finite number in [0, 1), got 1.0'),
    ('lr', float('nan'), 'config.lr must be a finite number in (0, ∞)'),
    ('discount', 1.0, 'config.discount must be a finite number in [0, 1)'),
    ('encoder', 'resnet', 'config.encoder must be unset (state observations) or one of impala'),
    ('p_randomgoal', 0.2, 'must sum to 1'),
    ('p_curgoal', -0.5, 'config.p_curgoal must be a finite number in [0, 1]'),
])
def test_a_value_outside_its_range_names_key_and_range(key, value, expected):
    from agents import get_config
    from experiment import cli

    config = get_config('cfgrl')
    config[key] = value
    with pytest.raises(cli.UsageError) as raised:
        cli.check_config(config, 'cfgrl')
    assert expected in str(raised.value)


@pytest.mark.parametrize('args,expected', [
    (['--config.flow_steps=0'], 'error: config.flow_steps must be an integer ≥ 1, got 0.'),
    pytest.param(['--config.p_curgoal=0.5'],
                 'error: config.p_curgoal + config.p_trajgoal + config.p_randomgoal must sum to 1',
                 marks=pytest.mark.slow),  # The checks themselves are tested in process above; one run each path.
    pytest.param(['--config.p_uncond=1.5'], 'error: config.p_uncond must be a finite number in [0, 1), got 1.5.',
                 marks=pytest.mark.slow),
    (['--eval_guidance=1,nan'], 'error: --eval_guidance must be finite numbers'),
    pytest.param(['--eval_guidance=1,inf', '--eval_episodes=1'], 'error: --eval_guidance must be finite numbers',
                 marks=pytest.mark.slow),
])
def test_bad_config_values_exit_2_in_one_line_before_a_run_directory(workspace, tmp_path, args, expected):  # noqa: F811
    result = run_main(workspace, *TINY, *args, f'--save_dir={tmp_path / "runs"}', timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and expected in result.stderr
    assert not (tmp_path / 'runs').exists()
