#!/usr/bin/env bash
# Pack what benchmarks/gpu_check.sh needs on a lent GPU machine that has torch but no package
# registry (Python 3.12 there), into two folders the device tool carries, one per call (a
# call carries at most 64 MiB with the working tree): .gpu1/ holds the first part of
# warp-lang (its wheel is 149 MB; the package, xz-compressed, 101 MB), .gpu2/ the rest and
# the small wheels. Run from the repository root here (needs pip and network); ~3 min.
#
#   call 1 (carry .gpu1): mkdir -p /tmp/p && cp .gpu1/* /tmp/p/
#   call 2 (carry .gpu2, right after: the machine stays warm ~30 s):
#     mkdir -p /tmp/site && python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu2/*.whl
#     cat /tmp/p/warp_pkg.part.aa .gpu2/warp_pkg.part.ab | xz -d | tar x -C /tmp/site
#     export PYTHONPATH=/tmp/site && python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .
#     OUT=$OUT GPU_CHECK_TRAIN_MINUTES=3 bash benchmarks/gpu_check.sh
set -euo pipefail
WHEELS=(mujoco==4.0.1 mujoco-core==4.0.1 mujoco-warp==4.0.0 rsl-rl-lib==5.5.1 tensordict==0.15.3
        pyvers==0.2.3 glfw==2.11.0 GitPython==3.2.1 gitdb==4.0.12 smmap==5.0.3)
WARP=warp-lang==1.19.0
PART=59768832  # bytes in .gpu1: with a ~6 MB working tree, under a call's 64 MiB
for d in .gpu1 .gpu2; do
  grep -qx "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >> .git/info/exclude
  rm -rf "$d" && mkdir -p "$d"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
get() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$1" "${@:2}"
}
get .gpu2 "${WHEELS[@]}"
get "$tmp" "$WARP"
(cd "$tmp" && unzip -q warp_lang-*.whl && rm -rf warp/examples warp/tests warp_lang-*.whl)
tar cf - -C "$tmp" . | xz -T0 -7 > "$tmp.tar.xz"
split -b "$PART" "$tmp.tar.xz" "$tmp.part."
mv "$tmp.part.aa" .gpu1/warp_pkg.part.aa
mv "$tmp.part.ab" .gpu2/warp_pkg.part.ab
rm -f "$tmp.tar.xz"
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
for d in .gpu1 .gpu2; do
  size=$(du -cb "$d" | tail -1 | cut -f1)
  echo "$d: $((size >> 20)) MiB + working tree $((tree >> 20)) MiB (limit 64 MiB)"
  if [ $((size + tree)) -gt $((64 << 20)) ]; then echo "$d is over a call's 64 MiB" >&2; exit 1; fi
done
