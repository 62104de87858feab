#!/bin/bash
# A CPU profile of the kiosk in the vkms guest showing one client (default
# weston-simple-dmabuf-egl on card0) for 25 s, then the top self times:
#   node scripts/vkms-vm.mjs run --timeout 200 -- bash bench/kiosk-profile.sh [CLIENT ARGS...]
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg}; mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
out=/tmp/kiosk-prof; rm -rf "$out"; mkdir -p "$out"
[ $# -gt 0 ] || set -- weston-simple-dmabuf-egl -d /dev/dri/card0
node --cpu-prof --cpu-prof-dir="$out" "$root/dist/compositor-example/main.js" --stats "$out/stats.json" -- timeout 25 "$@" > "$out/log" 2>&1
echo "kiosk exit $?"
tail -3 "$out/log"
node -e 'const s=require(process.argv[1]); console.log(JSON.stringify({frames:s.frames,direct:s.direct,copied:s.copied,cpu:s.cpu??s.cpuMs??null}))' "$out/stats.json"
node "$root/bench/profile-top.mjs" "$out" 40 "objectProperties,describeNode,buildInfo,#request,send,frame"
