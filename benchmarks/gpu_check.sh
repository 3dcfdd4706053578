#!/usr/bin/env bash
# Device checks for the device-resident env, for a machine with one CUDA GPU (run from the
# repository root): the gpu-marked Warp tests (the velocity env on backend "gpu" against
# "warp:cpu", every tensor on CUDA), then throughput at N = 4096 for the humanoid and the
# quadruped (bare mujoco_warp, the backend, the env with and without a policy) and the
# task-side time of BodyEnv.step on the GPU. About 5 minutes on one H100, most of it
# kernel compilation on the first run.
set -euo pipefail
PY=${PYTHON:-python3}
out=${OUT:-.}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 300 "$PY" -m pytest -m gpu tests/test_physics_warp.py -q -p no:cacheprovider 2>&1 \
  | grep -v '^Module ' | tail -25
timeout 400 "$PY" benchmarks/gpu_throughput.py --num-envs 4096 --steps 100 \
  | tee "$out/gpu_throughput.jsonl"
timeout 200 "$PY" benchmarks/task_overhead.py --backend gpu --num-envs 4096 --steps 100 \
  | tee "$out/task_overhead_gpu.jsonl"
