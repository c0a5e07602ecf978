"""Copies run directories' result files into a results folder, without checkpoints, TensorBoard logs or videos,
and reports each run's wall time.

    python -m scripts.export_runs runs/table1_reduced results/table1_reduced [--finished]

Every run directory under SOURCE (a folder with meta.json) is copied to the same relative path under DEST: its
flags.json, config.json, meta.json, eval.csv, train.csv, summary.json and success.png, and those of its seed_<k>/
folders. A run's wall time is the sum over its sessions (a --resume starts a new one) of the time from the first to
the last event of the TensorBoard file the session wrote; time between sessions does not count. The wall times go
to DEST/wall_times.txt, one line per run (a run's earlier line is replaced), with the run's last step and whether
it has reached its --train_steps. --finished copies only the runs that have.
"""
import argparse
import glob
import json
import os
import shutil
import struct
from typing import Dict, List, Optional, Tuple

from datasets.files import write_atomic

RESULT_FILES = ('flags.json', 'config.json', 'meta.json', 'eval.csv', 'train.csv', 'summary.json', 'success.png')
WALL_TIMES = 'wall_times.txt'


def find_run_dirs(source: str) -> List[str]:
    """Run directories under `source` (main.py's: meta.json beside flags.json), not their seed_<k>/ folders."""
    found = []
    for folder, subdirs, files in os.walk(source):
        subdirs[:] = [d for d in subdirs if d not in ('checkpoints', 'tb', 'videos')]
        if 'meta.json' in files and 'flags.json' in files:
            found.append(folder)
            subdirs[:] = []  # Its seed_<k>/ and evals/ folders are part of it.
    return sorted(found)


def event_times(path: str) -> List[float]:
    """The wall-clock times of a TensorBoard event file's records (TFRecord framing: length, crc, event, crc)."""
    from tensorboardX.proto import event_pb2

    times = []
    with open(path, 'rb') as f:
        data = f.read()
    i = 0
    while i + 12 <= len(data):
        (length,) = struct.unpack('<Q', data[i:i + 8])
        if i + 12 + length + 4 > len(data):  # A record cut short by a killed writer.
            break
        event = event_pb2.Event()
        event.ParseFromString(data[i + 12:i + 12 + length])
        times.append(event.wall_time)
        i += 12 + length + 4
    return times


def wall_seconds(run: str) -> Tuple[float, int]:
    """(seconds, sessions): first-to-last event time of each session's TensorBoard file, summed."""
    total, sessions = 0.0, 0
    for path in sorted(glob.glob(os.path.join(run, 'tb', 'events.out.tfevents.*'))):
        times = event_times(path)
        if times:
            total += max(times) - min(times)
            sessions += 1
    return total, sessions


def export(run: str, source: str, dest: str) -> str:
    """Copies `run`'s result files (and its seed folders') under `dest`; returns the copy's path."""
    target = os.path.join(dest, os.path.relpath(run, source))
    for folder in [run] + sorted(glob.glob(os.path.join(run, 'seed_*'))):
        out = os.path.join(target, os.path.relpath(folder, run))
        os.makedirs(out, exist_ok=True)
        for name in RESULT_FILES:
            if os.path.isfile(os.path.join(folder, name)):
                shutil.copy2(os.path.join(folder, name), os.path.join(out, name))
    return target


def status(run: str) -> Tuple[Optional[int], bool]:
    """(the step of the run's last evaluation or None, whether that is its --train_steps)."""
    with open(os.path.join(run, 'flags.json')) as f:
        train_steps = json.load(f).get('train_steps')
    if not os.path.isfile(os.path.join(run, 'summary.json')):
        return None, False
    with open(os.path.join(run, 'summary.json')) as f:
        step = json.load(f).get('step')
    return step, step is not None and step == train_steps


def write_wall_times(dest: str, lines: Dict[str, str]) -> str:
    """Merges `lines` (relative run path -> line) into dest/wall_times.txt, keeping other runs' lines."""
    path = os.path.join(dest, WALL_TIMES)
    existing = {}
    if os.path.isfile(path):
        with open(path) as f:
            existing = {line.split(' ', 1)[0]: line.rstrip('\n') for line in f if line.strip()}
    existing.update(lines)
    write_atomic(path, lambda f: f.write(''.join(existing[k] + '\n' for k in sorted(existing)).encode()))
    return path


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='Folder of run directories (main.py --save_dir).')
    parser.add_argument('dest', help='Results folder to copy them into (same relative paths).')
    parser.add_argument('--finished', action='store_true', help='Only runs evaluated at their --train_steps.')
    args = parser.parse_args(argv)
    if os.path.realpath(args.source) == os.path.realpath(args.dest):
        parser.error('SOURCE and DEST are the same folder')
    runs = find_run_dirs(args.source)
    if not runs:
        parser.error(f'no run directories (meta.json + flags.json) under {args.source}')
    lines = {}
    for run in runs:
        step, done = status(run)
        if args.finished and not done:
            print(f'{os.path.relpath(run, args.source)}: not finished (step {step}), not copied')
            continue
        export(run, args.source, args.dest)
        seconds, sessions = wall_seconds(run)
        rel = os.path.relpath(run, args.source)
        lines[rel] = (f'{rel} wall_s={seconds:.0f} ({seconds / 60:.0f} min, {sessions} session'
                      f'{"s" if sessions != 1 else ""}) step={step} {"finished" if done else "in progress"}')
        print(lines[rel])
    if lines:
        print('wrote', write_wall_times(args.dest, lines))


if __name__ == '__main__':
    main()
