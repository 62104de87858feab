#!/bin/bash
# The per-flip floor in the vkms guest (issue 11's targets judged against it):
#   node scripts/vkms-vm.mjs run -- bash bench/flip-floor.sh [FLIPS]    (npm run bench:floor)
# 1. bench/flip-floor.c, built here with the host's gcc (the guest runs the host's root, same
#    glibc): the kernel's atomic page flip from C, CPU per flip.
# 2. bench/flip-floor.mjs: the same flips from Node through primebuf's public API (the atomic
#    request, then the presenter), and a Node process idling with a 60 Hz timer.
# One JSON line each, with the clock it was measured in ("icount" under the rig's --icount, as
# npm run bench:floor runs it) and the case's baseline (bench/baselines.json) beside the figure.
# Run after `npm run build` (the Node part imports dist/).
set -eu -o pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
flips=${1:-800}
card=${CARD:-/dev/dri/card0}
# npm run bench:floor builds it on the host (build/flip-floor); else gcc here, into /tmp
bin=$root/build/flip-floor
if [ ! -x "$bin" ] || [ "$bin" -ot "$root/bench/flip-floor.c" ]; then
  bin=${TMPDIR:-/tmp}/primebuf-flip-floor
  gcc -O2 -Wall -Wextra -o "$bin" "$root/bench/flip-floor.c"
fi
"$bin" "$card" "$flips" | node "$root/bench/with-baseline.mjs"
node "$root/bench/flip-floor.mjs" --card "$card" --flips "$flips"
