/**
 * Leak checks for conformance tests (usable by every helper's test/vkms files): the process's
 * open fds, the GEM handles primebuf holds (all devices; a GBM bo holds one per plane on its
 * Device), the GBM bos alive (each holds libgbm's own handles), the framebuffers primebuf holds, and
 * the kernel's own list of framebuffers (/sys/kernel/debug/dri/<minor>/framebuffer, every KMS
 * device). `leakFree(t, name, fn)` runs a subtest and asserts all of them are back where they
 * started; `snapshot()`/`assertBack(t, before)` do the same by hand.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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

export function snapshot(): LeakSnapshot {
  return {
    fds: testNative.countOpenFds(),
    gemHandles: liveGemHandleCount(),
    gbmBos: liveGbmBoCount(),
    framebuffers: liveFramebufferCount(),
    kernelFramebuffers: kernelFramebuffers(),
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

/** True when debugfs is mounted (the leak check of kernel framebuffers needs it). */
export function haveDebugfs(): boolean {
  return existsSync(DEBUGFS_DRI);
}
