#!/bin/sh
# wayland-scanner over one protocol XML: private code (.c) plus server and client headers.
# Called by binding.gyp's rule; outputs go to the build's intermediate dir, never to the tree.
set -eu
xml=$1
out=$2
base=$(basename "$xml" .xml)
mkdir -p "$out"
command -v wayland-scanner >/dev/null 2>&1 || {
  echo "wayland-scanner not found: install the Debian package libwayland-bin" >&2
  exit 1
}
wayland-scanner private-code "$xml" "$out/$base-protocol.c"
wayland-scanner server-header "$xml" "$out/$base-server-protocol.h"
wayland-scanner client-header "$xml" "$out/$base-client-protocol.h"
