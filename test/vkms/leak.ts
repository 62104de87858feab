/**
 * Leak checks for conformance tests (usable by every helper's test/vkms files): the process's
 * open fds, the GEM handles primebuf holds (all devices; a GBM bo holds one per plane on its
 * Device), the GBM bos alive (each holds libgbm's own handles), the framebuffers primebuf holds,
 * and what the kernel itself says: its list of framebuffers (/sys/kernel/debug/dri/<minor>/framebuffer,
 * every KMS device) and the GEM handles that exist on every DRM fd this process has open, probed
 * handle by handle (see kernelGemHandles), so a handle or framebuffer primebuf never recorded is
 * seen too. `leakFree(t, name, fn)` runs a subtest and asserts all of them are back where they
 * started; `snapshot()`/`assertBack(t, before)` do the same by hand.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { liveFramebufferCount } from '../../src/kms/framebuffer.js';
import { liveGemHandleCount } from '../../src/kms/gem.js';
import { liveGbmBoCount } from '../../src/alloc/backends/gbm.js';
import { testNative } from '../../src/native.js';
import type { BuiltPlugins, Test, TestOpts } from '@tapjs/test';

export interface LeakSnapshot {
  fds: number;
  gemHandles: number;
  /** GBM bos not closed (libgbm's GEM handles live on GBM's own fd, closed by gbm_bo_destroy) */
  gbmBos: number;
  framebuffers: number;
  /** kernel framebuffer ids per debugfs dri minor: { '0': [42, 43] } */
  kernelFramebuffers: Record<string, number[]>;
  /** GEM handles the kernel has on each open DRM fd of this process: { 'fd 21 /dev/dri/card0': [1, 2] } */
  kernelGemHandles: Record<string, number[]>;
}

const DEBUGFS_DRI = '/sys/kernel/debug/dri';

/** Framebuffer ids the kernel lists for each DRM minor with KMS (debugfs). */
export function kernelFramebuffers(): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  if (!existsSync(DEBUGFS_DRI)) return out;
  for (const minor of readdirSync(DEBUGFS_DRI).filter((n) => /^\d+$/.test(n)).sort()) {
    const file = join(DEBUGFS_DRI, minor, 'framebuffer');
    if (!existsSync(file)) continue;
    const ids: number[] = [];
    for (const m of readFileSync(file, 'utf8').matchAll(/^framebuffer\[(\d+)\]/gm)) ids.push(Number(m[1]));
    out[minor] = ids.sort((a, b) => a - b);
  }
  return out;
}

/**
 * Handle numbers probed per DRM fd. The kernel gives a new GEM handle the lowest free number
 * from 1 (drm_gem_handle_create_tail: idr_alloc(object_idr, 1, 0), not cyclic), so every live
 * handle is at most the largest number of handles that fd ever held at once; kernelGemHandles
 * throws if one sits near this bound, so it can never pass by looking too low.
 */
export const GEM_PROBE_LIMIT = 1024;

/** The GEM handles the kernel has on each open DRM fd of this process (from /proc/self/fd). */
export function kernelGemHandles(): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const name of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(join('/proc/self/fd', name));
    } catch {
      continue; // the directory's own fd, closed by now
    }
    const m = /^\/dev\/dri\/(card|renderD)\d+$/.exec(target);
    if (!m) continue;
    out[`fd ${name} ${target}`] = gemHandlesOn(Number(name), m[1] === 'renderD');
  }
  return out;
}

/**
 * The GEM handles the kernel has on DRM fd `fd` (a render node's when `render`), ascending, asked
 * of the kernel handle by handle (testNative.gemHandlesProbe, a native loop: a JS exception per
 * absent handle cost seconds per snapshot in the emulated guest). What vkms and vgem on
 * 6.12 expose: debugfs has name, clients (pid, uid, magic per drm_file: no handle counts),
 * gem_names (flink names only) and framebuffer; /proc/PID/fdinfo shows GEM memory only for
 * drivers whose show_fdinfo calls drm_show_memory_stats (neither does). So each handle number is
 * probed with an ioctl that looks the handle up and changes nothing the tests can see:
 * - a primary node: DRM_IOCTL_MODE_MAP_DUMB (ENOENT: no such handle; an offset for the driver's
 *   own object, EINVAL for an imported one: drm_gem_dumb_map_offset refuses to map imports).
 *   Its only effect is the object's mmap offset, freed with the object.
 * - a render node, where the dumb ioctls are refused: DRM_IOCTL_PRIME_HANDLE_TO_FD (ENOENT: no
 *   such handle; otherwise a dma-buf fd, closed at once). A render node's handles are all
 *   imports here (vgem makes buffers only through the dumb ioctls), whose dma-buf already exists.
 */
export function gemHandlesOn(fd: number, render = false): number[] {
  const handles = testNative.gemHandlesProbe(fd, render, GEM_PROBE_LIMIT);
  if (handles.length > 0 && handles.at(-1)! > GEM_PROBE_LIMIT - 64) {
    throw new Error(`fd ${fd} has GEM handle ${handles.at(-1)}: raise GEM_PROBE_LIMIT (${GEM_PROBE_LIMIT})`);
  }
  return handles;
}

export function snapshot(): LeakSnapshot {
  return {
    fds: testNative.countOpenFds(),
    gemHandles: liveGemHandleCount(),
    gbmBos: liveGbmBoCount(),
    framebuffers: liveFramebufferCount(),
    kernelFramebuffers: kernelFramebuffers(),
    kernelGemHandles: kernelGemHandles(),
  };
}

interface Assert {
  equal(a: unknown, b: unknown, msg?: string): unknown;
  same(a: unknown, b: unknown, msg?: string): unknown;
  ok(v: unknown, msg?: string): unknown;
}

/** Asserts that nothing leaked since `before`. */
export function assertBack(t: Assert | TapTest, before: LeakSnapshot, what = ''): void {
  const a = t as Assert;
  const now = snapshot();
  const sfx = what ? ` (${what})` : '';
  a.equal(now.fds, before.fds, `open fds back to ${before.fds}${sfx}`);
  a.equal(now.gemHandles, before.gemHandles, `primebuf GEM handles back to ${before.gemHandles}${sfx}`);
  a.equal(now.gbmBos, before.gbmBos, `GBM bos back to ${before.gbmBos}${sfx}`);
  a.equal(now.framebuffers, before.framebuffers, `primebuf framebuffers back to ${before.framebuffers}${sfx}`);
  a.same(now.kernelFramebuffers, before.kernelFramebuffers, `kernel framebuffer list (debugfs) unchanged${sfx}`);
  a.same(now.kernelGemHandles, before.kernelGemHandles, `GEM handles the kernel has on this process's DRM fds unchanged${sfx}`);
}

/** A tap test or subtest (`t`). */
export type TapTest = Test<BuiltPlugins, TestOpts> & BuiltPlugins;

/** A subtest whose body must leave no fd, GEM handle or framebuffer behind. */
export function leakFree(t: TapTest, name: string, fn: (t: TapTest) => Promise<void> | void): Promise<unknown> {
  return t.test(name, async (st: TapTest) => {
    const before = snapshot();
    await fn(st);
    assertBack(st, before, name);
  });
}

/** One dma-buf the kernel knows (debugfs dma_buf/bufinfo): its inode, exporter, size and importers. */
export interface KernelDmabuf {
  ino: number;
  exporter: string;
  size: number;
  attached: string[];
}

/**
 * Every dma-buf in the system, from the kernel's list (/sys/kernel/debug/dma_buf/bufinfo), by
 * inode. A PRIME import holds its dma-buf (the GEM object keeps a reference, and an attachment to
 * the importing device), so a GEM handle leaked by another process, one whose fds this process
 * cannot probe, shows up here as a dma-buf that outlived its client.
 */
export function kernelDmabufs(): KernelDmabuf[] {
  const text = readFileSync('/sys/kernel/debug/dma_buf/bufinfo', 'utf8');
  const out: KernelDmabuf[] = [];
  let cur: KernelDmabuf | undefined;
  let inAttached = false;
  for (const line of text.split('\n')) {
    const m = /^(\d+)\t[0-9a-f]+\t[0-9a-f]+\t\d+\t(\S+)\t(\d+)\t/.exec(line);
    if (m) {
      cur = { ino: Number(m[3]), exporter: m[2]!, size: Number(m[1]), attached: [] };
      out.push(cur);
      inAttached = false;
    } else if (/^\s*Attached Devices:/.test(line)) {
      inAttached = true;
    } else if (/^Total \d+ devices attached/.test(line) || line.trim() === '') {
      inAttached = false;
    } else if (inAttached && cur) {
      cur.attached.push(line.trim());
    }
  }
  return out.sort((a, b) => a.ino - b.ino);
}

/** True when debugfs is mounted (the leak check of kernel framebuffers needs it). */
export function haveDebugfs(): boolean {
  return existsSync(DEBUGFS_DRI);
}
