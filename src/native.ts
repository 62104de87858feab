/**
 * The one place that loads the addon and types its raw surface. Everything else imports
 * `native` from here. Per-area declarations live in src/native/*.ts.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeUnavailableError, SystemError } from './errors.js';
import type { ComposeNative } from './native/compose.js';
import type { CopyNative } from './native/copy.js';
import type { AllocNative, DmabufNative } from './native/dmabuf.js';
import type { DrmNative } from './native/drm.js';
import type { EglNative } from './native/egl.js';
import type { FormatsNative } from './native/formats.js';
import type { InputNative } from './native/input.js';
import type { SessionNative } from './native/session.js';
import type { ShmNative } from './native/shm.js';
import type { TestOnlyNative } from './native/test-only.js';
import type { V4l2Native } from './native/v4l2.js';
import type { WaylandNative } from './native/wayland.js';

export interface CommonNative {
  /** Registers the classes the addon throws, so native errors are typed. */
  setErrorClasses(classes: { SystemError: typeof SystemError }): void;
  /** errno number -> name ('EINVAL'). */
  errnoName(errno: number): string;
  /** close(2). */
  closeFd(fd: number): void;
  /** fcntl(F_DUPFD_CLOEXEC): a new fd for the same open file. */
  dupFd(fd: number): number;
}

export type NativeAddon = CommonNative & FormatsNative & DrmNative & DmabufNative & AllocNative & WaylandNative & EglNative & CopyNative & ComposeNative & ShmNative & V4l2Native & InputNative & SessionNative;

/** The package root: dist/src/native.js -> ../.. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function load(): NativeAddon & TestOnlyNative {
  const require = createRequire(import.meta.url);
  const candidates = [
    process.env.PRIMEBUF_ADDON,
    join(packageRoot, 'build', 'Release', 'primebuf.node'),
    join(packageRoot, 'build', 'Debug', 'primebuf.node'),
  ].filter((p): p is string => typeof p === 'string' && p.length > 0);
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    const addon = require(path) as NativeAddon & TestOnlyNative;
    addon.setErrorClasses({ SystemError });
    return addon;
  }
  throw new NativeUnavailableError(
    `primebuf native addon not found (looked in ${candidates.join(', ')}); run \`npm run build\``,
  );
}

const addon = load();

/** The addon's shipped surface. */
export const native: NativeAddon = addon;

/** The natives that exist only for tests (src/native/test-only.ts); never used from src/. */
export const testNative: TestOnlyNative = addon;
