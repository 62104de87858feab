// The vkms rig's fixed choices, in one place. Plain Node, no dependencies.
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * THE kernel pin: Debian's ABI name of the 6.12 kernel the guest boots (packages
 * linux-image-<pin>-amd64, linux-headers-<pin>-amd64, linux-headers-<pin>-common,
 * linux-kbuild-<pin>; linux-source-6.12 at the same package version).
 * When apt no longer offers it, the rig falls back to the newest 6.12 that apt offers
 * (what linux-image-6.12-amd64 depends on) and says so.
 */
export const KERNEL_PIN = process.env.PRIMEBUF_KERNEL_PIN || '6.12.117+deb12'; // env: only to exercise the fallback
export const KERNEL_SERIES = '6.12';
export const KERNEL_FLAVOUR = 'amd64';

/** Debian packages the rig needs on the host, with a file proving each is installed. */
export const HOST_PACKAGES = {
  'qemu-system-x86': '/usr/bin/qemu-system-x86_64',
  'busybox-static': '/bin/busybox',
  kmod: '/usr/bin/kmod',
  'xz-utils': '/usr/bin/xz',
  'squashfs-tools': '/usr/bin/mksquashfs',
  // Guest-side tools: the guest chroots into the host root, so they live on the host.
  'drm-info': '/usr/bin/drm_info',
  'wayland-utils': '/usr/bin/wayland-info',
  weston: '/usr/bin/weston',
  'libdrm-tests': '/usr/bin/modetest',
  // Mesa's DRI drivers (kms_swrast for GBM/EGL on vkms, llvmpipe for weston's GL renderer):
  // weston only recommends them, and the rig installs without recommends.
  'libgl1-mesa-dri': '/usr/lib/x86_64-linux-gnu/dri/kms_swrast_dri.so',
  // v4l2-ctl: the V4L2 conformance tests compare primebuf's view of vivid with it
  'v4l-utils': '/usr/bin/v4l2-ctl',
  // gdb: the backtrace of a Weston demo client's core tells its own known crash from one the
  // compositor caused (test/util/weston-clients.ts)
  gdb: '/usr/bin/gdb',
  // The benchmark's second anchor beside Weston (bench/kiosk-vs-weston.mjs, issue 19): cage
  // 0.1.4 on wlroots 0.15 (cage 22 KB, libwlroots10 267 KB, libinput and friends ~0.5 MB to
  // download; ~1.4 MB installed without weston's share), run as an unprivileged user through
  // seatd (27 KB; 0.1 MB installed), with the Xwayland that Debian's cage is built for (xwayland
  // 0.9 MB + xserver-common 2.4 MB; ~5 MB installed). Together ~4.6 MB to download, ~10 MB
  // installed on a host without weston (less beside it: libinput, libepoxy are shared).
  cage: '/usr/bin/cage',
  seatd: '/usr/sbin/seatd',
  xwayland: '/usr/bin/Xwayland',
  // Real multi-surface clients for the scene tests and bench:scene (issue 20): GStreamer 1.22's
  // gst-launch-1.0 (gstreamer1.0-tools, 93 KB to download, 281 KB installed), videotestsrc and
  // videoconvert (gstreamer1.0-plugins-base, 0.7 MB; 2.4 MB), v4l2src for vivid
  // (gstreamer1.0-plugins-good, 2.2 MB; 7.6 MB) and waylandsink, which puts its video in a
  // wl_subsurface scaled by wp_viewporter (gstreamer1.0-plugins-bad, 3.0 MB; 10.6 MB, and it
  // pulls in many codec libraries as dependencies). weston-subsurfaces comes with weston above.
  'gstreamer1.0-tools': '/usr/bin/gst-launch-1.0',
  'gstreamer1.0-plugins-base': '/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstvideotestsrc.so',
  'gstreamer1.0-plugins-good': '/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstvideo4linux2.so',
  'gstreamer1.0-plugins-bad': '/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstwaylandsink.so',
  // Input in the guest (issue 21): systemd-udevd, which tags the uinput devices the tests make so
  // that libinput takes them (test/util/uinput.ts starts it in the tests that need it). udev 252
  // is 1.7 MB to download, 10.8 MB installed (with libudev1, already there for libinput). libinput
  // itself (libinput10, libinput-bin) comes with weston and cage above.
  udev: '/lib/systemd/systemd-udevd',
  // Real applications in the kiosk (issue 21, test/vkms/real-apps.test.ts), Debian 12's: foot 1.13
  // (242 KB to download, 584 KB installed; with libfcft4, libutf8proc2 and foot-terminfo 396 KB,
  // 1.2 MB), gtk3-widget-factory (gtk-3-examples, 1.6 MB; 12.1 MB: GTK itself comes with
  // weston's and GStreamer's dependencies), Qt 5.15's widgets examples (qtbase5-examples, 4.5 MB;
  // 23 MB) and its Wayland platform plugin (qtwayland5, 204 KB; 1.5 MB) which with Qt's own
  // libraries (libqt5core5a, -gui5, -widgets5, -waylandclient5 and 16 more) is ~18 MB to download
  // and ~74 MB installed, wev (13 KB; 53 KB) and wl-clipboard (26 KB; 144 KB). Together ~20 MB to
  // download, ~87 MB installed. foot needs a monospace font: DejaVu Sans Mono (fonts-dejavu-core,
  // 1.1 MB; 3 MB), usually present already as fontconfig's default.
  foot: '/usr/bin/foot',
  'gtk-3-examples': '/usr/bin/gtk3-widget-factory',
  'qtbase5-examples': '/usr/lib/x86_64-linux-gnu/qt5/examples/widgets/widgets/calculator/calculator',
  qtwayland5: '/usr/lib/x86_64-linux-gnu/qt5/plugins/platforms/libqwayland-generic.so',
  wev: '/usr/bin/wev',
  'wl-clipboard': '/usr/bin/wl-copy',
  'fonts-dejavu-core': '/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf',
};

/** Modules the guest loads, in this order after their dependencies, with their options. */
export const GUEST_MODULES = [
  ['drm_kms_helper', 'fbdev_emulation=0'], // leaves the CRTC idle (no fbcon at 1024x768)
  ['vkms', 'enable_overlay=1 enable_writeback=1 enable_cursor=1'],
  ['vgem', ''],
  ['9pnet_virtio', ''],
  ['9p', ''],
  ['overlay', ''],
  ['virtio_blk', ''], // the checkout's node_modules as a squashfs image (9p is slow for 16k small files)
  ['squashfs', ''],
  // The V4L2 test driver (issue 13): one instance with a capture (0x1) and an output (0x100)
  // node only, /dev/video0 and /dev/video1 (vivid's default creates ~20 nodes and a framebuffer).
  // Its dependencies (videodev, mc, videobuf2-*, v4l2-tpg, v4l2-dv-timings, cec, rc-core) come
  // from `modinfo -F depends` (prepare.mjs moduleOrder), loaded before it.
  ['vivid', 'n_devs=1 node_types=0x101'],
  // Input (issue 21): evdev for /dev/input/event*, uinput for the tests' virtual devices
  // (test/fixtures/uinput-inject.c). Both small and without dependencies; loading them costs the
  // boot nothing measurable, and no device exists until a test makes one.
  ['evdev', ''],
  ['uinput', ''],
];

/** Devices `--without` can hide from the guest. */
export const HIDEABLE = ['vkms', 'vgem', 'udmabuf', 'heap'];

/** DRM node layouts (init.sh, layout.sh): vkms-first = card0 vkms, card1 vgem; vgem-first the other way. */
export const LAYOUTS = ['vkms-first', 'vgem-first'];

/**
 * vkms builds: `clone` (default) has Virtual-1 and Writeback-1 clonable; `stock` is as shipped;
 * `offsets` is `clone` that also reads a framebuffer's plane offset once (vkms-offsets.patch:
 * stock 6.12 applies it twice), so both behaviours of the plane-offset probe can be tested.
 * Every build is in the initramfs; /run/primebuf/modules holds them all in the guest
 * (scripts/vm/vkms-variant.sh swaps the loaded one).
 */
export const VKMS_VARIANTS = ['clone', 'stock', 'offsets'];

/** The patches of each vkms build, applied in order (-p1 in drivers/gpu/drm/vkms). */
export const VKMS_PATCHES = { clone: ['vkms-clone.patch'], stock: [], offsets: ['vkms-clone.patch', 'vkms-offsets.patch'] };

export const QEMU = {
  // -avx2: QEMU 7.2's AVX2 gather emulation crashes llvmpipe in the guest (VKMS-VM.md)
  cpu: process.env.PRIMEBUF_VM_CPU ?? 'max,-avx2',
  memory: process.env.PRIMEBUF_VM_MEMORY ?? '2048',
  cpus: process.env.PRIMEBUF_VM_CPUS ?? '2',
};

/** Time bounds (seconds). */
export const TIMEOUTS = {
  apt: 900,
  download: 900,
  extract: 600,
  build: 600,
  initramfs: 300,
  lock: 1800, // waiting for another checkout's prepare
  boot: Number(process.env.PRIMEBUF_VM_BOOT_TIMEOUT ?? 120), // qemu start -> the command starts
  command: Number(process.env.PRIMEBUF_VM_TIMEOUT ?? 1200), // default for `run` / `test`
};

export const BOOT_ATTEMPTS = 3;

/**
 * --icount: QEMU counts instead of timing. The guest's clocks advance one nanosecond per guest
 * instruction executed (shift=0) and, with sleep=on, at real speed while every vCPU idles; so a
 * process's CPU time in the guest is the instructions it executed, whatever the host's load.
 * Multi-threaded TCG is off under it (the vCPUs take turns on one host thread). The guest command
 * sees PRIMEBUF_VM_CLOCK=icount (else wall): the benchmarks print it as the clock of a figure.
 */
export const ICOUNT_ARGS = ['-icount', 'shift=0,sleep=on'];

export function cacheRoot() {
  const base = process.env.PRIMEBUF_CACHE ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'primebuf');
  return join(base, 'vm');
}
