/**
 * What the verdicts need to know of a buffer: kind, size, format, modifier, planes (fds are
 * borrowed, never closed here) and the device the client was told to allocate on.
 */
import type { DmabufAttributes } from '../dmabuf/attributes.js';
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
}

/** The verdicts' view of a linux-dmabuf buffer's validated attributes (fds stay with the attributes). */
export function bufferFromAttributes(a: DmabufAttributes, opts: { allocatedOn?: bigint; name?: string } = {}): ScanoutBuffer {
  return {
    kind: 'dmabuf',
    width: a.width,
    height: a.height,
    format: a.format,
    modifier: a.modifier,
    planes: a.planes.map((p) => ({ fd: p.fd.fd, offset: p.offset, stride: p.stride })),
    ...opts,
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
