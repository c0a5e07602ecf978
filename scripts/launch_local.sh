#!/usr/bin/env bash
# Runs every cell (line starting with `python`) of a sweep script in turn on this machine, appending any extra
# flags to each command (later absl flags override earlier ones), e.g. a reduced scale:
#   scripts/launch_local.sh scripts/table3.sh --train_steps=100000 --config.actor_hidden_dims=256,256,256
# Set CELLS=3-7 to run only cells 3..7 (0-based, inclusive). Failed cells are reported at the end.
set -u
sweep=${1:?usage: launch_local.sh SWEEP_SCRIPT [extra flags...]}
shift
mapfile -t cells < <(grep -E '^python ' "$sweep")
first=0; last=$((${#cells[@]} - 1))
if [ -n "${CELLS:-}" ]; then first=${CELLS%-*}; last=${CELLS#*-}; fi
failed=()
for i in $(seq "$first" "$last"); do
  echo "[cell $i/$last] ${cells[$i]} $*"
  # shellcheck disable=SC2086
  eval "${cells[$i]} $*" || failed+=("$i")
done
if [ ${#failed[@]} -gt 0 ]; then echo "failed cells: ${failed[*]}"; exit 1; fi
