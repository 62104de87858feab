#!/bin/bash
# Runs inside the vkms VM (scripts/vkms-vm.mjs test): a preflight for the devices the
# conformance suite needs, then the test files. A missing device FAILS the run (never a skip).
# Usage: guest-test.sh <test files...>    (cwd = the checkout)
#
# Runner (PRIMEBUF_VM_RUNNER):
#   node (default)  each file runs as `node <file>`, one after the other; node-tap in the file
#                   prints its TAP and its own `# { total, pass, fail }` count; this script nests
#                   each file's TAP as a subtest and ends with the sum of those counts (plus one
#                   failure per file that died without reporting one).
#   tap             node-tap's runner: `tap -R tap --jobs=1`. Same results, but under software
#                   emulation its runner and the loader hooks it puts in every test process
#                   (@tapjs/mock, @tapjs/processinfo, source maps) cost 50-180 s per file
#                   against 5-13 s for the file alone (figures in the README).
# Either way one file at a time: KMS has one master, and the DRM leak checks read global
# debugfs state. Each file gets PRIMEBUF_VM_TAP_TIMEOUT seconds (default 600).

missing=
driver_of() { # /sys/class/drm/<node> -> its DRM driver name (what DRM_IOCTL_VERSION reports)
  # vkms and vgem are platform devices without a bound driver (no device/driver link):
  # debugfs dri/<minor>/name reads "<driver> dev=... unique=...".
  local major minor name rest
  IFS=: read -r major minor <"$1/dev" 2>/dev/null || return 1
  read -r name rest <"/sys/kernel/debug/dri/$minor/name" 2>/dev/null && echo "$name"
}
have_node() { # <glob prefix> <driver>: a node of that driver exists in /dev/dri
  local n
  for n in /sys/class/drm/$1[0-9]*; do
    case "${n##*/}" in *-*) continue ;; esac
    [ "$(driver_of "$n")" = "$2" ] && [ -c "/dev/dri/${n##*/}" ] && return 0
  done
  return 1
}
have_node card vkms || missing="$missing
  vkms: no /dev/dri/card* node driven by vkms (module not loaded?)"
have_node card vgem || missing="$missing
  vgem: no /dev/dri/card* node driven by vgem (module not loaded?)"
have_node renderD vgem || missing="$missing
  vgem: no /dev/dri/renderD* node driven by vgem"
[ -c /dev/udmabuf ] || missing="$missing
  udmabuf: /dev/udmabuf is missing"
[ -c /dev/dma_heap/system ] || missing="$missing
  dma-heap: /dev/dma_heap/system is missing"
[ -c /dev/video0 ] || missing="$missing
  vivid: /dev/video0 (V4L2 capture) is missing (module not loaded?)"

if [ -n "$missing" ]; then
  echo "vkms rig preflight FAILED: the conformance suite needs devices that this VM lacks:$missing" >&2
  echo "not ok - vkms rig preflight: missing devices:$(echo "$missing" | tr '\n' ' ')"
  exit 1
fi
echo "# vkms rig preflight: vkms, vgem (card + render), /dev/udmabuf, /dev/dma_heap/system, /dev/video0 present" >&2

# The host's artifacts folder (vkms-vm.mjs test shares it writable over 9p, tag `artifacts`),
# mounted at its host path: what the tests keep there (PNG captures) reaches the host.
if [ -n "$PRIMEBUF_ARTIFACTS" ] && grep -qa '^artifacts' /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null; then
  mkdir -p "$PRIMEBUF_ARTIFACTS" &&
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 artifacts "$PRIMEBUF_ARTIFACTS" ||
    echo "# the artifacts folder could not be mounted: captures stay in the guest" >&2
fi

limit=${PRIMEBUF_VM_TAP_TIMEOUT:-600}
if [ "${PRIMEBUF_VM_RUNNER:-node}" = tap ]; then
  exec node_modules/.bin/tap -R tap --jobs=1 --timeout="$limit" "$@"
fi

count() { # <field> <summary line>: a field of `# { total: 3, pass: 2, fail: 1 }`, 0 when absent
  if [[ $2 =~ [{\ ]$1:\ ([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# Bash builtins only in the loop: under emulation every extra process costs a good fraction
# of a second.
echo "TAP version 14"
total=0 pass=0 fail=0 todo=0 skip=0 n=0 bad=0
for f in "$@"; do
  n=$((n + 1))
  echo "# Subtest: $f"
  start=$(now_ms)
  summary=
  while IFS= read -r line; do
    case "$line" in
      "TAP version "*) continue ;;
      "# { total: "*) summary=$line ;;
    esac
    echo "    $line"
  done < <(exec timeout -k 5 "$limit" node "$f" </dev/null)
  wait $! 2>/dev/null
  status=$?
  ms=$(( $(now_ms) - start ))
  if [ -n "$summary" ]; then
    total=$((total + $(count total "$summary")))
    pass=$((pass + $(count pass "$summary")))
    fail=$((fail + $(count fail "$summary")))
    todo=$((todo + $(count todo "$summary")))
    skip=$((skip + $(count skip "$summary")))
  fi
  # node-tap's root prints its count last: a file that exits 0 without it did not run its tests
  if [ "$status" -eq 0 ] && [ -z "$summary" ]; then status=125; fi
  if [ "$status" -eq 0 ]; then
    echo "ok $n - $f # time=${ms}ms"
  else
    bad=$((bad + 1))
    why="exit $status"
    [ "$status" -eq 124 ] && why="timed out after ${limit}s"
    [ -z "$summary" ] && why="$why, no node-tap count printed"
    # a file that died without counting a failure still fails
    if [ -z "$summary" ] || [ "$(count fail "$summary")" -eq 0 ]; then
      total=$((total + 1))
      fail=$((fail + 1))
    fi
    echo "not ok $n - $f # $why, time=${ms}ms"
  fi
  echo
done
echo "1..$n"
line="total: $total, pass: $pass"
[ "$fail" -gt 0 ] && line="$line, fail: $fail"
[ "$todo" -gt 0 ] && line="$line, todo: $todo"
[ "$skip" -gt 0 ] && line="$line, skip: $skip"
echo "# { $line }"
[ "$bad" -eq 0 ] && [ "$fail" -eq 0 ]
