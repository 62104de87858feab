#!/usr/bin/env node
// Benchmark: the presenter's JS-thread time per frame, direct path against the copy path (the
// baseline). Direct: two LINEAR XRGB8888 mode-size udmabufs alternate on the primary plane (the
// steady state: cached verdicts, the write fence as IN_FENCE_FD, one atomic commit). Copy: an
// XBGR8888 udmabuf (no vkms plane takes it) with a 64x64 damaged rectangle per frame, copied
// into the ring off the JS thread. "JS time" is the event loop's active time
// (performance.eventLoopUtilization) over the frames: everything the main thread did, the
// ioctls it made included, and none of the waiting for flips, fences or pool jobs.
// Needs vkms (the VM rig): `node scripts/vkms-vm.mjs run -- node bench/presenter.mjs`; run after
// `npm run build` (imports dist/). Prints one JSON line per path. No target under emulation.
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { CLOCK } from './clock.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(join(root, 'dist', 'src', p));
const { Presenter } = await dist('scanout/index.js');
const { fourcc, DRM_FORMAT_MOD_LINEAR } = await dist('formats/index.js');
const { listDevices } = await dist('kms/discovery.js');
const { Device } = await dist('kms/device.js');
const { readResources, preferredMode } = await dist('kms/resources.js');
const { UdmabufAllocator } = await dist('alloc/backends/udmabuf.js');
const { AtomicRequest } = await dist('kms/atomic.js');
const { native } = await dist('native.js');

// Where the JS thread's time goes: the atomic commit ioctl and the write-fence export, timed
// around the calls the presenter makes (the rest is the presenter's own JS and the loop).
const spent = { commit: 0, fence: 0 };
function timed(obj, name, key) {
  const orig = obj[name];
  obj[name] = function (...args) {
    const t0 = process.hrtime.bigint();
    try {
      return orig.apply(this, args);
    } finally {
      spent[key] += Number(process.hrtime.bigint() - t0) / 1e6;
    }
  };
}
timed(AtomicRequest.prototype, 'commit', 'commit');
timed(native, 'dmabufExportSyncFile', 'fence');

const FRAMES = Number(process.env.PRESENTER_BENCH_FRAMES ?? 300);
const WARMUP = 5;

function openVkms() {
  if (!existsSync('/dev/dri')) return undefined;
  for (const info of listDevices()) {
    if (info.nodeType !== 'primary') continue;
    const dev = Device.open(info.path);
    if (dev.version.name === 'vkms') return dev;
    dev.close();
  }
  return undefined;
}

const dev = openVkms();
if (!dev) {
  console.error('presenter bench: no vkms device (run it in the VM rig: node scripts/vkms-vm.mjs run -- node bench/presenter.mjs)');
  process.exit(2);
}
const res = readResources(dev, { probe: true });
const con = res.connectors.find((c) => !c.writeback);
const mode = preferredMode(con);
const W = mode.hdisplay;
const H = mode.vdisplay;
const crtc = res.crtcs[0].id;
const udmabuf = UdmabufAllocator.open();
const owned = [];
function client(format, name) {
  const d = udmabuf.allocate(W * 4 * H);
  owned.push(d);
  return { kind: 'dmabuf', width: W, height: H, format, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: d.fd, offset: 0, stride: W * 4 }], name };
}

async function run(path) {
  const p = new Presenter({ device: dev, crtcId: crtc, connectorId: con.id, mode });
  const bufs = path === 'direct' ? [client(fourcc('XRGB8888'), 'A'), client(fourcc('XRGB8888'), 'B')] : [client(fourcc('XBGR8888'), 'C')];
  const damage = (i) => [{ x: (i * 64) % (W - 64), y: (i * 32) % (H - 64), width: 64, height: 64 }];
  try {
    for (let i = 0; i < WARMUP; i++) await p.present({ buffer: bufs[i % bufs.length], damage: damage(i) });
    const s0 = p.stats;
    spent.commit = 0;
    spent.fence = 0;
    const e0 = performance.eventLoopUtilization();
    const t0 = process.hrtime.bigint();
    let last;
    for (let i = WARMUP; i < WARMUP + FRAMES; i++) last = await p.present({ buffer: bufs[i % bufs.length], damage: damage(i) });
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const elu = performance.eventLoopUtilization(e0);
    const s1 = p.stats;
    if (last.path !== path) throw new Error(`expected the ${path} path, got ${last.path}`);
    const d = (k) => s1[k] - s0[k];
    return {
      js_ms_per_frame: +(elu.active / FRAMES).toFixed(4),
      commit_call_ms_per_frame: +(spent.commit / FRAMES).toFixed(4),
      fence_export_ms_per_frame: +(spent.fence / FRAMES).toFixed(4),
      wall_ms_per_frame: +(wallMs / FRAMES).toFixed(3),
      frames: FRAMES,
      commits: d('commits'),
      imports: d('imports'),
      addfb2: d('addfb2'),
      allocations: d('allocations'),
      verdicts: d('verdictsComputed'),
      bytes_per_frame: Math.round(d('bytesCopied') / FRAMES),
    };
  } finally {
    p.close();
  }
}

try {
  const direct = await run('direct');
  const copy = await run('copy');
  const meta = { clock: CLOCK, mode: `${W}x${H}@${mode.vrefresh}`, kernel: 'vkms', cpus: cpus().length, loadavg: +loadavg()[0].toFixed(2) };
  console.log(JSON.stringify({ bench: 'presenter', path: 'direct', ...direct, baseline: 'copy', baseline_js_ms_per_frame: copy.js_ms_per_frame, ...meta }));
  console.log(JSON.stringify({ bench: 'presenter', path: 'copy', ...copy, damage: '64x64 per frame', ...meta }));
} finally {
  for (const d of owned) d.close();
  udmabuf.close();
  dev.close();
}
