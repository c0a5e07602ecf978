#!/usr/bin/env bash
# One SLURM array task: runs cell $SLURM_ARRAY_TASK_ID of a sweep script (see launch_slurm.sh).
set -eu
sweep=$1
shift
cell=$(grep -E '^python ' "$sweep" | sed -n "$((SLURM_ARRAY_TASK_ID + 1))p")
[ -n "$cell" ] || { echo "no cell $SLURM_ARRAY_TASK_ID in $sweep"; exit 1; }
echo "cell $SLURM_ARRAY_TASK_ID: $cell $*"
eval "$cell $*"
