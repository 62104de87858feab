#!/bin/bash
# The kiosk's syscalls and per-thread CPU in the vkms guest while it shows one client (default
# weston-simple-dmabuf-egl on card0) for 15 s:
#   node scripts/vkms-vm.mjs run --timeout 200 -- bash bench/kiosk-syscalls.sh [CLIENT ARGS...]
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg}; mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
out=/tmp/kiosk-sys; rm -rf "$out"; mkdir -p "$out"
[ $# -gt 0 ] || set -- weston-simple-dmabuf-egl -d /dev/dri/card0
node "$root/dist/compositor-example/main.js" --stats "$out/stats.json" -- timeout 15 "$@" > "$out/log" 2>&1 &
kiosk=$!
sleep 8 # start-up, modules over 9p
# (a thread may end between the listing and the read: skipped)
threads() { for t in /proc/$kiosk/task/*; do s=$(cat "$t/stat" 2>/dev/null) && c=$(cat "$t/comm" 2>/dev/null) || continue; set -- ${s##*) }; echo "$c ${12} ${13}"; done; }
threads > "$out/t0"
timeout 5 strace -f -c -p "$kiosk" -o "$out/strace" 2>/dev/null
threads > "$out/t1"
wait $kiosk
echo "kiosk exit $?"
node -e 'const s=require(process.argv[1]); console.log(JSON.stringify({frames:s.frames,direct:s.direct,copied:s.copied,cpu:s.cpu}))' "$out/stats.json"
echo "per thread: comm utime stime (ticks of 10 ms, before and after the strace window)"
paste "$out/t0" "$out/t1"
head -30 "$out/strace"
