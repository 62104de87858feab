#!/usr/bin/env node
// The per-flip floor from Node (the second half of bench/flip-floor.sh; the first is the same
// loop in C, bench/flip-floor.c). In the vkms guest, through primebuf's public API only, no
// Wayland: two mode-size dumb buffers alternate on the primary plane,
//   atomic:    card.atomic() with the presenter's per-frame plane properties, commit(), await flip
//   atomic prepared: the same through the addon with arrays made once (no request built per flip)
//   presenter: Presenter.present() of the two buffers as dma-bufs (direct, steady state)
//   idle:      a Node process doing nothing but a 60 Hz timer (the event loop's own floor)
// One JSON line each: CPU per flip or tick (process.cpuUsage(): user + sys of every thread, as the
// kiosk bench reads /proc/PID/stat), the event loop's active time per flip, the atomic commit
// ioctl's time (wall time around the addon's call), the frame rate.
//   node bench/flip-floor.mjs [--card /dev/dri/card0] [--flips N] [--only atomic,presenter,idle]
// (after npm run build)
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLOCK, baselineOf } from './clock.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// the package root and its subpath exports, by name (package.json "exports": dist/src/...)
const { Device, readResources, preferredMode, Presenter, fourcc, DRM_FORMAT_MOD_LINEAR } = await import('primebuf');
const { PropertyBlob, Framebuffer } = await import('primebuf/kms');
const { DumbBuffer } = await import('primebuf/alloc');
// the atomic commit ioctl's own time (wall time around the addon call; it does not block)
const { native } = await import(join(root, 'dist/src/native.js'));
let commitMs = 0;
const drmAtomicCommit = native.drmAtomicCommit;
native.drmAtomicCommit = (...args) => {
  const t0 = performance.now();
  try {
    return drmAtomicCommit(...args);
  } finally {
    commitMs += performance.now() - t0;
  }
};

const { values } = parseArgs({ options: { card: { type: 'string' }, flips: { type: 'string' }, only: { type: 'string' } } });
const CARD = values.card ?? '/dev/dri/card0';
const FLIPS = Number(values.flips ?? 300);
const WARMUP = 10;
/** --only atomic|presenter|idle (comma-separated): run those measurements only */
const ONLY = values.only?.split(',');

/** Runs `step` WARMUP + FLIPS times; CPU, event-loop active time and wall time over the last FLIPS. */
async function measure(name, step, extra = {}) {
  if (ONLY && !ONLY.some((o) => name.startsWith(o))) return;
  for (let i = 0; i < WARMUP; i++) await step(i);
  commitMs = 0;
  const c0 = process.cpuUsage();
  const e0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  for (let i = WARMUP; i < WARMUP + FLIPS; i++) await step(i);
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const elu = performance.eventLoopUtilization(e0);
  const r = (x) => +x.toFixed(4);
  console.log(JSON.stringify({
    bench: 'flip-floor', case: `floor-node-${name.replaceAll(' ', '-')}`, impl: 'node', props: name, clock: CLOCK, flips: FLIPS,
    cpuMsPerFlip: r((c.user + c.system) / 1000 / FLIPS), userMsPerFlip: r(c.user / 1000 / FLIPS), sysMsPerFlip: r(c.system / 1000 / FLIPS),
    loopActiveMsPerFlip: r(elu.active / FLIPS), commitIoctlMsPerFlip: r(commitMs / FLIPS), fps: +((FLIPS * 1000) / wall).toFixed(2), ...extra,
    baseline: baselineOf(`floor-node-${name.replaceAll(' ', '-')}`), loadavg: +loadavg()[0].toFixed(2),
  }));
}

const card = Device.open(CARD);
try {
  const res = readResources(card, { probe: true });
  const connector = res.connectors.find((c) => !c.writeback && c.connection === 'connected');
  const mode = preferredMode(connector);
  const encoder = res.encoders.find((e) => connector.encoders.includes(e.id));
  const crtc = res.crtcs.find((c) => encoder.possibleCrtcs.includes(c.id));
  const primary = res.planes.find((p) => p.type === 'primary' && p.possibleCrtcs.includes(crtc.id));
  const [w, h] = [mode.hdisplay, mode.vdisplay];
  const dumbs = [0, 1].map(() => DumbBuffer.create(card, { width: w, height: h, bpp: 32 }));
  const fbs = dumbs.map((d) => Framebuffer.create(card, { width: w, height: h, format: fourcc('XRGB8888'), modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: d.handle, pitch: d.pitch }] }));
  const modeBlob = PropertyBlob.fromMode(card, mode);
  const rect = { SRC_X: 0, SRC_Y: 0, SRC_W: BigInt(w) << 16n, SRC_H: BigInt(h) << 16n, CRTC_X: 0, CRTC_Y: 0, CRTC_W: w, CRTC_H: h };
  const hasRotation = card.objectPropertyIds(primary.id).has('rotation');
  await card.atomic()
    .set(crtc.id, 'MODE_ID', modeBlob).set(crtc.id, 'ACTIVE', 1).set(connector.id, 'CRTC_ID', crtc.id)
    .set(primary.id, 'FB_ID', fbs[0]).set(primary.id, 'CRTC_ID', crtc.id).setAll(primary.id, rect)
    .commit({ allowModeset: true }).flip;

  // 1. the atomic request API: what the presenter commits on a direct frame, nothing else
  await measure('atomic', async (i) => {
    const req = card.atomic().set(primary.id, 'FB_ID', fbs[(i + 1) & 1]).set(primary.id, 'CRTC_ID', crtc.id).setAll(primary.id, rect);
    if (hasRotation) req.set(primary.id, 'rotation', 1);
    await req.commit({ crtcCount: 1 }).flip;
  });
  await measure('atomic fb-only', async (i) => {
    await card.atomic().set(primary.id, 'FB_ID', fbs[(i + 1) & 1]).commit({ crtcCount: 1 }).flip;
  });
  // the same flip without building a request: the addon's commit with arrays made once (what a
  // steady-state request reuse could save at most), the event through the device's dispatcher
  {
    const ids = card.objectPropertyIds(primary.id);
    const names = ['FB_ID', 'CRTC_ID', ...Object.keys(rect), ...(hasRotation ? ['rotation'] : [])];
    const objs = new Uint32Array(names.length).fill(primary.id);
    const props = Uint32Array.from(names, (n) => ids.get(n));
    const vals = BigUint64Array.from(names, (n) => (n === 'CRTC_ID' ? BigInt(crtc.id) : n === 'rotation' ? 1n : n === 'FB_ID' ? 0n : BigInt(rect[n])));
    const fbIds = fbs.map((f) => BigInt(f.id));
    await measure('atomic prepared', async (i) => {
      vals[0] = fbIds[(i + 1) & 1];
      const token = card.events.expect(1);
      native.drmAtomicCommit(card.fd, objs, props, vals, undefined, 0x201 /* NONBLOCK | PAGE_FLIP_EVENT */, token.userData);
      await token.done;
    });
  }
  for (const fb of fbs) fb.close();

  // 2. the presenter: the same two buffers as dma-bufs (a client's buffers), direct
  const dmabufs = dumbs.map((d) => d.exportDmabuf());
  const buffers = dmabufs.map((d, i) => ({ kind: 'dmabuf', width: w, height: h, format: fourcc('XRGB8888'), modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: d.fd, offset: 0, stride: dumbs[i].pitch }], name: `buffer ${i}` }));
  const presenter = new Presenter({ device: card, crtcId: crtc.id, connectorId: connector.id, mode });
  try {
    let path;
    await measure('presenter', async (i) => {
      path = (await presenter.present({ buffer: buffers[i & 1] })).path;
    });
    if (path !== undefined && path !== 'direct') throw new Error(`the presenter took the ${path} path, not direct`);
  } finally {
    presenter.close();
    for (const d of dmabufs) d.close();
    for (const d of dumbs) d.close();
  }
} finally {
  card.close();
}

// 3. Node idle: a 60 Hz timer and nothing else
await measure('idle 60 Hz timer', () => new Promise((r) => setTimeout(r, 1000 / 60)), { what: 'per tick' });
