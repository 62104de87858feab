#!/bin/bash
# What weston-subsurfaces asks of the kiosk and where the kiosk's CPU goes (issue 20's bench case,
# investigated): the kiosk with a V8 CPU profile and --stats, the client traced (WAYLAND_DEBUG),
# the kiosk's threads' CPU over a window from 6 s to 21 s of the guest's clock, then the
# profile's split per client commit:
#   node scripts/vkms-vm.mjs run --icount --timeout 900 -- bash bench/scene-probe.sh [CLIENT ARGS...]
# PROBE_SETTLE, PROBE_WINDOW: seconds (default 4, 8); PROBE_NODE_ARGS: the kiosk's node flags, e.g.
# "--cpu-prof --cpu-prof-dir=/tmp/scene-probe" (then split per commit)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export XDG_RUNTIME_DIR=/tmp/xdg-probe; rm -rf "$XDG_RUNTIME_DIR"; mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
out=/tmp/scene-probe; rm -rf "$out"; mkdir -p "$out"
[ $# -gt 0 ] || set -- weston-subsurfaces
${PROBE_ENV:-} node ${PROBE_NODE_ARGS:-} "$root/dist/compositor-example/main.js" --socket probe --stats "$out/stats.json" > "$out/log" 2>&1 &
kpid=$!
for i in $(seq 100); do [ -S "$XDG_RUNTIME_DIR/probe" ] && break; sleep 0.2; done
WAYLAND_DISPLAY=probe WAYLAND_DEBUG=client "$@" 2> "$out/trace" >/dev/null &
cpid=$!
threads() { for t in /proc/$kpid/task/*; do echo "$(basename $t) $(cat $t/comm) $(cut -d' ' -f14,15 $t/stat)"; done | sort; }
sleep ${PROBE_SETTLE:-4}; c0=$(grep -c 'wl_surface@[0-9]*\.commit()' "$out/trace"); threads > "$out/t0"; l0=$(wc -l < "$out/log"); echo "window starts: $c0 commits"; s0=$(date +%s.%N)
sleep ${PROBE_WINDOW:-8}; c1=$(grep -c 'wl_surface@[0-9]*\.commit()' "$out/trace"); threads > "$out/t1"; l1=$(wc -l < "$out/log"); s1=$(date +%s.%N)
kill -INT $cpid; sleep 1; kill -KILL $cpid 2>/dev/null
kill -TERM $kpid; for i in $(seq 50); do kill -0 $kpid 2>/dev/null || break; sleep 0.2; done; kill -KILL $kpid 2>/dev/null
commits=$((c1 - c0))
echo "window: $commits client commits in $(node -e "console.log(($s1 - $s0).toFixed(2))") s"
echo "--- per thread CPU ticks (10 ms) over the window: utime stime, per commit ms"
join <(awk '{print $1"_"$2, $3, $4}' "$out/t0") <(awk '{print $1"_"$2, $3, $4}' "$out/t1") | awk -v n=$commits '{u=$4-$2; s=$5-$3; U+=u; S+=s; printf "%-24s user %5d sys %5d  %.3f ms/commit\n", $1, u, s, (u+s)*10/n} END {printf "%-24s user %5d sys %5d  %.3f ms/commit\n", "all", U, S, (U+S)*10/n}'
echo "--- kiosk log"; grep -v '^$' "$out/log" | head -60
echo "--- stats"; cat "$out/stats.json"; echo
echo "--- trace: requests by kind"; grep -o '\-> [a-z_0-9]*@[0-9]*\.[a-z_]*' "$out/trace" | sed 's/@[0-9]*//' | sort | uniq -c | sort -rn | head -40
echo "--- trace: surfaces, subsurfaces, pools, buffers, regions (first 120 lines of interest)"
grep -E 'get_subsurface|create_pool|create_buffer|set_desync|set_sync|set_position|opaque|add\(|create_region|create_surface|place_|get_toplevel|configure|dmabuf|wl_shm@|format' "$out/trace" | head -120
echo "--- trace: a second of steady commits (attach/damage/commit)"
awk 'NR>1' "$out/trace" | grep -E 'attach|damage|commit\(\)|frame\(|set_opaque|set_input' | tail -n 300 | head -80
if ls "$out"/*.cpuprofile >/dev/null 2>&1; then node "$root/bench/profile-split.mjs" "$out" "$(node -e "console.log($commits / ${PROBE_WINDOW:-8})")" "${PROBE_SETTLE:-4}"; fi
if [ -n "${PROBE_LOG_GREP:-}" ]; then echo "--- kiosk log in the window: lines matching $PROBE_LOG_GREP (at most 300)"; sed -n "$((l0 + 1)),${l1}p" "$out/log" | grep -E "$PROBE_LOG_GREP" | head -n 300; fi
