// Conformance: Presenter.presentScene on the real vkms kernel, every frame's writeback capture
// compared with a reference the test composes itself (premultiplied OVER, bottom to top, on
// black). Proves: a fullscreen XRGB surface with an ARGB surface blended over it goes on two
// planes (vkms blends them), nothing composed; more surfaces than vkms has planes (primary, 8
// overlays, cursor: counted from the device) fill every plane, the rest composed beneath; a
// 320x240 buffer scaled to 640x480 is composed (vkms planes cannot scale: SCALING), with what it
// overlaps beneath it (Z_ORDER); a cursor surface goes on the cursor plane, and moving it costs one
// TEST_ONLY and no search (a warm start); a second frame of the
// same shape with a new buffer makes no TEST_ONLY; a frame where one composed surface changes a
// small rectangle composes only that rectangle (and what the ring buffer lacks since its frame).
// Every subtest returns fds, GEM handles and framebuffers to baseline (leakFree).
import t from 'tap';
import { UdmabufAllocator } from '../../src/alloc/backends/udmabuf.js';
import type { Dmabuf } from '../../src/dmabuf/dmabuf.js';
import type { Mapping } from '../../src/dmabuf/mapping.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import type { Device } from '../../src/kms/device.js';
import { readResources, type KmsResources } from '../../src/kms/resources.js';
import { Presenter, type PresenterOptions, type ScanoutBuffer } from '../../src/scanout/index.js';
import type { Rect } from '../../src/scanout/damage.js';
import type { SceneSurface } from '../../src/scanout/scene-types.js';
import { openDriver } from './devices-util.js';
import { disableAll } from './kms-util.js';
import { leakFree, type TapTest } from './leak.js';
import { writebackCapture, type WritebackCapture } from './writeback-util.js';

t.setTimeout(900000); // TCG guest on a shared 2-core host

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');

interface Client {
  readonly buffer: ScanoutBuffer;
  /** The pixel values as written (ARGB8888 / XRGB8888 words). */
  readonly pixels: Uint32Array;
  draw(fn: (x: number, y: number) => number, rects?: readonly Rect[]): void;
  close(): void;
}

function client(dmabuf: Dmabuf, w: number, h: number, format: number, name: string): Client {
  const map: Mapping = dmabuf.map();
  const stride = w * 4;
  const buffer: ScanoutBuffer = { kind: 'dmabuf', width: w, height: h, format, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: dmabuf.fd, offset: 0, stride }], name };
  const pixels = new Uint32Array(w * h);
  return {
    buffer,
    pixels,
    draw(fn, rects = [{ x: 0, y: 0, width: w, height: h }]) {
      dmabuf.beginCpuAccess('write');
      const dv = new DataView(map.buffer);
      for (const r of rects)
        for (let y = r.y; y < r.y + r.height; y++)
          for (let x = r.x; x < r.x + r.width; x++) {
            const v = fn(x, y) >>> 0;
            pixels[y * w + x] = v;
            dv.setUint32(y * stride + x * 4, v, true);
          }
      dmabuf.endCpuAccess('write');
    },
    close() {
      map.close();
      dmabuf.close();
    },
  };
}

/** Background patterns with channels 0 or 255 only: a blend at alpha 0x80 over them is exact in vkms (16-bit) and in 8-bit arithmetic alike. */
function checker(tag: number): (x: number, y: number) => number {
  return (x, y) => 0xff000000 | (((x >> 4) + tag) & 1 ? 0xff0000 : 0) | (((y >> 4) + tag) & 1 ? 0xff00 : 0) | (((x + y) >> 5) & 1 ? 0xff : 0);
}

/** A premultiplied ARGB pixel at alpha 0x80 (each channel at most the alpha). */
function translucent(tag: number): (x: number, y: number) => number {
  return (x, y) => (0x80 << 24) | ((((x + tag) * 3) & 0x7f) << 16) | (((y * 5 + tag) & 0x7f) << 8) | (((x ^ y) + tag) & 0x7f);
}

/** One opaque colour per tile. */
function solid(rgb: number): (x: number, y: number) => number {
  return () => 0xff000000 | rgb;
}

/** The reference: surfaces blended bottom to top (premultiplied OVER) on black; unscaled surfaces only, or nearest for integer scales. */
class Reference {
  readonly px: Uint32Array;
  constructor(readonly W: number, readonly H: number) {
    this.px = new Uint32Array(W * H);
  }
  draw(c: Client, dst: Rect, opaque: boolean): void {
    const { width: bw, height: bh } = c.buffer;
    for (let y = Math.max(0, dst.y); y < Math.min(this.H, dst.y + dst.height); y++) {
      for (let x = Math.max(0, dst.x); x < Math.min(this.W, dst.x + dst.width); x++) {
        const sx = Math.floor(((x - dst.x) * bw) / dst.width);
        const sy = Math.floor(((y - dst.y) * bh) / dst.height);
        const s = c.pixels[sy * bw + sx]!;
        const a = opaque ? 255 : s >>> 24;
        const d = this.px[y * this.W + x]!;
        let out = 0;
        for (const sh of [16, 8, 0]) {
          const sc = (s >>> sh) & 0xff;
          const dc = (d >>> sh) & 0xff;
          out |= Math.min(255, sc + Math.round((dc * (255 - a)) / 255)) << sh;
        }
        this.px[y * this.W + x] = out;
      }
    }
  }
  pixel = (x: number, y: number): number => this.px[y * this.W + x]!;
}

interface Rig {
  vkms: Device;
  res: KmsResources;
  wb: WritebackCapture;
  W: number;
  H: number;
  planes: { primary: number; overlays: number[]; cursor: number | undefined };
  presenter(opts?: Partial<PresenterOptions>): Presenter;
  buffer(w: number, h: number, format: number, name: string, fn: (x: number, y: number) => number): Client;
  close(): void;
}

function rig(t: TapTest): Rig {
  const vkms = openDriver('vkms');
  const res = readResources(vkms, { probe: true });
  const wb = writebackCapture(t, vkms, res);
  const owned: Client[] = [];
  const presenters: Presenter[] = [];
  let udmabuf: UdmabufAllocator | undefined;
  const onCrtc = res.planes.filter((p) => p.possibleCrtcs.includes(wb.crtc) || p.possibleCrtcs.length === 0);
  const planes = {
    primary: wb.primary,
    overlays: res.planes.filter((p) => p.type === 'overlay').map((p) => p.id).sort((a, b) => a - b),
    cursor: res.planes.find((p) => p.type === 'cursor')?.id,
  };
  void onCrtc;
  return {
    vkms,
    res,
    wb,
    W: wb.W,
    H: wb.H,
    planes,
    presenter(opts = {}) {
      const p = new Presenter({ device: vkms, crtcId: wb.crtc, connectorId: wb.connector, mode: wb.mode, extras: [wb.extra], ...opts });
      presenters.push(p);
      return p;
    },
    buffer(w, h, format, name, fn) {
      udmabuf ??= UdmabufAllocator.open();
      const c = client(udmabuf.allocate(w * 4 * h), w, h, format, name);
      owned.push(c);
      c.draw(fn);
      return c;
    },
    close() {
      for (const p of presenters) p.close();
      disableAll(vkms, res);
      for (const o of owned) o.close();
      wb.close();
      udmabuf?.close();
      vkms.close();
    },
  };
}

function rigTest(name: string, fn: (t: TapTest, r: Rig) => Promise<void>): void {
  void leakFree(t, name, async (t) => {
    const r = rig(t);
    try {
      await fn(t, r);
    } finally {
      r.close();
    }
  });
}

function surface(id: string, c: Client, dst: Rect, more: Partial<SceneSurface> = {}): SceneSurface {
  return { id, content: c.buffer, dst, ...more };
}

rigTest('a fullscreen XRGB surface with an ARGB surface blended over it: two planes, nothing composed; a new buffer of the same shape: no TEST_ONLY', async (t, r) => {
  const p = r.presenter();
  const full = { x: 0, y: 0, width: r.W, height: r.H };
  const bg = r.buffer(r.W, r.H, XR24, 'bg', checker(0));
  const fg = r.buffer(256, 192, AR24, 'argb A', translucent(1));
  const dst = { x: 100, y: 80, width: 256, height: 192 };
  r.wb.capture();
  const a = await p.presentScene({ surfaces: [surface('bg', bg, full), surface('fg', fg, dst)] });
  t.ok(a.committed);
  t.same(a.surfaces.map((s) => s.path), ['plane', 'plane'], `both on planes (${p.explainScene().map((x) => `${x.id}: ${x.path} ${x.plane ?? ''}`).join('; ')})`);
  t.equal(a.surfaces[0]!.plane, r.planes.primary, 'the XRGB surface on the primary');
  t.equal(a.surfaces[1]!.plane, r.planes.overlays[0], 'the ARGB surface on the lowest overlay');
  t.equal(a.surfacesComposed, 0, 'nothing composed');
  t.equal(a.bytesComposed, 0);
  t.equal(a.planesUsed, 2);
  const ref = new Reference(r.W, r.H);
  ref.draw(bg, full, true);
  ref.draw(fg, dst, false);
  await r.wb.check(t, a, ref.pixel, 'XRGB + ARGB blended by the planes');

  const tests = p.stats.testOnly;
  const searches = p.stats.sceneSearches;
  const fg2 = r.buffer(256, 192, AR24, 'argb B', translucent(7));
  r.wb.capture();
  const b = await p.presentScene({ surfaces: [surface('bg', bg, full, { damage: [] }), surface('fg', fg2, dst)] });
  t.equal(p.stats.testOnly, tests, 'a new buffer of the same shape: no TEST_ONLY');
  t.equal(p.stats.sceneSearches, searches, 'and no search');
  t.same(b.surfaces.map((s) => s.plane), [r.planes.primary, r.planes.overlays[0]], 'the same planes');
  const ref2 = new Reference(r.W, r.H);
  ref2.draw(bg, full, true);
  ref2.draw(fg2, dst, false);
  await r.wb.check(t, b, ref2.pixel, 'the new ARGB buffer blended');
  const none = await p.presentScene({ surfaces: [surface('bg', bg, full, { damage: [] }), surface('fg', fg2, dst, { damage: [] })] });
  t.notOk(none.committed, 'the same buffers, no damage: no commit');
});

rigTest('a cursor surface goes on the cursor plane', async (t, r) => {
  t.ok(r.planes.cursor, 'vkms has a cursor plane (enable_cursor=1)');
  const p = r.presenter();
  const full = { x: 0, y: 0, width: r.W, height: r.H };
  const bg = r.buffer(r.W, r.H, XR24, 'bg', checker(1));
  const cur = r.buffer(64, 64, AR24, 'cursor', translucent(3));
  const dst = { x: 500, y: 300, width: 64, height: 64 };
  r.wb.capture();
  const a = await p.presentScene({ surfaces: [surface('bg', bg, full), surface('cursor', cur, dst, { cursor: true })] });
  t.equal(a.surfaces[1]!.path, 'plane');
  t.equal(a.surfaces[1]!.plane, r.planes.cursor, 'the cursor on the cursor plane');
  const ref = new Reference(r.W, r.H);
  ref.draw(bg, full, true);
  ref.draw(cur, dst, false);
  await r.wb.check(t, a, ref.pixel, 'cursor blended over the fullscreen surface');

  // the cursor moves: a new shape, but only positions changed: the last assignment, one TEST_ONLY, no search
  const tests = p.stats.testOnly;
  const searches = p.stats.sceneSearches;
  const moved = { x: 700, y: 120, width: 64, height: 64 };
  r.wb.capture();
  const b = await p.presentScene({ surfaces: [surface('bg', bg, full, { damage: [] }), surface('cursor', cur, moved, { cursor: true, damage: [] })] });
  t.equal(b.surfaces[1]!.plane, r.planes.cursor, 'still on the cursor plane');
  t.equal(p.stats.testOnly, tests + 1, 'a move: one TEST_ONLY of the whole state (no per-plane verdicts)');
  t.equal(p.stats.sceneSearches, searches, 'and no search');
  const ref2 = new Reference(r.W, r.H);
  ref2.draw(bg, full, true);
  ref2.draw(cur, moved, false);
  await r.wb.check(t, b, ref2.pixel, 'the cursor at its new place');
});

rigTest('more surfaces than planes: every plane used, the rest composed beneath', async (t, r) => {
  const p = r.presenter();
  const full = { x: 0, y: 0, width: r.W, height: r.H };
  const planeCount = 1 + r.planes.overlays.length + (r.planes.cursor ? 1 : 0);
  t.comment(`vkms planes on the CRTC: ${planeCount} (primary, ${r.planes.overlays.length} overlays, ${r.planes.cursor ? 'cursor' : 'no cursor'})`);
  const tiles = planeCount + 2; // two tiles more than planes, besides the background
  const bg = r.buffer(r.W, r.H, XR24, 'bg', checker(0));
  const surfaces: SceneSurface[] = [surface('bg', bg, full)];
  const clients: Array<{ c: Client; dst: Rect }> = [];
  for (let i = 0; i < tiles; i++) {
    const c = r.buffer(64, 64, XR24, `tile ${i}`, solid(((i * 37) & 0xff) << 16 | ((i * 91) & 0xff) << 8 | ((i * 53 + 40) & 0xff)));
    const dst = { x: 40 + (i % 6) * 150, y: 40 + Math.floor(i / 6) * 150, width: 64, height: 64 };
    clients.push({ c, dst });
    surfaces.push(surface(`tile ${i}`, c, dst));
  }
  r.wb.capture();
  const a = await p.presentScene({ surfaces });
  t.equal(a.planesUsed, planeCount, `every plane used (${planeCount})`);
  const onPlanes = a.surfaces.filter((s) => s.path === 'plane');
  t.equal(onPlanes.length, planeCount - 1, 'all but the composite plane show a surface');
  t.equal(a.surfacesComposed, surfaces.length - (planeCount - 1), 'the rest composed');
  t.equal(a.surfaces[0]!.path, 'composed', 'the background is composed (the composite takes the primary)');
  t.equal(new Set(onPlanes.map((s) => s.plane)).size, onPlanes.length, 'no plane twice');
  for (const s of a.surfaces.slice(1)) if (s.path === 'composed') t.equal(s.reasons[0]?.code, 'NO_PLANE_LEFT', `${s.id}: NO_PLANE_LEFT`);
  const ref = new Reference(r.W, r.H);
  ref.draw(bg, full, true);
  for (const { c, dst } of clients) ref.draw(c, dst, true);
  await r.wb.check(t, a, ref.pixel, 'more surfaces than planes');
});

rigTest('a 320x240 buffer scaled to 640x480 is composed (SCALING), with the surface beneath it; a small change composes only its damage', async (t, r) => {
  const p = r.presenter();
  const full = { x: 0, y: 0, width: r.W, height: r.H };
  const bg = r.buffer(r.W, r.H, XR24, 'bg', checker(0));
  // four flat quadrants: a scaled flat area is its colour whatever the filter, but near the edges
  const quad = (x: number, y: number): number => 0xff000000 | (x < 160 ? (y < 120 ? 0xff0000 : 0x00ff00) : y < 120 ? 0x0000ff : 0xffff00);
  const small = r.buffer(320, 240, XR24, 'video 320x240', quad);
  const dst = { x: 200, y: 150, width: 640, height: 480 };
  r.wb.capture();
  const a = await p.presentScene({ surfaces: [surface('bg', bg, full), surface('video', small, dst)] });
  t.same(a.surfaces.map((s) => s.path), ['composed', 'composed'], `both composed (${a.surfaces.map((x) => `${x.id}: ${x.path} ${x.reasons.map((q) => q.code).join(',')}`).join('; ')})`);
  t.ok(a.surfaces[1]!.reasons.some((x) => x.code === 'SCALING'), 'the scaled surface: SCALING');
  t.equal(a.surfaces[0]!.reasons[0]?.code, 'Z_ORDER', 'the surface beneath it: Z_ORDER');
  t.equal(a.surfaces[0]!.plane, r.planes.primary, 'the composite on the primary');
  t.equal(a.surfacesComposed, 2);
  t.equal(a.bytesComposed, r.W * r.H * 4, 'the first composite: the whole mode');
  const ref = new Reference(r.W, r.H);
  ref.draw(bg, full, true);
  ref.draw(small, dst, true);
  // within 2 pixels of a quadrant edge or of the surface's edge the filter decides: left out
  const edge = (x: number, y: number): boolean => {
    const near = (v: number, e: number): boolean => Math.abs(v - e) <= 2;
    const inside = x >= dst.x - 2 && x < dst.x + dst.width + 2 && y >= dst.y - 2 && y < dst.y + dst.height + 2;
    return inside && (near(x, dst.x) || near(x, dst.x + dst.width) || near(y, dst.y) || near(y, dst.y + dst.height) || near(x, dst.x + 320) || near(y, dst.y + 240));
  };
  await r.wb.check(t, a, ref.pixel, 'scaled by the composition', edge);

  // frame 2: a 16x16 change of the background (the other ring buffer holds nothing yet: all of it)
  const r1 = { x: 32, y: 32, width: 16, height: 16 };
  bg.draw(checker(1), [r1]);
  const b = await p.presentScene({ surfaces: [surface('bg', bg, full, { damage: [r1] }), surface('video', small, dst, { damage: [] })] });
  t.equal(b.bytesComposed, r.W * r.H * 4, 'the second ring buffer was never written: the whole mode');
  // frame 3: another 16x16 change; the ring buffer holds frame 1: frames 2 and 3's damage
  const r2 = { x: 96, y: 48, width: 16, height: 16 };
  bg.draw(checker(1), [r2]);
  r.wb.capture();
  const tests = p.stats.testOnly;
  const c = await p.presentScene({ surfaces: [surface('bg', bg, full, { damage: [r2] }), surface('video', small, dst, { damage: [] })] });
  t.equal(p.stats.testOnly, tests, 'the same shape: no TEST_ONLY');
  t.ok(c.bytesComposed > 0 && c.bytesComposed <= 2 * 16 * 16 * 4, `only the damage composed: ${c.bytesComposed} bytes (two 16x16 rectangles at most ${2 * 16 * 16 * 4})`);
  t.equal(p.stats.lastBytesComposed, c.bytesComposed, 'stats: the last frame');
  t.equal(p.stats.bytesComposed, a.bytesComposed + b.bytesComposed + c.bytesComposed, 'stats: the total');
  const ref3 = new Reference(r.W, r.H);
  ref3.draw(bg, full, true);
  ref3.draw(small, dst, true);
  await r.wb.check(t, c, ref3.pixel, 'the damage composed', edge);
});
