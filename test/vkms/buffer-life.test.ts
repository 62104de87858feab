// One buffer object from socket to plane, on the real vkms kernel (issue 18): the kiosk
// (compositor-example/) in-process with a raw Wayland client that sends attach, commit and
// wl_buffer.destroy in one flush. Proves:
// - fault 3: 100 frames of `attach(B); commit; destroy(B)` in one flush leave the kiosk's open
//   fds, primebuf's framebuffers and GEM handles and the kernel's framebuffer list (debugfs) where
//   they were, and every buffer was imported through PRIME once (at create, by linux-dmabuf); the
//   same for wl_shm buffers, zero copy (sealed pools: udmabuf on the plane) and copied (unsealed);
// - fault 6: a destroyed wl_buffer that is the surface's current content stays on screen (the
//   writeback capture shows its pixels, not black) and frame callbacks keep coming, until a new
//   buffer is attached; wl_buffer.release of a replaced buffer comes from the library;
// - fault 2: with --force-copy, buffers destroyed in the flush of their commit (so during the
//   copy and the flip) are never imported again from fd numbers that were closed: every PRIME
//   import the kiosk makes names an open dma-buf, one per buffer, and no copy source (dup fd,
//   mapping), framebuffer or GEM handle of theirs is left behind;
// - a linux-dmabuf buffer is imported once in its life: shown direct, then copied, then direct
//   again through the presenter, the device's PRIME imports stay 1 and its framebuffer is made
//   from that import; its end (destroyed, last lock gone) removes its framebuffer and copy
//   source without forget().
import t from 'tap';
import { readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { fourcc } from '../../src/index.js';
import { ClientDmabuf } from '../../src/client/index.js';
import { openSystemAllocators, type SystemAllocators } from '../../src/alloc/index.js';
import { WaylandConnection, type WaylandProxy } from '../../src/wayland/index.js';
import { createWlBuffer } from '../../src/client/buffers.js';
import { linearLayout } from '../../src/constraints/solve.js';
import type { Backing } from '../../src/alloc/types.js';
import { DRM_FORMAT_MOD_LINEAR } from '../../src/formats/index.js';
import { BufferLocks, type ScanoutBuffer } from '../../src/scanout/index.js';
import { startKiosk, type Kiosk, type KioskFrameInfo } from '../../compositor-example/kiosk.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';
import type { PoolKind } from '../util/own-shm.js';
import { colourBuffer, openToplevel } from '../util/toplevel.js';
import { haveDebugfs, kernelFramebuffers, snapshot, type TapTest } from './leak.js';

t.setTimeout(900000); // TCG guest on a shared 2-core host: slow, not stuck

const XR24 = fourcc('XRGB8888');
const vkms = requireVkms(t);
t.ok(haveDebugfs(), 'debugfs mounted (the kernel framebuffer list is checked)');
privateRuntimeDir(t, 'primebuf-buffer-life-');

let sys: SystemAllocators | undefined;

/** A LINEAR XRGB8888 w x h dma-buf filled with `color`, from the first allocator that makes one. */
function allocate(w: number, h: number, color: number): Backing {
  sys ??= openSystemAllocators({ cards: [basename(vkms.path)] });
  const rules = { pitchAlign: 64, offsetAlign: 64, sizeAlign: 4096, widthAlign: 1, heightAlign: 1 };
  let last: unknown;
  for (const a of sys.pool.allocators) {
    if (!a.canAllocate(XR24, DRM_FORMAT_MOD_LINEAR)) continue;
    try {
      const b = a.allocate({ allocator: a.caps.name, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, width: w, height: h, layout: linearLayout(rules, w, h, XR24, DRM_FORMAT_MOD_LINEAR), rules, writeCombine: false });
      const px = b.map();
      b.sync({ phase: 'start', read: false, write: true });
      new Uint32Array(px.buffer, px.byteOffset, px.byteLength / 4).fill(color);
      b.sync({ phase: 'end', read: false, write: true });
      return b;
    } catch (err) {
      last = err;
    }
  }
  throw last ?? new Error('no allocator makes LINEAR XRGB8888');
}

/** A raw client: one fullscreen toplevel; wl_buffers made from dma-bufs with create_immed. */
class RawClient {
  readonly conn: WaylandConnection;
  surface!: WaylandProxy<'wl_surface'>;
  dmabuf!: ClientDmabuf;
  shm!: WaylandProxy<'wl_shm'>;
  size = { width: 0, height: 0 };
  released = 0;

  constructor(socket: string) {
    this.conn = WaylandConnection.connect(socket);
  }

  static async open(socket: string): Promise<RawClient> {
    const c = new RawClient(socket);
    const top = await openToplevel(c.conn, (size) => (c.size = size));
    c.surface = top.surface;
    c.dmabuf = await ClientDmabuf.bind(c.conn, { registry: top.registry, globals: top.globals });
    c.shm = top.bind('wl_shm', 1);
    return c;
  }

  /** A w x h XRGB8888 wl_shm buffer of one colour in a pool of its own (sealed: zero copy through udmabuf). */
  shmBuffer(w: number, h: number, color: number, kind: PoolKind): WaylandProxy<'wl_buffer'> {
    const wl = colourBuffer(this.shm, w, h, color, kind);
    wl.on('release', () => this.released++);
    return wl;
  }

  buffer(backing: Backing): WaylandProxy<'wl_buffer'> {
    const wl = createWlBuffer(this.dmabuf, backing);
    wl.on('release', () => this.released++);
    return wl;
  }

  /**
   * attach(wl) (none: no attach), damage, a frame callback, commit, and with `destroy` the
   * wl_buffer's destroy, all in one flush. Resolves when the frame callback is done, or with
   * 'timeout' after `ms`.
   */
  commit(wl: WaylandProxy<'wl_buffer'> | undefined, destroy: boolean, ms = 20_000): Promise<'done' | 'timeout'> {
    if (wl) this.surface.request('attach', { buffer: wl, x: 0, y: 0 });
    this.surface.request('damage_buffer', { x: 0, y: 0, width: 0x7fffffff, height: 0x7fffffff });
    const cb = this.surface.request('frame', {});
    const done = new Promise<'done' | 'timeout'>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), ms);
      cb.on('done', () => {
        clearTimeout(timer);
        resolve('done');
      });
    });
    this.surface.request('commit', {});
    if (wl && destroy) wl.request('destroy', {});
    this.conn.flush();
    return done;
  }

  close(): void {
    this.dmabuf.close();
    this.conn.close();
  }
}

async function withKiosk(t: TapTest, opts: { forceCopy?: boolean; socket: string }, fn: (k: Kiosk, c: RawClient, log: string[]) => Promise<void>): Promise<void> {
  const log: string[] = [];
  const k = await startKiosk({ device: vkms.path, log: (l) => log.push(l), ...opts });
  let c: RawClient | undefined;
  try {
    c = await RawClient.open(k.socket);
    await fn(k, c, log);
  } finally {
    if (!t.passing()) t.comment(`kiosk log (last lines):\n${log.slice(-25).join('\n')}`);
    c?.close();
    await k.close();
    sys?.close();
    sys = undefined;
  }
}

/** Waits for the kiosk's next frame (any path), or 'timeout'. */
function nextFrame(k: Kiosk, ms = 20_000): Promise<KioskFrameInfo | 'timeout'> {
  return new Promise((resolve) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      resolve('timeout');
    }, ms);
    k.onFrame((f) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(f);
    });
  });
}

const kernelFbCount = (): number => Object.values(kernelFramebuffers()).reduce((n, ids) => n + ids.length, 0);

t.test('fault 3: 100 frames of attach, commit and wl_buffer.destroy in one flush leave no fd, framebuffer or GEM handle behind', async (t) => {
  await withKiosk(t, { socket: 'buffer-life-3' }, async (k, c) => {
    const backing = allocate(c.size.width, c.size.height, 0x00336699);
    try {
      // warm-up: the first frames make what the kiosk keeps (background, the mode blob, ...)
      for (let i = 0; i < 3; i++) t.equal(await c.commit(c.buffer(backing), true), 'done', `warm-up frame ${i}: its frame callback came`);
      const before = snapshot();
      const fbsBefore = kernelFbCount();
      const importsBefore = k.device.primeImports;
      let done = 0;
      let frames = 0;
      for (let i = 0; i < 100; i++) {
        const shown = nextFrame(k);
        if ((await c.commit(c.buffer(backing), true)) === 'done') done++;
        if ((await shown) !== 'timeout') frames++;
      }
      t.equal(done, 100, 'every frame callback came');
      t.equal(frames, 100, 'every commit was presented');
      t.equal(k.device.primeImports - importsBefore, 100, 'one PRIME import per wl_buffer (at create), none by the verdicts');
      const now = snapshot();
      t.equal(now.fds, before.fds, `open fds back to ${before.fds}`);
      t.equal(now.framebuffers, before.framebuffers, `primebuf framebuffers back to ${before.framebuffers}`);
      t.equal(now.gemHandles, before.gemHandles, `primebuf GEM handles back to ${before.gemHandles}`);
      t.equal(kernelFbCount(), fbsBefore, `the kernel lists as many framebuffers as before (${fbsBefore})`);
      const s = k.stats();
      t.equal(s.direct, s.frames, `every frame direct (${s.direct}/${s.frames}): the destroyed buffers went on the plane`);
    } finally {
      backing.close();
    }
  });
});

t.test('fault 6: a destroyed wl_buffer that is the current content stays on screen and frame callbacks go on', async (t) => {
  await withKiosk(t, { socket: 'buffer-life-6' }, async (k, c) => {
    const a = allocate(c.size.width, c.size.height, 0x0000ff00);
    const b = allocate(c.size.width, c.size.height, 0x00ff0000);
    try {
      t.equal(await c.commit(c.buffer(a), true), 'done', 'A (green) committed and destroyed in one flush: its frame callback came');
      const cap = await k.capture();
      const px = new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, cap.pixels.byteLength / 4);
      t.equal(px.filter((v) => (v & 0xffffff) !== 0x00ff00).length, 0, 'the capture is all A: the destroyed current buffer is not blanked');
      t.equal(await c.commit(undefined, false), 'done', 'a commit without a buffer: its frame callback still comes');
      t.equal(await c.commit(undefined, false), 'done', 'and again');
      const wlB = c.buffer(b);
      t.equal(await c.commit(wlB, false), 'done', 'B (red) attached: presented');
      const cap2 = await k.capture();
      const px2 = new Uint32Array(cap2.pixels.buffer, cap2.pixels.byteOffset, cap2.pixels.byteLength / 4);
      t.equal(px2.filter((v) => (v & 0xffffff) !== 0xff0000).length, 0, 'the capture is all B');
      t.equal(await c.commit(c.buffer(a), false), 'done', 'a third buffer replaces B');
      await c.conn.roundtrip();
      t.equal(c.released, 1, 'B was released by the library once the third buffer replaced it (A was destroyed: nothing to release)');
    } finally {
      a.close();
      b.close();
    }
  });
});

t.test('fault 2: --force-copy, buffers destroyed in the flush of their commit are never imported again from closed fd numbers', async (t) => {
  await withKiosk(t, { socket: 'buffer-life-2', forceCopy: true }, async (k, c) => {
    const seen: string[] = [];
    const dev = k.device;
    const real = dev.importDmabuf.bind(dev);
    // every PRIME import the kiosk asks for: what its fd number names at that moment
    dev.importDmabuf = ((fd: Parameters<typeof dev.importDmabuf>[0]) => {
      const n = typeof fd === 'number' ? fd : fd.fd;
      let target: string;
      try {
        target = readlinkSync(`/proc/self/fd/${n}`);
      } catch {
        target = 'closed';
      }
      seen.push(target);
      return real(fd);
    }) as typeof dev.importDmabuf;
    const backing = allocate(c.size.width, c.size.height, 0x00123456);
    try {
      // warm-up: the copy ring is allocated by the first copies
      for (let i = 0; i < 3; i++) t.equal(await c.commit(c.buffer(backing), true), 'done', `warm-up frame ${i}`);
      seen.length = 0;
      const before = snapshot();
      let done = 0;
      for (let i = 0; i < 10; i++) {
        const shown = nextFrame(k);
        if ((await c.commit(c.buffer(backing), true)) === 'done') done++;
        await shown;
      }
      // a frame after the last one: whatever the kiosk checks after a flip has run
      await c.commit(undefined, false);
      t.equal(done, 10, 'every frame callback came');
      const s = k.stats();
      t.ok(s.copied >= 1 && s.direct === 0, `copied frames only (${s.copied} copied)`);
      t.equal(seen.length, 10, `one PRIME import per wl_buffer, at create (${seen.length}: ${seen.join(', ')})`);
      t.ok(seen.every((x) => /dmabuf/.test(x)), `every import named an open dma-buf (${[...new Set(seen)].join(', ')})`);
      const now = snapshot();
      t.equal(now.fds, before.fds, `open fds back to ${before.fds}: no copy source (dup fd) of a destroyed buffer kept`);
      t.equal(now.framebuffers, before.framebuffers, `primebuf framebuffers back to ${before.framebuffers}`);
      t.equal(now.gemHandles, before.gemHandles, `primebuf GEM handles back to ${before.gemHandles}`);
    } finally {
      backing.close();
      delete (dev as { importDmabuf?: unknown }).importDmabuf;
    }
  });
});

t.test('a dma-buf imported once by its owner: direct, copied, direct again, and its end leaves every cache', async (t) => {
  const k = await startKiosk({ device: vkms.path, socket: 'buffer-life-once' });
  try {
    const { hdisplay: W, vdisplay: H } = k.output.mode;
    const p = k.presenter;
    // warm-up: the copy ring is allocated once, by a plain buffer's copy (the caller's own description)
    const warmBacking = allocate(W, H, 0x00010203);
    const warmFd = warmBacking.exportFd();
    const warm: ScanoutBuffer = { kind: 'dmabuf', width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: warmFd.fd, offset: 0, stride: Number(warmBacking.description.planes[0]!.pitch) }], name: 'warm-up' };
    t.equal((await p.present({ buffer: warm, coherent: false })).path, 'copy', 'warm-up: copied');
    await p.clear();
    p.forget(warm);
    warmFd.close();
    warmBacking.close();
    const before = snapshot();
    const backing = allocate(W, H, 0x00445566);
    const fd = backing.exportFd();
    const importsBefore = k.device.primeImports;
    const handle = k.device.importDmabuf(fd.fd); // the owner's one import (as linux-dmabuf makes at create)
    let importClosed = false;
    const imported = {
      handles: [handle.handle],
      gemHandles: [handle],
      device: k.device,
      close: () => {
        importClosed = true;
        handle.close();
      },
    };
    const life = new BufferLocks('test buffer');
    life.onEnd(() => imported.close());
    const buffer: ScanoutBuffer = { kind: 'dmabuf', width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: fd.fd, offset: 0, stride: Number(backing.description.planes[0]!.pitch) }], name: 'test buffer', imported, life };
    const direct = await p.present({ buffer });
    t.equal(direct.path, 'direct', 'shown direct');
    t.equal(life.locks, 1, 'on screen: the presenter holds one lock');
    const copied = await p.present({ buffer, coherent: false });
    t.equal(copied.path, 'copy', 'then copied (the non-coherent override)');
    t.equal(life.locks, 0, 'copied and off the plane: no lock left');
    const again = await p.present({ buffer });
    t.equal(again.path, 'direct', 'then direct again');
    t.equal(k.device.primeImports - importsBefore, 1, 'one PRIME import in its life (the owner\'s), none by the verdicts or the copy');
    t.equal(p.stats.imports, 0, 'the verdicts imported nothing: the framebuffer was made from the owner\'s GEM handle');
    life.end(); // the owner lets go while it is on screen: it lives on until the flip that replaces it
    t.equal(life.ended, false, 'still on screen: not ended');
    t.equal(importClosed, false, 'its import is kept');
    await p.clear();
    t.equal(life.ended, true, 'the flip that replaced it ended it');
    t.equal(importClosed, true, 'and its owner closed the import');
    fd.close();
    backing.close();
    const now = snapshot();
    t.equal(now.fds, before.fds, 'fds back: the copy source (dup fd, mapping) left with its end, without forget()');
    t.equal(now.framebuffers, before.framebuffers, 'framebuffers back: its framebuffer left with its end');
    t.equal(now.gemHandles, before.gemHandles, 'GEM handles back');
    await t.rejects(p.present({ buffer }), /ended/, 'present() of an ended buffer rejects');
  } finally {
    await k.close();
    sys?.close();
    sys = undefined;
  }
});

t.test('fault 3 with wl_shm: attach, commit and destroy in one flush, zero copy (sealed pools) and copied (unsealed): nothing left behind', async (t) => {
  await withKiosk(t, { socket: 'buffer-life-3-shm' }, async (k, c) => {
    const { width: W, height: H } = c.size;
    for (const kind of ['sealed', 'unsealed'] as const) {
      for (let i = 0; i < 2; i++) t.equal(await c.commit(c.shmBuffer(W, H, 0x00202020, kind), true), 'done', `${kind} warm-up frame ${i}`);
      const before = snapshot();
      const fbsBefore = kernelFbCount();
      let done = 0;
      for (let i = 0; i < 20; i++) if ((await c.commit(c.shmBuffer(W, H, 0x00100000 * (i % 8), kind), true)) === 'done') done++;
      t.equal(done, 20, `${kind}: every frame callback came`);
      const now = snapshot();
      t.equal(now.fds, before.fds, `${kind}: open fds back to ${before.fds} (pools, udmabufs, imports)`);
      t.equal(now.framebuffers, before.framebuffers, `${kind}: primebuf framebuffers back to ${before.framebuffers}`);
      t.equal(now.gemHandles, before.gemHandles, `${kind}: primebuf GEM handles back to ${before.gemHandles}`);
      t.equal(kernelFbCount(), fbsBefore, `${kind}: the kernel lists as many framebuffers as before (${fbsBefore})`);
    }
    const s = k.stats();
    t.ok(s.direct > 0 && s.copied > 0, `sealed pools went direct (udmabuf), unsealed ones were copied (${s.direct} direct, ${s.copied} copied)`);
  });
});
