#!/bin/bash
# Profiles the kiosk's steady window (bench/profile-probe.mjs) in one case of bench/kiosk-vs-weston.mjs
# and prints the summaries: bash bench/profile-kiosk.sh CASE [extra bench args...] (in the guest)
set -u
case_=$1; shift
dir=$(mktemp -d)
PRIMEBUF_PROFILE=$dir/p node bench/kiosk-vs-weston.mjs --cases "$case_" "--node-args=--import $PWD/bench/profile-probe.mjs" "$@"
sleep 1
cat "$dir/p.heap.txt" "$dir/p.cpu.txt"
