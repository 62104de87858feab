#!/bin/busybox sh
# PID 1 of the vkms rig's guest (a busybox initramfs built by scripts/vm/prepare.mjs).
# Loads the DRM modules, mounts the host root read-only over virtio-9p under a tmpfs overlay
# (so tools like tap can write; every write is dropped at poweroff), chroots into it and runs
# the host's command script. Talks to the host over virtio serial ports:
#   primebuf.ctl     "booted", "started", "exit <status>", or "fail <why>" (setup error: no retry)
#   primebuf.stdout  the command's stdout      primebuf.stderr  the command's stderr
# Kernel command line: primebuf.run=<dir with cmd.sh> primebuf.without=<vkms,vgem,udmabuf,heap>
#   primebuf.vkms=<clone|stock|offsets> primebuf.nm=<node_modules path> primebuf.hosttmp=<0|1>
#   primebuf.layout=<vkms-first|vgem-first> (vgem-first: vgem is card0, vkms card1)
# The loaded modules' files and options are copied to /run/primebuf/modules in the chroot, so a
# test can change the layout itself (scripts/vm/layout.sh).

/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

ctl=/dev/null
out=/dev/console
err=/dev/console
for p in /sys/class/virtio-ports/*; do
  [ -e "$p/name" ] || continue
  case "$(cat "$p/name")" in
    primebuf.ctl) ctl=/dev/${p##*/} ;;
    primebuf.stdout) out=/dev/${p##*/} ;;
    primebuf.stderr) err=/dev/${p##*/} ;;
  esac
done

say() { echo "$*" >"$ctl"; }
bye() {
  sync
  poweroff -f
  sleep 10
}
fail() {
  echo "primebuf vm: $*" >"$err"
  say "fail $*"
  bye
}

say booted

run=
without=
vkms=clone
overlay=1
nm=
hosttmp=0
layout=vkms-first
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    primebuf.run=*) run=${arg#*=} ;;
    primebuf.without=*) without=${arg#*=} ;;
    primebuf.vkms=*) vkms=${arg#*=} ;;
    primebuf.overlay=*) overlay=${arg#*=} ;;
    primebuf.nm=*) nm=${arg#*=} ;;
    primebuf.hosttmp=*) hosttmp=${arg#*=} ;;
    primebuf.layout=*) layout=${arg#*=} ;;
  esac
done
hidden() { case ",$without," in *",$1,"*) return 0 ;; esac; return 1; }

case "$layout" in vkms-first | vgem-first) ;; *) fail "primebuf.layout=$layout: not vkms-first or vgem-first" ;; esac
# modules.list: "<name> <file> [options...]" in load order (dependencies first). vgem-first
# holds vkms back until vgem is loaded (DRM minors go in load order).
later=
while read -r name file opts; do
  [ -n "$name" ] || continue
  if [ "$name" = vkms ]; then
    hidden vkms && continue
    file=vkms-$vkms.ko
    if [ "$layout" = vgem-first ]; then
      later="$file $opts"
      continue
    fi
  fi
  if [ "$name" = vgem ] && hidden vgem; then continue; fi
  # shellcheck disable=SC2086
  insmod "/lib/modules/$file" $opts || fail "insmod $file $opts failed"
done </etc/modules.list
if [ -n "$later" ]; then
  # shellcheck disable=SC2086
  insmod /lib/modules/$later || fail "insmod $later failed"
fi

mkdir -p /lower /rw /root
mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=512000 hostroot /lower ||
  fail "mounting the host root over virtio-9p failed"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
if [ "$overlay" = 1 ]; then
  mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /root ||
    fail "overlay over the host root failed"
else
  mount --bind /lower /root
fi

r=/root
# The checkout's node_modules comes as a squashfs snapshot on /dev/vda (writable through an overlay).
if [ -n "$nm" ]; then
  mkdir -p /nm /rw/nm-upper /rw/nm-work
  mount -t squashfs -o ro /dev/vda /nm || fail "mounting the node_modules image failed"
  mount -t overlay -o lowerdir=/nm,upperdir=/rw/nm-upper,workdir=/rw/nm-work overlay "$r$nm" ||
    fail "overlay on $nm failed"
fi
mount -t devtmpfs devtmpfs $r/dev || fail "devtmpfs in the chroot failed"
mkdir -p $r/dev/pts $r/dev/shm
# What udev would add: bash process substitution needs /dev/fd.
ln -sf /proc/self/fd $r/dev/fd
ln -sf /proc/self/fd/0 $r/dev/stdin
ln -sf /proc/self/fd/1 $r/dev/stdout
ln -sf /proc/self/fd/2 $r/dev/stderr
mount -t devpts -o newinstance,ptmxmode=0666 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 shm $r/dev/shm
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t debugfs debugfs $r/sys/kernel/debug || fail "debugfs failed"
# A fresh /tmp, unless the checkout or the command script lives under the host's /tmp (then the
# overlay keeps it visible, and writable in RAM all the same).
[ "$hosttmp" = 1 ] || mount -t tmpfs -o mode=1777 tmp $r/tmp
mount -t tmpfs -o mode=0755 run $r/run
mkdir -p -m 0700 $r/run/user/0
# For scripts/vm/layout.sh: vgem and the vkms build of this boot, and their options.
mkdir -p $r/run/primebuf/modules
cp /lib/modules/vgem.ko $r/run/primebuf/modules/vgem.ko
cp "/lib/modules/vkms-$vkms.ko" $r/run/primebuf/modules/vkms.ko
# every vkms build, for scripts/vm/vkms-variant.sh
cp /lib/modules/vkms-*.ko $r/run/primebuf/modules/
echo "$vkms" >$r/run/primebuf/modules/vkms.variant
grep -E '^(vkms|vgem) ' /etc/modules.list >$r/run/primebuf/modules/modules.list

hidden udmabuf && rm -f $r/dev/udmabuf
hidden heap && rm -f $r/dev/dma_heap/system

[ -n "$run" ] && [ -f "$r$run/cmd.sh" ] || fail "no command script at $run/cmd.sh"

say started
chroot $r /bin/sh "$run/cmd.sh" </dev/null >"$out" 2>"$err"
status=$?
say "exit $status"
bye
