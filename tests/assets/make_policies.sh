#!/usr/bin/env bash
# Reproduces the exported policies the ROS 2 closed-loop tests run (tests/assets/policies/<task>/).
# EXPORT_ONLY=1 re-exports existing runs. One training at a time; about 20 minutes on 2 CPU cores. Usage: bash tests/assets/make_policies.sh [task ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
XEMBODY=${XEMBODY:-.venv/bin/xembody}
OUT=tests/assets/policies
ROOT=${RUNS:-runs/ros-assets}
tasks=("$@")
[ ${#tasks[@]} -eq 0 ] && tasks=(navigate reach velocity)
for task in "${tasks[@]}"; do
  case "$task" in
    navigate) args=(--task navigate --body wheeled --body-seed 1 --num-envs 128 --iterations 100) ;;
    reach) args=(--task reach --body arm --num-envs 256 --iterations 3000 --max-minutes 9.5) ;;
    velocity) args=(--task velocity --body quadruped --num-envs 256 --iterations 500) ;;
    *) echo "unknown task $task (expected navigate, reach or velocity)" >&2; exit 2 ;;
  esac
  [ -n "${EXPORT_ONLY:-}" ] || "$XEMBODY" train "${args[@]}" --log-root "$ROOT" --run-name "$task"
  rm -rf "${OUT:?}/$task"
  run=$(ls -d "$ROOT/$task"-*/"$task" | head -1)   # runs/<task>-<body>/<run name>
  "$XEMBODY" export --checkpoint "$run" --out "$OUT/$task"
done
