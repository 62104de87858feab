// Conformance: 120 non-blocking page flips on vkms complete, each with its page-flip event
// delivered on the Node event loop (libuv poll on the DRM fd, no busy waiting), at the display
// rate. The rate is measured from the kernel's vblank timestamps and reported.
import t from 'tap';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { PropertyBlob } from '../../src/kms/blob.js';
import type { PageFlipEvent } from '../../src/kms/events.js';
import { Framebuffer } from '../../src/kms/framebuffer.js';
import { openDriver } from './devices-util.js';
import { disableAll, placePlane, primaryOutput } from './kms-util.js';
import { leakFree } from './leak.js';

const XR24 = fourcc('XRGB8888');
const FLIPS = 120;

leakFree(t, `${FLIPS} non-blocking flips with events at the display rate`, async (t) => {
  const vkms = openDriver('vkms');
  const { res, crtc, virt, mode, W, H, primary } = primaryOutput(vkms);
  const hz = (mode.clock * 1000) / (mode.htotal * mode.vtotal);
  const bufs = [0, 1].map(() => DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 }));
  const fbs = bufs.map((b) => Framebuffer.create(vkms, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: b.handle, pitch: b.pitch }] }));
  const blob = PropertyBlob.fromMode(vkms, mode);
  const setup = vkms.atomic().set(crtc.id, 'MODE_ID', blob).set(crtc.id, 'ACTIVE', 1).set(virt.id, 'CRTC_ID', crtc.id);
  placePlane(setup, primary.id, crtc.id, fbs[0]!, 0, 0, W, H);
  const first = setup.commit({ allowModeset: true });
  await first.flip;

  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  const events: PageFlipEvent[] = [];
  const latencies: number[] = [];
  const commitMs: number[] = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < FLIPS; i++) {
    const c0 = process.hrtime.bigint();
    const { flip } = vkms.atomic().set(primary.id, 'FB_ID', fbs[(i + 1) % 2]!).commit();
    commitMs.push(Number(process.hrtime.bigint() - c0) / 1e6);
    const [e] = await flip;
    // the vblank timestamp is CLOCK_MONOTONIC, as is process.hrtime: delivery latency on the loop
    latencies.push(Number(process.hrtime.bigint() - e!.timestampNs) / 1e6);
    events.push(e!);
  }
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  clearInterval(ticker);

  t.equal(events.length, FLIPS, `${FLIPS} flip events`);
  t.ok(events.every((e) => e.crtcId === crtc.id), 'every event names the CRTC');
  let increasing = true;
  for (let i = 1; i < events.length; i++) {
    if (!(events[i]!.sequence > events[i - 1]!.sequence && events[i]!.timestampNs > events[i - 1]!.timestampNs)) increasing = false;
  }
  t.ok(increasing, 'vblank sequence and timestamps strictly increase');
  const spanNs = Number(events.at(-1)!.timestampNs - events[0]!.timestampNs);
  const spanSeq = events.at(-1)!.sequence - events[0]!.sequence;
  const vblankHz = (spanSeq * 1e9) / spanNs;
  const flipHz = ((FLIPS - 1) * 1e9) / spanNs;
  const missed = spanSeq - (FLIPS - 1);
  const sorted = [...latencies].sort((a, b) => a - b);
  const cs = [...commitMs].sort((a, b) => a - b);
  t.comment(
    `mode ${mode.name}@${hz.toFixed(2)} Hz; vblank rate from the events' timestamps ${vblankHz.toFixed(2)} Hz; ` +
      `flips completed ${flipHz.toFixed(2)} per second (${missed} vblanks passed without a flip); wall ${wallMs.toFixed(0)} ms; ` +
      `event delivery latency median ${sorted[sorted.length >> 1]!.toFixed(2)} ms, max ${sorted.at(-1)!.toFixed(2)} ms; ` +
      `commit() call median ${cs[cs.length >> 1]!.toFixed(2)} ms, max ${cs.at(-1)!.toFixed(2)} ms; ${ticks} timer ticks meanwhile`,
  );
  // Kernel timestamps, not wall-clock timing: each flip lands on a vblank of the mode's rate.
  t.ok(Math.abs(vblankHz - hz) / hz < 0.02, `events come at the display rate: ${vblankHz.toFixed(2)} Hz vs mode ${hz.toFixed(2)} Hz`);
  let onGrid = true;
  const period = 1e9 / hz;
  for (let i = 1; i < events.length; i++) {
    const dt = Number(events[i]!.timestampNs - events[i - 1]!.timestampNs);
    const dseq = events[i]!.sequence - events[i - 1]!.sequence;
    if (Math.abs(dt - dseq * period) > period * 0.1) onGrid = false;
  }
  t.ok(onGrid, 'every flip completed on a vblank (timestamp deltas are whole frame periods)');
  t.ok(ticks > FLIPS / 4, 'the event loop ran timers between flips (no busy wait)');
  t.equal(vkms.events.pendingCount, 0);

  disableAll(vkms, res);
  for (const f of fbs) f.close();
  for (const b of bufs) b.close();
  blob.close();
  vkms.close();
});
