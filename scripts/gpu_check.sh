#!/usr/bin/env bash
# The GPU check (scripts/gpu_check.py): --prepare here, then the bare command on the GPU machine; --smoke anywhere.
# Uses the repository's .venv when there is one, else python3 (the GPU machine's own interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
py=python3
if [ -x .venv/bin/python ]; then py=.venv/bin/python; fi
exec "$py" -m scripts.gpu_check "$@"
