#!/usr/bin/env bash
# Submits a sweep script as one SLURM array job: array task i runs cell i (the i-th line starting with `python`),
# with any extra flags appended. Resources come from SBATCH_* variables or extra sbatch options in SBATCH_ARGS:
#   SBATCH_ARGS="--gres=gpu:1 --time=04:00:00 --partition=gpu" scripts/launch_slurm.sh scripts/table3.sh
# Each array task writes its log to slurm_logs/<job>_<task>.out. Re-run failed cells with --array=<ids>.
set -eu
sweep=${1:?usage: launch_slurm.sh SWEEP_SCRIPT [extra flags...]}
shift
n=$(grep -cE '^python ' "$sweep")
mkdir -p slurm_logs
# shellcheck disable=SC2086
sbatch --array=0-$((n - 1)) --output='slurm_logs/%A_%a.out' ${SBATCH_ARGS:-} \
  --wrap="bash scripts/slurm_cell.sh '$sweep' $*"
