#!/usr/bin/env node
// Benchmark: a wl_shm client's 1024x768 XRGB8888 frames through primebuf's own wl_shm and the
// presenter, zero copy on against off (the baseline). The client (in this process, over a
// socketpair) has two buffers, each in its own memfd pool sealed as Weston's clients seal them
// (F_SEAL_SHRINK | F_SEAL_SEAL), and alternates them with full damage every frame, as
// weston-simple-shm does. On: each buffer is a udmabuf scanned out directly. Off: wl_shm without
// zeroCopy, each frame copied from the pool into the presenter's ring through the buffer's
// copySource (a presenter without copySource support, i.e. before the kiosk branch's presenter
// change, copies the same pages from the udmabuf instead, through `coherent: false`; the line says
// which ran). Per frame: the process's CPU time (user + system, the client's part is the same
// small per-frame protocol work in both) and the bytes copied.
// Needs vkms and udmabuf (the VM rig): `node scripts/vkms-vm.mjs run -- node bench/shm-zero-copy.mjs`
// after `npm run build` (imports dist/). Prints one JSON line per mode, the baseline beside.
import { cpus, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLOCK } from './clock.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(join(root, 'dist', p));
const { Presenter } = await dist('src/scanout/index.js');
const { fourcc } = await dist('src/formats/index.js');
const { openDriver } = await dist('test/vkms/devices-util.js');
const { readResources, preferredMode } = await dist('src/kms/resources.js');
const { UdmabufAllocator } = await dist('src/alloc/backends/udmabuf.js');
const { ownShmCompositor, ownShmClient, clientBuffer, poolFile, pattern } = await dist('test/util/own-shm.js');

const FRAMES = Number(process.env.SHM_BENCH_FRAMES ?? 240);
const WARMUP = 6;
const W = 1024;
const H = 768;
const XR24 = fourcc('XRGB8888');

let dev;
try {
  dev = openDriver('vkms');
} catch (err) {
  console.error(`shm-zero-copy bench: ${err.message} (run it in the VM rig: node scripts/vkms-vm.mjs run -- node bench/shm-zero-copy.mjs)`);
  process.exit(2);
}
const res = readResources(dev, { probe: true });
const con = res.connectors.find((c) => !c.writeback);
const mode = preferredMode(con);
if (mode.hdisplay !== W || mode.vdisplay !== H) console.error(`shm-zero-copy bench: mode ${mode.hdisplay}x${mode.vdisplay}, the buffers are ${W}x${H}`);
const crtc = res.crtcs[0].id;
const udmabuf = UdmabufAllocator.open();

function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function run(zeroCopy) {
  const comp = ownShmCompositor(zeroCopy ? { zeroCopy: { udmabuf } } : {});
  const client = await ownShmClient(comp.server);
  const p = new Presenter({ device: dev, crtcId: crtc, connectorId: con.id, mode, onRelease: (b) => bufOf.get(b)?.release() });
  const fds = [];
  const bufOf = new Map();
  const cleanups = [];
  let path = zeroCopy ? 'udmabuf direct' : 'copySource';
  try {
    const frames = [];
    for (const seed of [1, 2]) {
      const fd = poolFile('sealed', W * 4 * H, pattern(W, H, W * 4, seed));
      fds.push(fd);
      const b = await clientBuffer(client, comp, fd, W * 4 * H, { offset: 0, width: W, height: H, stride: W * 4, format: XR24 });
      const sb = b.shm.scanoutBuffer();
      bufOf.set(sb, b.shm);
      frames.push({ buffer: sb, shm: b.shm });
    }
    const damage = [{ x: 0, y: 0, width: W, height: H }];
    let present = (f) => p.present({ buffer: f.buffer, damage });
    if (!zeroCopy) {
      try {
        await present(frames[0]);
      } catch (err) {
        // this branch's presenter does not take a copySource: copy the same pages from a udmabuf
        path = `udmabuf copied (coherent: false; the presenter refused the copySource: ${err.message})`;
        const zc = ownShmCompositor({ zeroCopy: { udmabuf } });
        const c2 = await ownShmClient(zc.server);
        cleanups.push(() => c2.conn.close(), () => zc.server.close());
        for (const [i, f] of frames.entries()) {
          const b = await clientBuffer(c2, zc, fds[i], W * 4 * H, { offset: 0, width: W, height: H, stride: W * 4, format: XR24 });
          f.buffer = b.shm.scanoutBuffer();
          bufOf.set(f.buffer, b.shm);
        }
        present = (f) => p.present({ buffer: f.buffer, damage, coherent: false });
      }
    }
    for (let i = 0; i < WARMUP; i++) await present(frames[i % 2]);
    const s0 = p.stats;
    const c0 = cpuUs();
    const t0 = process.hrtime.bigint();
    let last;
    for (let i = 0; i < FRAMES; i++) {
      last = await present(frames[i % 2]);
      await client.conn.roundtrip(); // the client's side of a frame: its requests and the release
    }
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = cpuUs() - c0;
    const s1 = p.stats;
    const d = (k) => s1[k] - s0[k];
    return {
      path,
      last_path: last.path,
      cpu_us_per_frame: Math.round(cpu / FRAMES),
      bytes_copied_per_frame: Math.round(d('bytesCopied') / FRAMES),
      wall_ms_per_frame: +(wallMs / FRAMES).toFixed(3),
      commits: d('commits'),
      imports: d('imports'),
      addfb2: d('addfb2'),
      frames: FRAMES,
    };
  } finally {
    p.close();
    for (const fn of cleanups) fn();
    client.conn.close();
    comp.server.close();
    for (const fd of fds) fd.close();
  }
}

try {
  const off = await run(false);
  const on = await run(true);
  const meta = { clock: CLOCK, buffer: `${W}x${H} XRGB8888, 2 sealed memfd pools, full damage`, mode: `${mode.hdisplay}x${mode.vdisplay}@${mode.vrefresh}`, kernel: 'vkms', cpus: cpus().length, loadavg: +loadavg()[0].toFixed(2) };
  console.log(JSON.stringify({ bench: 'shm-zero-copy', zero_copy: false, ...off, ...meta }));
  console.log(
    JSON.stringify({
      bench: 'shm-zero-copy',
      zero_copy: true,
      ...on,
      baseline: 'zero_copy off',
      baseline_cpu_us_per_frame: off.cpu_us_per_frame,
      baseline_bytes_copied_per_frame: off.bytes_copied_per_frame,
      cpu_ratio_to_baseline: +(on.cpu_us_per_frame / off.cpu_us_per_frame).toFixed(3),
      ...meta,
    }),
  );
} finally {
  udmabuf.close();
  dev.close();
}
