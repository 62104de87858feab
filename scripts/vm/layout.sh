#!/bin/sh
# Changes the DRM node layout inside the vkms rig's guest (as root, in the chroot; init.sh puts
# the modules of this boot in /run/primebuf/modules). Both modules are unloaded, then loaded in
# the asked order; DRM minors are handed out in load order:
#   vkms-first  card0 = vkms, card1 = vgem (the rig's default)
#   vgem-first  card0 = vgem (no KMS), card1 = vkms
# Nothing may hold a vkms or vgem node open while this runs (rmmod fails: EBUSY).
# Usage: sh scripts/vm/layout.sh vkms-first|vgem-first
set -eu
dir=/run/primebuf/modules
[ -f "$dir/modules.list" ] || { echo "layout.sh: no $dir/modules.list (not in the vkms rig's guest?)" >&2; exit 2; }
case "${1:-}" in vkms-first) order="vkms vgem" ;; vgem-first) order="vgem vkms" ;;
  *) echo "usage: layout.sh vkms-first|vgem-first" >&2; exit 2 ;; esac
for m in vkms vgem; do
  if [ -d "/sys/module/$m" ]; then rmmod "$m"; fi
done
for m in $order; do
  opts=
  while read -r name file rest; do
    if [ "$name" = "$m" ]; then opts=$rest; fi
  done <"$dir/modules.list"
  # shellcheck disable=SC2086
  insmod "$dir/$m.ko" $opts
done
# devtmpfs creates the nodes asynchronously: wait (up to ~5 s) for both cards.
i=0
while [ ! -c /dev/dri/card0 ] || [ ! -c /dev/dri/card1 ]; do
  i=$((i + 1))
  [ "$i" -le 50 ] || { echo "layout.sh: /dev/dri/card0 and card1 did not appear" >&2; exit 1; }
  sleep 0.1
done
