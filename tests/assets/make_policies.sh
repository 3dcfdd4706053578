#!/usr/bin/env bash
# Reproduces the exported policies the ROS 2 closed-loop tests run (tests/assets/policies/<task>/).
# Usage: bash tests/assets/make_policies.sh [task ...]   (EXPORT_ONLY=1: re-export existing runs)
# One training at a time; about 30 minutes on 2 CPU cores for all four.
# UPGRADE_ONLY=1: bring the existing exports to the current format in place, networks
# unchanged (xembody.models.export.upgrade_export; seconds, no runs needed).
set -euo pipefail
cd "$(dirname "$0")/../.."
XEMBODY=${XEMBODY:-.venv/bin/xembody}
OUT=tests/assets/policies
if [ -n "${UPGRADE_ONLY:-}" ]; then
  "$(dirname "$XEMBODY")/python" - "$OUT" <<'PY'
import sys
from pathlib import Path
from xembody.models.export import upgrade_export
for folder in sorted(p for p in Path(sys.argv[1]).iterdir() if (p / "policy.json").is_file()):
    print(folder, upgrade_export(folder)["format"])
PY
  exit 0
fi
ROOT=${RUNS:-runs/ros-assets}
tasks=("$@")
[ ${#tasks[@]} -eq 0 ] && tasks=(navigate reach velocity reach-latency)
for task in "${tasks[@]}"; do
  case "$task" in
    navigate) args=(--task navigate --body wheeled --body-seed 1 --num-envs 128 --iterations 100) ;;
    reach) args=(--task reach --body arm --num-envs 256 --iterations 3000 --max-minutes 9.5) ;;
    reach-latency) args=() ;;  # reach trained with 0-1 control steps of action latency (below)
    velocity) args=(--task velocity --body quadruped --num-envs 256 --iterations 500) ;;
    *) echo "unknown task $task (expected navigate, reach, velocity or reach-latency)" >&2; exit 2 ;;
  esac
  if [ -z "${EXPORT_ONLY:-}" ] && [ "$task" = reach-latency ]; then
    # a ROS graph adds a few ms between a state and its command: train for 0-20 ms of it
    "$(dirname "$XEMBODY")/python" - "$ROOT" <<'PY'
import sys
from xembody.sim.tasks.base import RandomizationCfg
from xembody.train import TrainConfig, train
cfg = TrainConfig(task="reach", body="arm", num_envs=256, iterations=3000, max_minutes=9.5,
                  log_root=sys.argv[1], run_name="reach-latency")
train(cfg, {"randomization": RandomizationCfg(action_latency=(0, 1))})
PY
  elif [ -z "${EXPORT_ONLY:-}" ]; then
    "$XEMBODY" train "${args[@]}" --log-root "$ROOT" --run-name "$task"
  fi
  rm -rf "${OUT:?}/$task"
  run=$(ls -d "$ROOT"/*/"$task" | head -1)   # runs/<task>-<body>/<run name>
  "$XEMBODY" export --checkpoint "$run" --out "$OUT/$task"
done
