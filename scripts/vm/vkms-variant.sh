#!/bin/sh
# Swaps the vkms build loaded in the vkms rig's guest (as root, in the chroot; init.sh puts every
# build in /run/primebuf/modules as vkms-<variant>.ko): vkms is unloaded and the asked build
# loaded with the options of this boot. vgem stays; vkms takes the DRM minor it frees (the lowest
# free one), so the layout of the boot holds. Nothing may hold a vkms node open (rmmod: EBUSY).
# Usage: sh scripts/vm/vkms-variant.sh clone|stock|offsets
set -eu
dir=/run/primebuf/modules
[ -f "$dir/modules.list" ] || { echo "vkms-variant.sh: no $dir/modules.list (not in the vkms rig's guest?)" >&2; exit 2; }
v=${1:-}
[ -f "$dir/vkms-$v.ko" ] || { echo "vkms-variant.sh: no vkms build '$v' (have: $(cd $dir && ls vkms-*.ko | sed 's/^vkms-//; s/\.ko$//' | tr '\n' ' '))" >&2; exit 2; }
opts=
while read -r name file rest; do
  if [ "$name" = vkms ]; then opts=$rest; fi
done <"$dir/modules.list"
if [ -d /sys/module/vkms ]; then rmmod vkms; fi
# shellcheck disable=SC2086
insmod "$dir/vkms-$v.ko" $opts
echo "$v" >"$dir/vkms.variant"
# devtmpfs creates the node asynchronously: wait (up to ~5 s) for the card whose DRM driver is
# vkms (debugfs dri/<minor>/name: vkms is a platform device without a bound driver in sysfs).
i=0
while :; do
  for n in /sys/kernel/debug/dri/[0-9]*/name; do
    [ -f "$n" ] || continue
    read -r drv _ <"$n" || true
    m=$(basename "$(dirname "$n")")
    if [ "$drv" = vkms ] && [ "$m" -lt 64 ] && [ -c "/dev/dri/card$m" ]; then exit 0; fi
  done
  i=$((i + 1))
  [ "$i" -le 50 ] || { echo "vkms-variant.sh: no vkms card appeared" >&2; exit 1; }
  sleep 0.1
done
