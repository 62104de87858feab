/**
 * The buffer object every source becomes on its way to the presenter (a linux-dmabuf wl_buffer,
 * a wl_shm buffer through udmabuf or as a copy source, a camera frame): its description (kind,
 * size, format, modifier, planes: fds borrowed, never closed here), the device the client was told
 * to allocate on, its import when its owner made one (the verdict's framebuffer is made from
 * those GEM handles, no second PRIME import) and its life (locks: whoever reads it holds one; the
 * caches of what belongs to it leave with its end). A plain object without `life` is a
 * description whose owner keeps it valid while the presenter may use it (tests, fixtures).
 */
import type { DmabufAttributes } from '../dmabuf/attributes.js';
import type { ImportedDmabuf } from '../dmabuf/import.js';
import { ClosedError } from '../errors.js';
import { formatName, modifierName } from '../formats/index.js';
import type { CopySource, YuvEncoding } from './copy.js';

export interface ScanoutBufferPlane {
  /** A dma-buf fd, borrowed for the import. */
  readonly fd: number;
  readonly offset: number;
  readonly stride: number;
}

export interface ScanoutBuffer {
  /** 'shm': a wl_shm (CPU) buffer; it is no dma-buf and is copied, never scanned out. */
  readonly kind: 'dmabuf' | 'shm';
  readonly width: number;
  readonly height: number;
  readonly format: number;
  /** DRM_FORMAT_MOD_INVALID for the implicit modifier. */
  readonly modifier: bigint;
  readonly planes: readonly ScanoutBufferPlane[];
  /**
   * dev_t of the device the client was told to allocate on (the feedback's main device, or the
   * target device of the tranche the pair came from). The implicit-modifier policy needs it.
   */
  readonly allocatedOn?: bigint;
  /** For messages ('wl_buffer@12 of client 3'). */
  readonly name?: string;
  /** How the copy path reads a 'shm' buffer's pixels (its planes have no dma-buf fd). */
  readonly copySource?: CopySource;
  /** A YUV buffer's colour encoding, for the copy's conversion (e.g. a camera's, v4l2YuvEncoding); default BT.601 limited. */
  readonly yuv?: YuvEncoding;
  /**
   * The PRIME import its owner made (linux-dmabuf, at create): the GEM handles of `imported.device`
   * per plane. A framebuffer on that device is made from them (Framebuffer.forBuffer), never from
   * a second import of the fds.
   */
  readonly imported?: ImportedDmabuf;
  /**
   * Its life: the presenter locks it while it scans it out or copies from it. Absent: the caller
   * keeps the buffer valid while the presenter may use it.
   */
  readonly life?: BufferLife;
}

/**
 * The life of a buffer as its readers see it. `lock()` keeps it (its fds, mapping and import)
 * valid; the buffer ends once its owner let go of it (the client destroyed its wl_buffer) and
 * the last lock is gone, and then every `onEnd` callback runs once (caches drop what they made
 * for it), before what backs the buffer is freed.
 */
export interface BufferLife {
  /** The buffer ended: no lock may be taken any more. */
  readonly ended: boolean;
  /** ClosedError once the buffer ended. */
  lock(): void;
  unlock(): void;
  /** Runs `fn` once when the buffer ends (at once when it already has). */
  onEnd(fn: () => void): void;
}

/** The verdicts' view of a linux-dmabuf buffer's validated attributes (fds stay with the attributes). */
export function bufferFromAttributes(a: DmabufAttributes, opts: { allocatedOn?: bigint; name?: string; imported?: ImportedDmabuf; life?: BufferLife } = {}): ScanoutBuffer {
  return {
    kind: 'dmabuf',
    width: a.width,
    height: a.height,
    format: a.format,
    modifier: a.modifier,
    planes: a.planes.map((p) => ({ fd: p.fd.fd, offset: p.offset, stride: p.stride })),
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
  };
}

/** A wl_shm buffer as the verdicts see it; with `copySource`, the presenter can copy it. */
export function shmBuffer(width: number, height: number, format: number, stride: number, name?: string, copySource?: CopySource): ScanoutBuffer {
  return { kind: 'shm', width, height, format, modifier: 0n, planes: [{ fd: -1, offset: 0, stride }], ...(name !== undefined ? { name } : {}), ...(copySource ? { copySource } : {}) };
}

export function describeBuffer(b: ScanoutBuffer): string {
  const what = b.name ?? (b.kind === 'shm' ? 'wl_shm buffer' : 'dma-buf');
  return `${what} ${b.width}x${b.height} ${formatName(b.format)} ${b.kind === 'shm' ? '' : modifierName(b.modifier)}`.trim();
}

/**
 * A BufferLife for buffers that are no wl_buffer (a camera's, a compositor's own): counted locks,
 * `onIdle` when the last one goes (e.g. give a camera buffer back), and the end once its owner
 * called `end()` and no lock is left.
 */
export class BufferLocks implements BufferLife {
  #locks = 0;
  #owned = true;
  #ended = false;
  #onEnd: Array<() => void> = [];
  readonly #onIdle: (() => void) | undefined;
  readonly #what: string;

  constructor(what: string, onIdle?: () => void) {
    this.#what = what;
    this.#onIdle = onIdle;
  }

  get ended(): boolean {
    return this.#ended;
  }

  get locks(): number {
    return this.#locks;
  }

  lock(): void {
    if (this.#ended) throw new ClosedError(`${this.#what} (ended)`);
    this.#locks++;
  }

  unlock(): void {
    if (this.#locks === 0) return;
    if (--this.#locks > 0) return;
    if (this.#owned) this.#onIdle?.();
    this.#maybeEnd();
  }

  onEnd(fn: () => void): void {
    if (this.#ended) fn();
    else this.#onEnd.push(fn);
  }

  /** The owner lets go: the buffer ends now, or with its last unlock. */
  end(): void {
    this.#owned = false;
    this.#maybeEnd();
  }

  #maybeEnd(): void {
    if (this.#ended || this.#owned || this.#locks > 0) return;
    this.#ended = true;
    let first: unknown;
    for (const fn of this.#onEnd.splice(0)) {
      try {
        fn();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }
}
