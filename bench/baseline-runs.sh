#!/bin/bash
# The runs behind bench/baselines.json, in one VM under icount (JSON lines on stdout):
#   node scripts/vkms-vm.mjs run --icount --timeout 5400 -- bash bench/baseline-runs.sh [RUNS] | tee runs.jsonl
#   node bench/baselines.mjs runs.jsonl          (writes bench/baselines.json; commit it)
# RUNS (default 5) of each kiosk case (800 client frames after a 2 s settle) and of the floor
# (800 flips); the camera case with CAMERA_FRAMES (default 800) frames and CAMERA_RUNS runs (vivid
# draws about 5 frames a second of guest time, so 800 frames take minutes); the anchors twice.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
node "$root/bench/kiosk-vs-weston.mjs" --runs "$runs" --cases kiosk-shm-zero-copy,kiosk-shm-copy,kiosk-dmabuf-direct
for i in $(seq 1 "$runs"); do bash "$root/bench/flip-floor.sh" 800; done
node "$root/bench/kiosk-vs-weston.mjs" --runs "${CAMERA_RUNS:-$runs}" --cases kiosk-camera --camera-frames "${CAMERA_FRAMES:-800}"
node "$root/bench/kiosk-vs-weston.mjs" --runs 2 --cases weston-pixman-shm,cage-pixman-shm
