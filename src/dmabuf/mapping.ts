/**
 * Mapping: the one owner of a CPU mapping (mmap) of a dma-buf or dumb buffer. close() unmaps
 * exactly once. The ArrayBuffer has no finalizer of its own: unmapping detaches it first, so a
 * view kept after close() reads as empty instead of touching unmapped memory.
 */
import { native } from '../native.js';
import { Resource } from '../resource.js';

export class Mapping extends Resource {
  readonly length: number;
  readonly writable: boolean;
  readonly #buffer: ArrayBuffer;

  /** Maps `length` bytes of `fd` at `offset` (MAP_SHARED). The fd may be closed afterwards. */
  static map(fd: number, offset: bigint | number, length: bigint | number, writable = true, what?: string): Mapping {
    const len = Number(length);
    if (!Number.isSafeInteger(len) || len <= 0) throw new RangeError(`mapping length ${length} is not a positive safe integer`);
    const raw = native.mmapFd(fd, BigInt(offset), len, writable);
    return new Mapping(raw.address, raw.buffer, len, writable, what ?? `mapping of fd ${fd} (${len} bytes)`);
  }

  private constructor(address: bigint, buffer: ArrayBuffer, length: number, writable: boolean, what: string) {
    super(what, () => native.munmapFd(address, length, buffer));
    this.#buffer = buffer;
    this.length = length;
    this.writable = writable;
  }

  /** The mapped memory; detached (byteLength 0) once the mapping is closed. */
  get buffer(): ArrayBuffer {
    this.assertOpen();
    return this.#buffer;
  }

  /**
   * Runs `job` (a copy on the thread pool into or out of this memory) with the mapping kept:
   * a close() meanwhile unmaps only when the job has settled, never under a pool thread.
   */
  use<T>(job: (buffer: ArrayBuffer) => Promise<T>): Promise<T> {
    const buffer = this.buffer;
    return this.hold(() => job(buffer));
  }

  /** A byte view of the whole mapping (or a part). */
  bytes(offset = 0, length?: number): Uint8Array {
    this.assertOpen();
    return new Uint8Array(this.#buffer, offset, length ?? this.length - offset);
  }

  /** A Buffer view (no copy) of the whole mapping. */
  toBuffer(): Buffer {
    this.assertOpen();
    return Buffer.from(this.#buffer, 0, this.length);
  }
}
