#!/usr/bin/env bash
# Device checks for the device-resident env, for a machine with one CUDA GPU (run from the
# repository root). Results go to $OUT (default: .) as JSON lines, in this order:
#   1. gpu_throughput.jsonl: env-steps/s at N worlds (default 4096) for the quadruped and
#      the humanoid velocity tasks: bare mujoco_warp, the backend, the env with and without
#      a policy, each with fraction_of_bare (issue 23: the env's share of the bare loop);
#   2. task_overhead_gpu.jsonl: the task-side time of BodyEnv.step on the GPU;
#   3. gpu_train.jsonl: the humanoid velocity task trained on the backend for a fixed
#      budget (default 8 min; last PPO log line: steps/s, mean reward), then its eval;
#      gpu_train_curve.jsonl: its learning curve (benchmarks/train_curve.py, to set next to
#      a CPU run's), and gpu_run.tgz: the run folder (checkpoints every 50 iterations), so
#      its checkpoints can be evaluated again off the GPU (the CPU backend: sim-to-sim);
#   4. the gpu-marked Warp tests (the velocity env on backend "gpu" against "warp:cpu").
# Knobs for a tiny smoke run without a GPU: GPU_CHECK_ENVS=8 GPU_CHECK_STEPS=3
# GPU_CHECK_DEVICE=cpu GPU_CHECK_BACKEND=warp:cpu GPU_CHECK_TRAIN_MINUTES=0.2
# GPU_CHECK_TRAIN_ITERATIONS=1 GPU_CHECK_EPISODES=4 GPU_CHECK_SKIP_TESTS=1.
# Measured on an H200 (2026-12-04): steps 1-2 took 200 s with the kernel compiles, step 3
# the training budget plus ~100 s of eval (its compiles, on a fresh machine), step 4 101 s.
# A 15-minute lease fits GPU_CHECK_TRAIN_MINUTES=3.
# On a lent machine without a package registry: benchmarks/gpu_pack.sh packs what it lacks.
set -euo pipefail
PY=${PYTHON:-python3}
out=${OUT:-.}
n=${GPU_CHECK_ENVS:-4096}
steps=${GPU_CHECK_STEPS:-100}
device=${GPU_CHECK_DEVICE:-cuda}
backend=${GPU_CHECK_BACKEND:-gpu}
minutes=${GPU_CHECK_TRAIN_MINUTES:-8}
iterations=${GPU_CHECK_TRAIN_ITERATIONS:-100000}
episodes=${GPU_CHECK_EPISODES:-512}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 600 "$PY" benchmarks/gpu_throughput.py --device "$device" --num-envs "$n" \
  --steps "$steps" --bodies quadruped humanoid | tee "$out/gpu_throughput.jsonl" || true
timeout 300 "$PY" benchmarks/task_overhead.py --backend "$backend" --num-envs "$n" \
  --steps "$steps" | tee "$out/task_overhead_gpu.jsonl" || true
runs="$out/runs"
budget=$(awk -v m="$minutes" 'BEGIN { print int(m * 60 + 300) }')
timeout "$budget" "$PY" -m xembody train --task velocity --body humanoid --backend "$backend" \
  --num-envs "$n" --max-minutes "$minutes" --iterations "$iterations" --log-root "$runs" \
  --run-name humanoid_velocity_gpu --save-interval 50 | tail -5
run=$(dirname "$(find "$runs" -name run.json | head -1)")
tar czf "$out/gpu_run.tgz" -C "$(dirname "$run")" "$(basename "$run")"
"$PY" benchmarks/train_curve.py "$run" > "$out/gpu_train_curve.jsonl" || true
"$PY" - "$run" "$backend" "$n" "$minutes" <<'PYEOF' | tee "$out/gpu_train.jsonl"
import json, pathlib, sys
run, backend, n, minutes = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = (run / "ranks" / "rank0.jsonl").read_text().splitlines()
last = json.loads(lines[-1]) if lines else {}
print(json.dumps({"kind": "train", "task": "velocity", "body": "humanoid", "backend": backend,
                  "num_envs": n, "max_minutes": float(minutes), "iterations": len(lines),
                  "run": str(run), "last": last}))
PYEOF
timeout 600 "$PY" -m xembody eval --checkpoint "$run" --backend "$backend" \
  --episodes "$episodes" --json --out "$out/gpu_eval.json" > /dev/null
"$PY" -c 'import json, sys; print(json.dumps({"kind": "eval", **json.load(open(sys.argv[1]))}))' \
  "$out/gpu_eval.json" | tee -a "$out/gpu_train.jsonl"
# last: the step a short device lease can best spare
if [ -z "${GPU_CHECK_SKIP_TESTS:-}" ]; then
  timeout 300 "$PY" -m pytest -m gpu tests/test_physics_warp.py -q -p no:cacheprovider 2>&1 \
    | grep -v '^Module ' | tail -25 || true
fi
