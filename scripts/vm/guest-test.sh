#!/bin/sh
# Runs inside the vkms VM (scripts/vkms-vm.mjs test): a preflight for the devices the
# conformance suite needs, then tap. A missing device FAILS the run (never a skip).
# Usage: guest-test.sh <test files...>    (cwd = the checkout)

missing=
driver_of() { # /sys/class/drm/<node> -> its DRM driver name (what DRM_IOCTL_VERSION reports)
  # vkms and vgem are platform devices without a bound driver (no device/driver link):
  # debugfs dri/<minor>/name reads "<driver> dev=... unique=...".
  minor=$(cut -d: -f2 "$1/dev" 2>/dev/null) || return 1
  read -r name _ <"/sys/kernel/debug/dri/$minor/name" 2>/dev/null && echo "$name"
}
have_card() { # <driver>: a primary node (cardN) of that driver exists in /dev/dri
  for n in /sys/class/drm/card[0-9]*; do
    case "${n##*/}" in *-*) continue ;; esac
    [ "$(driver_of "$n")" = "$1" ] && [ -c "/dev/dri/${n##*/}" ] && return 0
  done
  return 1
}
have_render() { # <driver>: a render node of that driver exists in /dev/dri
  for n in /sys/class/drm/renderD[0-9]*; do
    [ "$(driver_of "$n")" = "$1" ] && [ -c "/dev/dri/${n##*/}" ] && return 0
  done
  return 1
}
have_card vkms || missing="$missing
  vkms: no /dev/dri/card* node driven by vkms (module not loaded?)"
have_card vgem || missing="$missing
  vgem: no /dev/dri/card* node driven by vgem (module not loaded?)"
have_render vgem || missing="$missing
  vgem: no /dev/dri/renderD* node driven by vgem"
[ -c /dev/udmabuf ] || missing="$missing
  udmabuf: /dev/udmabuf is missing"
[ -c /dev/dma_heap/system ] || missing="$missing
  dma-heap: /dev/dma_heap/system is missing"

if [ -n "$missing" ]; then
  echo "vkms rig preflight FAILED: the conformance suite needs devices that this VM lacks:$missing" >&2
  echo "not ok - vkms rig preflight: missing devices:$(echo "$missing" | tr '\n' ' ')"
  exit 1
fi
echo "# vkms rig preflight: vkms, vgem (card + render), /dev/udmabuf, /dev/dma_heap/system present" >&2

# One file at a time: KMS has one master, and the DRM leak checks read global debugfs state.
exec node_modules/.bin/tap -R tap --jobs=1 "$@"
