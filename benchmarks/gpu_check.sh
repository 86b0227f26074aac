#!/usr/bin/env bash
# The CUDA path, checked end to end (see benchmarks/gpu_check.py for what it does and its options).
#   benchmarks/gpu_check.sh [options]        e.g. --device cpu --submissions reference --train-steps 10
# PYTHON picks the interpreter (default: python3). Where $OUT is set (the device machine), the whole
# output is also written to $OUT/gpu_check.log. The exit status is the check's (0: grades identical).
set -o pipefail
cd "$(dirname "$0")/.." || exit 2
export PYTHONUNBUFFERED=1
if [ -n "${OUT:-}" ]; then
    "${PYTHON:-python3}" benchmarks/gpu_check.py "$@" 2>&1 | tee "$OUT/gpu_check.log"
else
    exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
fi
