/**
 * A per-device framebuffer cache: one Framebuffer per (buffer, layout), made on first use, and
 * the kernel's refusal remembered with its reason so a buffer that AddFB2 rejected is not
 * retried every frame. The cache owns the framebuffers it made; `forget(key)` (when the
 * buffer is destroyed) and `close()` release them.
 */
import { SystemError } from '../errors.js';
import type { Device } from './device.js';
import { Framebuffer, type FramebufferDescription } from './framebuffer.js';

export type FramebufferResult = { ok: true; fb: Framebuffer } | { ok: false; error: SystemError };

function layoutKey(d: FramebufferDescription): string {
  return [d.width, d.height, d.format, d.modifier, ...d.planes.map((p) => `${p.handle.handle}:${p.pitch}:${p.offset ?? 0}`)].join('/');
}

export class FramebufferCache {
  readonly device: Device;
  readonly #entries = new Map<unknown, { layout: string; result: FramebufferResult }>();

  constructor(device: Device) {
    this.device = device;
  }

  /**
   * The framebuffer of `key` (any identity: a wl_buffer, a Dmabuf) with this description: the
   * cached one, a new one, or the remembered refusal. A different description under the same
   * key replaces the entry.
   */
  get(key: unknown, desc: FramebufferDescription): FramebufferResult {
    const layout = layoutKey(desc);
    const cur = this.#entries.get(key);
    if (cur && cur.layout === layout && (cur.result.ok ? !cur.result.fb.closed : true)) return cur.result;
    if (cur) this.forget(key);
    let result: FramebufferResult;
    try {
      result = { ok: true, fb: Framebuffer.create(this.device, desc) };
    } catch (err) {
      if (!(err instanceof SystemError)) throw err;
      result = { ok: false, error: err };
    }
    this.#entries.set(key, { layout, result });
    return result;
  }

  /** Whether `key` has an entry (made or refused). */
  has(key: unknown): boolean {
    return this.#entries.has(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Drops the entry of `key`, removing its framebuffer. */
  forget(key: unknown): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#entries.delete(key);
    if (e.result.ok) e.result.fb.close();
  }

  /** Removes every framebuffer the cache made. */
  close(): void {
    for (const key of [...this.#entries.keys()]) this.forget(key);
  }
}
