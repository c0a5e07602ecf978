#!/usr/bin/env bash
# One SLURM array task: runs cell $SLURM_ARRAY_TASK_ID of a sweep script (see launch_slurm.sh), preemption-safe.
# The cell's runs go under its own folder, $SLURM_SAVE_DIR/<sweep>/cell_<i> (default runs/slurm/...), so a
# requeued task finds the run it started there and continues it with --resume instead of starting over.
# SIGTERM and SIGUSR1 (preemption, the time limit's warning) are passed on to main.py, which saves a checkpoint
# and exits with status 75; the task then requeues itself (scontrol requeue) and resumes from that checkpoint.
set -eu
sweep=$1
shift
cell=$(grep -E '^python ' "$sweep" | sed -n "$((SLURM_ARRAY_TASK_ID + 1))p")
[ -n "$cell" ] || { echo "no cell $SLURM_ARRAY_TASK_ID in $sweep"; exit 1; }
save_dir="${SLURM_SAVE_DIR:-runs/slurm}/$(basename "$sweep" .sh)/cell_$SLURM_ARRAY_TASK_ID"
# A run directory is <save_dir>/<env>/<agent>/<name>/; its seed_<k>/ and evals/ folders lie deeper.
run=$(find "$save_dir" -mindepth 4 -maxdepth 4 -name config.json 2>/dev/null | sort | tail -n 1)
if [ -n "$run" ]; then
  command="${cell%% --*} --resume=$(dirname "$run")"  # The cell's program with the run's saved flags.
else
  command="$cell $* --save_dir=$save_dir"
fi
echo "cell $SLURM_ARRAY_TASK_ID (restart ${SLURM_RESTART_COUNT:-0}): $command"
bash -c "exec $command" &
pid=$!
signaled=0
forward() { signaled=1; kill -s "$1" "$pid" 2>/dev/null || true; }
trap 'forward TERM' TERM
trap 'forward USR1' USR1
status=0
wait "$pid" || status=$?
while kill -0 "$pid" 2>/dev/null; do  # A trapped signal ends `wait` early: wait for the cell itself.
  status=0
  wait "$pid" || status=$?
done
if [ "$status" -eq 75 ] || { [ "$signaled" -eq 1 ] && [ "$status" -ne 0 ]; }; then
  echo "cell $SLURM_ARRAY_TASK_ID stopped (status $status): requeueing it to resume."
  ${SCONTROL:-scontrol} requeue "${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}_$SLURM_ARRAY_TASK_ID"
  exit 0
fi
exit "$status"
