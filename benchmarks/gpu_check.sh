#!/usr/bin/env bash
# A GPU check in minutes (see benchmarks/gpu_check.py): every training of the paper profile for a few steps at
# batch 2,048 with a stop and a resume, sampling and a Table 3 row on the device, peak memory and projected
# hours; on a GPU also the precision "auto" picks there, the masked prior and (two GPUs) two-process DDP; ending
# in one JSON summary. Needs a Python with torch only (the CUDA build on a GPU; numpy, pandas and the rest of
# pyproject.toml are not needed); uses this checkout's lib/ directly, no install and no network.
#   PYTHON=/path/to/python bash benchmarks/gpu_check.sh   # another Python (e.g. a venv holding only torch)
#   bash benchmarks/gpu_check.sh                 # on the GPU
#   bash benchmarks/gpu_check.sh --device cpu    # the same, small, on a CPU
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"; else python="python3"; fi
fi
export PYTHONPATH="$repo/lib${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" "$here/gpu_check.py" "$@"
