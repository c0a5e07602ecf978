"""One prepared command that proves the GPU path: the speed benchmarks and a paper-scale run, time-boxed, one report.

    bash scripts/gpu_check.sh --prepare   # here, with PyPI: wheels and the dataset into .gpu/; prints the command
    bash scripts/gpu_check.sh             # on the GPU machine (no network): installs .gpu/wheels, runs, reports
    bash scripts/gpu_check.sh --smoke     # any CPU, tiny sizes, about a minute (a test runs it)

The check runs each part as a subprocess with its own time box and stops cleanly at the overall budget, keeping
what finished. It writes <out_root>/<date>-<device>/: report.md, one JSON per benchmark, the run's summary.json
and log.txt (every part's output). Only the standard library is imported here, since the packages a part needs
may first have to be installed from the carried wheels.
"""
import argparse
import datetime
import glob
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Dict, List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARRY_DIR = '.gpu'  # Ignored by git; travels to the GPU machine as the command's carried folders.
WHEELS, DATA = os.path.join(CARRY_DIR, 'wheels'), os.path.join(CARRY_DIR, 'data')
# Where the wheels are installed: one folder per Python version, since compiled wheels fit only their own.
SITE = os.path.join(CARRY_DIR, f'site-{sys.version_info.major}.{sys.version_info.minor}')
CARRY_LIMIT_MB = 64
# What the GPU machine lacks, pinned as in requirements.txt. dm_control (56 MB) is left out: pointmaze needs none.
WHEEL_PINS = ['ogbench==1.2.2', 'mujoco==4.0.0', 'mujoco-core==4.0.0', 'glfw==2.11.0', 'PyOpenGL==3.1.10',
              'gymnasium==1.4.0', 'farama-notifications==0.0.6', 'cloudpickle==3.1.3', 'ml_collections==1.1.0',
              'tensorboardX==2.6.5']
CARRIED_MODULES = ['ogbench', 'mujoco', 'gymnasium', 'ml_collections', 'tensorboardX']
TARGET = {'python': '3.12', 'platform': 'manylinux_2_28_x86_64'}
ENV_NAME = 'pointmaze-large-navigate-oraclerep-v0'
DATASET = 'pointmaze-large-navigate-v0'  # The file ENV_NAME reads.
PAPER_STEPS, PAPER_SEEDS = 1_000_000, 8
GUIDANCE = '0,1,1.5,2,3,5'

# Full check: seconds per part (each also capped by what is left of --budget_s) and the run's sizes.
FULL = {
    'boxes': {'train_speed': 110, 'multi_seed': 100, 'run_train': 180, 'run_eval': 150,
              'guided_sampling-accelerator': 45, 'guided_sampling-cpu': 60, 'eval_speed-accelerator': 90,
              'eval_speed-cpu': 90},
    'train_speed': ['--sizes=paper,small', '--repeats=3'],
    'multi_seed': ['--seeds=1,8', '--hidden_dims=512,512,512,512', '--batch_size=1024', '--repeats=3'],
    'guided_sampling': ['--sizes=small,paper', '--batch_sizes=1,250,1024', '--repeats=3', '--min_time=0.1'],
    'eval_speed': ['--sequential_episodes=1'],
    'run_train_s': 120,  # Training time aimed at, from the multi-seed benchmark's rate; the box covers the rest.
    'run': {'num_seeds': PAPER_SEEDS, 'eval_episodes': 20, 'config': [], 'eval': []},
}
SMOKE = {
    'boxes': {'train_speed': 120, 'multi_seed': 120, 'run_train': 150, 'run_eval': 120,
              'guided_sampling-accelerator': 90, 'guided_sampling-cpu': 90, 'eval_speed-accelerator': 120,
              'eval_speed-cpu': 120},
    'train_speed': ['--sizes=smoke', '--repeats=1', '--chunk=5'],
    'multi_seed': ['--seeds=2', '--hidden_dims=16,16', '--batch_size=16', '--steps=5', '--chunk=5', '--repeats=1'],
    'guided_sampling': ['--sizes=smoke', '--batch_sizes=4', '--flow_steps=2', '--repeats=1', '--min_time=0.001'],
    'eval_speed': ['--tasks=1', '--episodes=1', '--guidance=0,3', '--hidden_dims=16,16', '--max_steps=5',
                   '--workers=0', '--sequential_episodes=1'],
    'run': {'num_seeds': 2, 'eval_episodes': 1, 'train_steps': 20,
            'config': ['--config.actor_hidden_dims=16,16', '--config.batch_size=16', '--config.flow_steps=2'],
            'eval': ['--eval_tasks=1,2', '--eval_max_steps=5', '--eval_workers=0'],
            'dataset': ['--num_episodes=2', '--episode_length=30', '--workers=1']},
}


def python() -> str:
    """The interpreter of every part: this one (the wrapper picks .venv's where it exists)."""
    return sys.executable


def part_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ, MUJOCO_GL=os.environ.get('MUJOCO_GL', 'egl'), PYTHONUNBUFFERED='1')
    site = os.path.join(REPO, SITE)
    paths = [REPO] + ([site] if os.path.isdir(site) else []) + [p for p in env.get('PYTHONPATH', '').split(':') if p]
    env['PYTHONPATH'] = ':'.join(paths)
    env.update(extra or {})
    return env


def folder_mb(path: str) -> float:
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(path, '**'), recursive=True)
               if os.path.isfile(f)) / 2 ** 20


# ----------------------------------------------------------------------------------------------------------------
# --prepare: here, with the package registry.
# ----------------------------------------------------------------------------------------------------------------
def prepare(with_dataset: bool) -> int:
    wheels = os.path.join(REPO, WHEELS)
    os.makedirs(wheels, exist_ok=True)
    cmd = [python(), '-m', 'pip', 'download', '--quiet', '--no-deps', '--only-binary=:all:', '--implementation', 'cp',
           '--python-version', TARGET['python'], '--platform', TARGET['platform'], '--dest', wheels] + WHEEL_PINS
    print('Downloading wheels:', ' '.join(WHEEL_PINS))
    if subprocess.run(cmd).returncode != 0:
        print('gpu_check --prepare: pip download failed (see above); nothing else was done.', file=sys.stderr)
        return 1
    carry = [WHEELS]
    if with_dataset:
        data = os.path.join(REPO, DATA)
        if not os.path.exists(os.path.join(data, f'{DATASET}.npz')):
            print(f'Regenerating {DATASET} into {DATA} (a few minutes on 2 cores)...')
            rc = subprocess.run([python(), '-m', 'datasets.ogbench_gen.generate', f'--dataset={DATASET}',
                                 f'--dataset_dir={data}'],
                                cwd=REPO, env=part_env()).returncode
            if rc != 0:
                print('gpu_check --prepare: dataset generation failed (see above).', file=sys.stderr)
                return 1
        carry.append(DATA)
    sizes = {path: folder_mb(os.path.join(REPO, path)) for path in carry}
    total = sum(sizes.values())
    for path, mb in sizes.items():
        print(f'  {path}: {mb:.1f} MiB')
    print(f'  total carried: {total:.1f} MiB (limit {CARRY_LIMIT_MB} MiB, the working tree excluded)')
    if total > CARRY_LIMIT_MB:
        print(f'gpu_check --prepare: {total:.1f} MiB exceeds the {CARRY_LIMIT_MB} MiB carry limit; rerun with '
              '--no_dataset (the check then regenerates the dataset there).', file=sys.stderr)
        return 1
    print('\nOn the GPU machine, from the repository root, carrying ' + ', '.join(carry) + ':')
    print('  bash scripts/gpu_check.sh --archive="$OUT/gpu_check.tar.gz"')
    print('then unpack the archive into results/gpu/ and commit it.')
    return 0


def install_wheels() -> List[str]:
    """Installs the carried wheels into SITE (on PYTHONPATH for every part) where this Python lacks the packages
    they bring; returns report lines."""
    wheels = sorted(glob.glob(os.path.join(REPO, WHEELS, '*.whl')))
    missing = [name for name in CARRIED_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return ['the carried packages are already installed']
    if not wheels:
        raise RuntimeError(f'{", ".join(missing)} not installed and no wheels in {WHEELS}: run '
                           '`bash scripts/gpu_check.sh --prepare` on a machine with PyPI first')
    site = os.path.join(REPO, SITE)
    stamp = os.path.join(site, '.installed')
    if os.path.exists(stamp) and open(stamp).read().split('\n') == [os.path.basename(w) for w in wheels]:
        return [f'{len(wheels)} carried wheels already installed in {SITE}']
    shutil.rmtree(site, ignore_errors=True)
    out = subprocess.run([python(), '-m', 'pip', 'install', '--quiet', '--no-index', '--no-deps', '--target', site]
                         + wheels, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'installing the carried wheels failed:\n{out.stderr[-2000:]}')
    with open(stamp, 'w') as f:
        f.write('\n'.join(os.path.basename(w) for w in wheels))
    return [f'installed {len(wheels)} carried wheels into {SITE}']


VERSIONS_CODE = r'''
import importlib.metadata as md, json, os, platform, sys
import jax
names = ['jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'chex', 'ml_collections', 'ogbench', 'mujoco', 'numpy']
out = {'python': platform.python_version(), 'cpu_cores': os.cpu_count(),
       'devices': [f'{d.platform}:{d.device_kind}' for d in jax.devices()]}
for n in names:
    try:
        out[n] = md.version(n)
    except md.PackageNotFoundError:
        out[n] = None
import ogbench, ml_collections, tensorboardX  # The carried packages import.
print(json.dumps(out))
'''


# ----------------------------------------------------------------------------------------------------------------
# The check.
# ----------------------------------------------------------------------------------------------------------------
class Check:
    """Runs parts in time boxes under an overall budget; collects their status and output."""

    def __init__(self, budget_s: float, log_path: str):
        self.deadline = time.monotonic() + budget_s
        self.log = open(log_path, 'w')
        self.status: Dict[str, str] = {}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, cmd: List[str], box: float, env_extra=None) -> Optional[int]:
        """Runs `cmd` for at most min(box, budget left); SIGINT at the limit (main.py saves and exits), then kill.
        Returns the exit status, or None when the part did not start or was stopped."""
        limit = min(box, self.left())
        if limit < 10:
            self.status[name] = 'skipped: the overall budget is spent'
            return None
        print(f'[gpu_check] {name} (time box {limit:.0f} s): {" ".join(cmd[1:])}', flush=True)
        self.log.write(f'\n===== {name}: {" ".join(cmd)}\n')
        self.log.flush()
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO, env=part_env(env_extra), stdout=self.log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)  # main.py finishes its chunk and saves a checkpoint.
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            self.status[name] = f'stopped at its time box ({limit:.0f} s)'
            return None
        finally:
            self.log.flush()
        seconds = time.monotonic() - start
        self.status[name] = f'ok ({seconds:.0f} s)' if rc == 0 else f'failed with status {rc} ({seconds:.0f} s)'
        return rc


def load_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run_steps(multi_seed: Optional[dict], train_speed: Optional[dict], num_seeds: int, train_s: float
              ) -> Optional[int]:
    """Training steps (a multiple of 100) that fill about `train_s` seconds: at the multi-seed benchmark's rate for
    `num_seeds`, else at the training benchmark's single-seed rate of the paper's network divided by `num_seeds`
    (what stacking costs on a CPU, an upper bound on an accelerator)."""
    rows = {r['num_seeds']: r for r in (multi_seed or {}).get('rows', [])}
    paper = [r for r in (train_speed or {}).get('rows', []) if r['size'] == 'paper']
    if num_seeds in rows:
        steps_per_s = rows[num_seeds]['vmapped_updates_per_s'] / num_seeds
    elif paper:
        steps_per_s = paper[0]['chunked_updates_per_s'] / num_seeds
    else:
        return None
    return int(max(100, min(PAPER_STEPS, steps_per_s * train_s // 100 * 100)))


def paper_run(check: Check, sizes: dict, out_dir: str, work_dir: str, results: Dict[str, Optional[dict]]
              ) -> dict:
    """main.py --agent=cfgrl on ENV_NAME with the config defaults and stacked seeds, then --eval_only of whatever
    checkpoint it reached (a run stopped at its time box saves one); returns what the report shows."""
    spec = sizes['run']
    carried = os.path.join(REPO, DATA)
    # The smoke run always regenerates its tiny dataset, so that the regeneration path is exercised too.
    data_dir = carried if os.path.exists(os.path.join(carried, f'{DATASET}.npz')) and 'dataset' not in spec else \
        os.path.join(work_dir, 'data')
    info = {'dataset_dir': data_dir, 'num_seeds': spec['num_seeds']}
    if not os.path.exists(os.path.join(data_dir, f'{DATASET}.npz')):  # Regenerate with every core.
        check.run('dataset', [python(), '-m', 'datasets.ogbench_gen.generate', f'--dataset={DATASET}',
                              f'--dataset_dir={data_dir}']
                  + spec.get('dataset', []), box=240)
    steps = spec.get('train_steps') or run_steps(results['multi_seed'], results['train_speed'], spec['num_seeds'],
                                                 sizes['run_train_s'])
    info['steps_from'] = 'fixed' if spec.get('train_steps') else 'the benchmarks\' rate' if steps else 'fallback'
    steps = steps or 1000
    info['train_steps'] = steps
    save_dir = os.path.join(work_dir, 'runs')
    log_interval = max(10, min(steps // 10, 200))  # Also the chunk: a stop at the time box waits for one chunk.
    cmd = [python(), 'main.py', '--agent=cfgrl', f'--env_name={ENV_NAME}', f'--dataset_dir={data_dir}',
           f'--num_seeds={spec["num_seeds"]}', f'--train_steps={steps}', f'--log_interval={log_interval}',
           f'--save_interval={steps}', '--eval_episodes=0', f'--save_dir={save_dir}'] + spec['config']
    info['command'] = ' '.join(['python'] + cmd[1:])
    start = time.monotonic()
    check.run('run_train', cmd, box=sizes['boxes']['run_train'])
    info['train_wall_s'] = time.monotonic() - start
    runs = sorted(glob.glob(os.path.join(save_dir, ENV_NAME, 'cfgrl', '*')))
    if not runs:
        return info
    info['steps_per_s'] = train_rate(runs[-1])
    eval_cmd = [python(), 'main.py', '--eval_only', f'--restore_path={runs[-1]}',
                f'--eval_episodes={spec["eval_episodes"]}', f'--eval_guidance={GUIDANCE}'] + spec['eval']
    info['eval_command'] = ' '.join(['python'] + eval_cmd[1:])
    check.run('run_eval', eval_cmd, box=sizes['boxes']['run_eval'])
    summaries = sorted(glob.glob(os.path.join(runs[-1], 'evals', '*', 'summary.json')))
    if summaries:
        info['summary'] = load_json(summaries[-1])
        shutil.copy(summaries[-1], os.path.join(out_dir, 'run_summary.json'))
    return info


def train_rate(run: str) -> Optional[float]:
    """Median training steps/s of a run's train.csv rows after the first (which includes compilation)."""
    path = os.path.join(run, 'train.csv')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        header, *rows = [line.strip().split(',') for line in f if line.strip()]
    if 'steps_per_sec' not in header or len(rows) < 2:
        return None
    rates = sorted(float(r[header.index('steps_per_sec')]) for r in rows[1:])
    return rates[len(rates) // 2]


# ----------------------------------------------------------------------------------------------------------------
# The report.
# ----------------------------------------------------------------------------------------------------------------
def md_table(columns: List[str], rows: List[list]) -> List[str]:
    return ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)] + \
        ['| ' + ' | '.join(map(str, row)) + ' |' for row in rows]


def fmt_s(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    return f'{hours} h {rest // 60:02d} min' if hours else f'{rest // 60} min {rest % 60:02d} s'


def report(versions: dict, install: List[str], check: Check, results: Dict[str, Optional[dict]], run: dict,
           smoke: bool, budget_s: float, wall_s: float) -> str:
    lines = [f'# GPU check {"(smoke, CPU-sized: proves the code path, measures nothing)" if smoke else ""}'.rstrip(),
             '', f'Date {datetime.date.today()}; devices {", ".join(versions.get("devices", ["?"]))}; '
             f'{versions.get("cpu_cores")} CPU cores; Python {versions.get("python")}; jax {versions.get("jax")}, '
             f'jaxlib {versions.get("jaxlib")}, flax {versions.get("flax")}, optax {versions.get("optax")}, '
             f'orbax {versions.get("orbax-checkpoint")}, ogbench {versions.get("ogbench")}, '
             f'mujoco {versions.get("mujoco")}.', f'Install: {"; ".join(install)}.',
             f'Command: `bash scripts/gpu_check.sh{" --smoke" if smoke else ""}`; budget {budget_s:.0f} s, '
             f'took {wall_s:.0f} s.', '']
    lines += md_table(['part', 'status'], list(check.status.items()))

    net = lambda dims: '×'.join(map(str, dims))  # noqa: E731
    ts = results.get('train_speed')
    if ts:
        lines += ['', '## Training: compiled chunks vs the classic loop (`benchmarks.train_speed`)', '']
        lines += md_table(['network', 'batch', 'chunks (updates/s)', 'classic (updates/s)', 'ratio', 'GFLOP/s'],
                          [[net(r['hidden_dims']), r['batch_size'], f'{r["chunked_updates_per_s"]:.0f}',
                            f'{r["classic_updates_per_s"]:.0f}', f'{r["speedup"]:.2f}×',
                            f'{r["achieved_flops_per_s"] / 1e9:.0f}'] for r in ts['rows']])
        lines.append('Target at the paper\'s network on a GPU: chunks ≥ 5× the classic loop.')
    ms = results.get('multi_seed')
    if ms:
        lines += ['', f'## Seeds in one process (`benchmarks.multi_seed`, {net(ms["hidden_dims"])}, batch '
                  f'{ms["batch_size"]})', '', f'One seed: {ms["one_seed_s"]:.3f} s per {ms["steps_per_seed"]} updates.',
                  '']
        lines += md_table(['seeds', 'vmapped s', 'sequential s', 'sequential ÷ vmapped', 'vmapped ÷ one seed'],
                          [[r['num_seeds'], f'{r["vmapped_s"]:.3f}', f'{r["sequential_s"]:.3f}',
                            f'{r["sequential_over_vmapped"]:.2f}×', f'{r["vmapped_over_one_seed"]:.2f}×']
                           for r in ms['rows']])
        lines.append('Target on a GPU: 8 vmapped seeds ≤ 2× one seed.')
    for key, label in (('guided_sampling-accelerator', 'default device'), ('guided_sampling-cpu', 'CPU')):
        gs = results.get(key)
        if gs:
            lines += ['', f'## Guided sampling, policy on the {label}: {gs["device"]} (`benchmarks.guided_sampling`, '
                      f'{gs["flow_steps"]} flow steps), actions/s', '']
            lines += md_table(['network', 'batch', 'fused', 'two passes', 'unguided'],
                              [[net(r['hidden_dims']), r['batch_size']]
                               + [f'{r["actions_per_s"][k]:.0f}' for k in ('fused', 'two passes', 'unguided')]
                               for r in gs['rows']])
    evals = [results[k] for k in ('eval_speed-accelerator', 'eval_speed-cpu') if results.get(k)]
    if evals:
        es = evals[0]
        lines += ['', f'## Evaluation (`benchmarks.eval_speed`: {es["policy"]}, {es["episodes"]} episodes, '
                  f'{es["env_steps"]} env steps, {es["workers"]} env workers)', '']
        lines += md_table(['policy on', 'lockstep s', 'env floor s', 'policy floor s', 'sequential s (extrapolated)'],
                          [[e.get('eval_device', '?')] + [f'{e[k]:.2f}' for k in (
                              'lockstep_s', 'env_floor_s', 'policy_floor_s', 'sequential_s_extrapolated')]
                           for e in evals])

    lines += ['', f'## Paper-scale run: CFGRL on {ENV_NAME}', '', f'`{run.get("command", "not started")}`', '',
              f'`{run.get("eval_command", "no evaluation")}`', '',
              f'{run.get("num_seeds")} stacked seeds; {run.get("train_steps")} steps asked (chosen from: '
              f'{run.get("steps_from")}), step {(run.get("summary") or {}).get("step", "?")} evaluated; training '
              f'took {run.get("train_wall_s", 0):.0f} s including start-up and compilation.']
    rate = run.get('steps_per_s')
    if rate is None and ms:  # The benchmark's rate of the same network, batch and number of seeds.
        rows = {r['num_seeds']: r for r in ms['rows']}
        if run.get('num_seeds') in rows:
            rate = rows[run['num_seeds']]['vmapped_updates_per_s'] / run['num_seeds']
            run['rate_from'] = 'benchmarks.multi_seed'
    if rate:
        projected = PAPER_STEPS / rate
        lines.append(f'Training rate: {rate:.0f} steps/s with {run.get("num_seeds")} seeds stacked (from '
                     f'{run.get("rate_from", "the train.csv of the run")}); the paper\'s {PAPER_STEPS:,} steps × '
                     f'{run.get("num_seeds")} seeds would take {fmt_s(projected)} of training on this device.')
    summary = run.get('summary')
    if summary:
        lines.append('')
        lines += md_table(['w', 'overall success, % (mean ± std over seeds)'],
                          [[w, f'{100 * e["overall_success"]:.0f} ± {100 * e.get("overall_success_std", 0.0):.0f}']
                           for w, e in summary['guidance'].items()])
    else:
        lines.append('No evaluation finished (see log.txt).')
    return '\n'.join(lines) + '\n'


def device_slug(versions: dict) -> str:
    device = (versions.get('devices') or ['unknown'])[0]
    return re.sub(r'[^a-z0-9]+', '-', device.lower()).strip('-')


def check_main(args) -> int:
    sizes = SMOKE if args.smoke else FULL
    started = time.monotonic()
    try:
        install = install_wheels()
    except RuntimeError as e:
        print(f'gpu_check: {e}', file=sys.stderr)
        return 1
    out = subprocess.run([python(), '-c', VERSIONS_CODE], cwd=REPO, env=part_env(), capture_output=True, text=True)
    if out.returncode != 0:
        print(f'gpu_check: the packages do not import:\n{out.stderr[-3000:]}', file=sys.stderr)
        return 1
    versions = json.loads(out.stdout.strip().splitlines()[-1])
    name = f'{datetime.date.today()}-{device_slug(versions)}' + ('-smoke' if args.smoke else '')
    out_dir = os.path.join(os.path.abspath(args.out_root), name)
    os.makedirs(out_dir, exist_ok=True)
    print(f'[gpu_check] {json.dumps(versions)}\n[gpu_check] writing {out_dir}', flush=True)
    check = Check(args.budget_s, os.path.join(out_dir, 'log.txt'))
    boxes = sizes['boxes']
    path = lambda part: os.path.join(out_dir, f'{part}.json')  # noqa: E731
    results: Dict[str, Optional[dict]] = {}

    def bench(part: str, module: str, flags: List[str], env_extra=None):
        check.run(part, [python(), '-m', f'benchmarks.{module}', f'--output={path(part)}'] + flags, boxes[part],
                  env_extra)
        results[part] = load_json(path(part))
        if results[part] and check.status[part].startswith('stopped'):
            check.status[part] += ', after writing its results'

    with tempfile.TemporaryDirectory(prefix='gpu_check-') as work_dir:
        bench('train_speed', 'train_speed', sizes['train_speed'])
        bench('multi_seed', 'multi_seed', sizes['multi_seed'])
        run = paper_run(check, sizes, out_dir, work_dir, results)
        bench('guided_sampling-accelerator', 'guided_sampling', sizes['guided_sampling'])
        bench('guided_sampling-cpu', 'guided_sampling', sizes['guided_sampling'], {'JAX_PLATFORMS': 'cpu'})
        bench('eval_speed-accelerator', 'eval_speed', sizes['eval_speed'])
        bench('eval_speed-cpu', 'eval_speed', sizes['eval_speed'] + ['--eval_device=cpu'])
    text = report(versions, install, check, results, run, args.smoke, args.budget_s, time.monotonic() - started)
    with open(os.path.join(out_dir, 'report.md'), 'w') as f:
        f.write(text)
    check.log.close()
    print('\n' + text)
    if args.archive:  # One file to bring back from a machine that returns only a few.
        with tarfile.open(args.archive, 'w:gz') as tar:
            tar.add(out_dir, arcname=name)
        print(f'[gpu_check] archived {out_dir} into {args.archive}')
    failed = [name for name, status in check.status.items() if status.startswith('failed')]
    if failed:
        print(f'gpu_check: failed parts: {", ".join(failed)} (their output is in {out_dir}/log.txt).', file=sys.stderr)
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--prepare', action='store_true', help='download the wheels (and the dataset) to carry')
    parser.add_argument('--no_dataset', action='store_true', help='--prepare: do not carry the dataset')
    parser.add_argument('--smoke', action='store_true', help='tiny sizes on any machine, about a minute')
    parser.add_argument('--budget_s', type=float, default=None, help='overall time budget (default 540; smoke 600)')
    parser.add_argument('--archive', default=None, help='also pack the report folder into this .tar.gz')
    parser.add_argument('--out_root', default=os.path.join(REPO, 'results', 'gpu'),
                        help='the report goes to <out_root>/<date>-<device>/')
    args = parser.parse_args(argv)
    if args.prepare:
        return prepare(with_dataset=not args.no_dataset)
    if args.budget_s is None:
        args.budget_s = 600 if args.smoke else 540
    if args.budget_s <= 0 or math.isnan(args.budget_s):
        parser.error('--budget_s must be positive')
    return check_main(args)


if __name__ == '__main__':
    sys.exit(main())
