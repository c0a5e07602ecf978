#!/usr/bin/env bash
# Submits a sweep script as one SLURM array job: array task i runs cell i (the i-th line starting with `python`),
# with any extra flags appended. Resources come from SBATCH_* variables or extra sbatch options in SBATCH_ARGS:
#   SBATCH_ARGS="--gres=gpu:1 --time=04:00:00 --partition=gpu" scripts/launch_slurm.sh scripts/table3.sh
# Each array task writes its log to slurm_logs/<job>_<task>.out (appended across requeues). Tasks are requeueable:
# SLURM sends SIGUSR1 $SIGNAL_SECONDS (default 300) seconds before the time limit, and on that or a preemption's
# SIGTERM the cell saves a checkpoint and requeues itself to resume (see slurm_cell.sh). Cells write under
# $SLURM_SAVE_DIR/<sweep>/cell_<i> (default runs/slurm/...). Re-run failed cells with --array=<ids>.
set -eu
sweep=${1:?usage: launch_slurm.sh SWEEP_SCRIPT [extra flags...]}
shift
n=$(grep -cE '^python ' "$sweep")
mkdir -p slurm_logs
# shellcheck disable=SC2086
sbatch --array=0-$((n - 1)) --output='slurm_logs/%A_%a.out' --open-mode=append --requeue \
  --signal="B:USR1@${SIGNAL_SECONDS:-300}" ${SBATCH_ARGS:-} scripts/slurm_cell.sh "$sweep" "$@"
