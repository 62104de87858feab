/**
 * CaptureStream: a V4L2 capture queue streaming into dma-bufs.
 *
 * DMABUF memory: the caller gives dma-bufs (e.g. BufferRequest exports laid out for the camera
 * and the display); the stream keeps its own duplicate of each fd (closed at stop) and queues
 * them with VIDIOC_QBUF. MMAP memory (a node that cannot import): the node allocates, and each
 * buffer is exported once with VIDIOC_EXPBUF, so the display imports the camera's own memory.
 * Either way every buffer has a fixed `scanout` view (the same object each frame, as the
 * presenter wants) and frames are dequeued on the libuv loop: the device fd is polled
 * (FdWatch), each done buffer becomes a `CaptureFrame`, owned by the caller until
 * `frame.requeue()` gives it back to the camera.
 */
import { Dmabuf } from '../dmabuf/dmabuf.js';
import { ClosedError, InvalidArgumentError, PrimebufError } from '../errors.js';
import { formatInfo, formatName, DRM_FORMAT_MOD_LINEAR } from '../formats/index.js';
import { native } from '../native.js';
import type { RawFdWatch } from '../native/drm.js';
import type { RawV4l2Buffer, RawV4l2Format } from '../native/v4l2.js';
import type { BufferLife, ScanoutBuffer } from '../scanout/verdict-buffer.js';
import { YUV_SOURCE_FORMATS } from '../scanout/copy.js';
import type { V4l2Device } from './device.js';
import { v4l2YuvEncoding } from './formats.js';

const C = native.v4l2;

/** One dma-buf the caller lends to a DMABUF stream, with its layout. */
export interface CaptureTarget {
  /** the dma-buf fd (borrowed: the stream duplicates it) */
  readonly fd: number;
  /** the layout of the buffer: plane offsets and pitches (one buffer, DRM layout) */
  readonly planes: ReadonlyArray<{ readonly offset: number | bigint; readonly pitch: number | bigint }>;
  /** the dma-buf's size in bytes */
  readonly size: number | bigint;
}

export interface CaptureOptions {
  readonly width: number;
  readonly height: number;
  /** DRM format (e.g. XRGB8888) */
  readonly format: number;
  /** DMABUF memory: the buffers to fill (all with the same layout) */
  readonly targets?: readonly CaptureTarget[];
  /** MMAP memory (+EXPBUF): how many buffers the node allocates (default 4) */
  readonly count?: number;
  /**
   * The life each buffer's ScanoutBuffer carries (`scanout.life`), made once per buffer; without
   * it the ScanoutBuffers are plain descriptions (CameraSource gives each a BufferLocks).
   */
  readonly life?: (index: number, name: string) => BufferLife;
}

export interface CaptureBuffer {
  readonly index: number;
  /** the stream's own dma-buf of the buffer (a dup for DMABUF, the EXPBUF fd for MMAP) */
  readonly dmabuf: Dmabuf;
  /** the same object every frame: what the presenter shows */
  readonly scanout: ScanoutBuffer;
}

export interface CaptureFrame {
  readonly buffer: CaptureBuffer;
  readonly sequence: number;
  /** the driver's timestamp (CLOCK_MONOTONIC when `monotonic`), µs */
  readonly timestampUs: number;
  readonly monotonic: boolean;
  /** when DQBUF returned it (process.hrtime.bigint(): CLOCK_MONOTONIC), ns */
  readonly dequeuedNs: bigint;
  /** V4L2_BUF_FLAG_ERROR: the content may be corrupt */
  readonly error: boolean;
  readonly bytesused: number;
  /**
   * Gives the buffer back to the camera (once; later calls do nothing). Never throws: a QBUF the
   * camera refuses (unplugged mid-stream: ENODEV, EIO) fails the stream instead, and next()
   * rejects with that error (as does the pending one).
   */
  requeue(): void;
}

export interface CaptureStats {
  queued: number;
  dequeued: number;
  /** frames the driver skipped (gaps in `sequence`) */
  missed: number;
  /** frames the camera filled that stop() threw away: dequeued and never taken, or done in the queue */
  undelivered: number;
}

/** A capture stream failed (the camera refused a QBUF or DQBUF, or its poll failed); `cause` is the ioctl's error. */
export class V4l2StreamError extends PrimebufError {
  override name = 'V4l2StreamError';
  /** the errno name of the cause, when it has one (ENODEV, EIO, ...) */
  readonly errno: string | undefined;
  constructor(message: string, cause?: unknown) {
    const code = (cause as { code?: unknown } | undefined)?.code;
    const errno = typeof code === 'string' ? code : undefined;
    super(`${message}${cause instanceof Error ? `: ${cause.message}` : ''}`, cause === undefined ? undefined : { cause });
    this.errno = errno;
  }
}

/** A streaming V4L2 capture queue (see the top of this file). stop() is idempotent. */
export class CaptureStream {
  readonly device: V4l2Device;
  readonly memory: 'dmabuf' | 'mmap';
  /** S_FMT's answer */
  readonly format: RawV4l2Format;
  readonly buffers: readonly CaptureBuffer[];
  readonly stats: CaptureStats = { queued: 0, dequeued: 0, missed: 0, undelivered: 0 };
  readonly #type: number;
  readonly #mem: number;
  readonly #targets: readonly CaptureTarget[] | undefined;
  /** after handOver(): the dma-bufs of the frames handed over, closed as each is given back */
  readonly #kept = new Map<number, Dmabuf>();
  #watch: RawFdWatch | undefined;
  #frames: CaptureFrame[] = [];
  #waiters: Array<{ resolve: (f: CaptureFrame) => void; reject: (e: Error) => void }> = [];
  #listeners: Array<(f: CaptureFrame) => void> = [];
  #lastSeq = -1;
  #stopped = false;
  #failure: Error | undefined;

  private constructor(device: V4l2Device, memory: 'dmabuf' | 'mmap', format: RawV4l2Format, buffers: CaptureBuffer[], targets?: readonly CaptureTarget[]) {
    this.device = device;
    this.memory = memory;
    this.format = format;
    this.buffers = buffers;
    this.#type = device.bufferType;
    this.#mem = memory === 'dmabuf' ? C.MEMORY_DMABUF : C.MEMORY_MMAP;
    this.#targets = targets;
  }

  /**
   * Sets the format (with the targets' pitch), requests the buffers, queues them all and
   * starts streaming. With `targets`: DMABUF memory; without: MMAP buffers exported with EXPBUF.
   */
  static start(device: V4l2Device, opts: CaptureOptions): CaptureStream {
    if (device.direction !== 'capture') throw new InvalidArgumentError(`${device.path} is not a capture node`);
    if (device.capabilities.multiplanar) throw new InvalidArgumentError(`${device.path}: multi-planar capture streams are not supported yet (the raw ioctls are)`);
    const pixelformat = device.pixelformatFor(opts.format);
    if (pixelformat === null) throw new InvalidArgumentError(`${device.path} offers no V4L2 format for ${formatName(opts.format)}`);
    const info = formatInfo(opts.format);
    if (!info) throw new InvalidArgumentError(`unknown format ${formatName(opts.format)}`);
    const targets = opts.targets;
    if (targets !== undefined) {
      if (targets.length === 0) throw new InvalidArgumentError('CaptureStream: targets is empty');
      if (!device.queueCaps.dmabuf) throw new InvalidArgumentError(`${device.path} does not import dma-bufs (no V4L2_BUF_CAP_SUPPORTS_DMABUF): start it without targets (MMAP + EXPBUF)`);
    }
    const pitch = targets ? Number(targets[0]!.planes[0]!.pitch) : undefined;
    device.claimQueue(true);
    const buffers: CaptureBuffer[] = [];
    let streaming = false;
    try {
      const format = device.setFormat({ width: opts.width, height: opts.height, pixelformat, ...(pitch !== undefined ? { planes: [{ bytesperline: pitch }] } : {}) });
      const p0 = format.planes[0]!;
      if (format.width !== opts.width || format.height !== opts.height || format.pixelformat !== pixelformat) {
        throw new InvalidArgumentError(`${device.path}: S_FMT ${opts.width}x${opts.height} ${formatName(opts.format)} gave ${format.width}x${format.height}`);
      }
      if (targets) {
        checkLayout(device.path, opts, format, targets, info.planes);
        const r = native.v4l2ReqBufs(device.fd, device.bufferType, C.MEMORY_DMABUF, targets.length);
        if (r.count !== targets.length) throw new InvalidArgumentError(`${device.path}: REQBUFS gave ${r.count} buffers for ${targets.length} dma-bufs`);
        // one at a time into `buffers`: a dup that fails leaves the earlier ones to the catch below
        for (const [index, t] of targets.entries()) {
          const dmabuf = Dmabuf.dupFrom(t.fd, `${device.name} capture buffer ${index}`);
          buffers.push({ index, dmabuf, scanout: scanoutOf(device, index, opts, dmabuf.fd, t.planes, format) });
        }
      } else {
        const want = opts.count ?? 4;
        const r = native.v4l2ReqBufs(device.fd, device.bufferType, C.MEMORY_MMAP, want);
        for (let index = 0; index < r.count; index++) {
          const fd = native.v4l2ExpBuf(device.fd, device.bufferType, index, 0);
          const dmabuf = new Dmabuf(fd, `${device.name} EXPBUF buffer ${index}`);
          const planes = layoutPlanes(opts, p0.bytesperline, info.planes);
          buffers.push({ index, dmabuf, scanout: scanoutOf(device, index, opts, fd, planes, format) });
        }
      }
      const s = new CaptureStream(device, targets ? 'dmabuf' : 'mmap', format, buffers, targets);
      for (const b of buffers) s.#queue(b.index);
      native.v4l2StreamOn(device.fd, device.bufferType);
      streaming = true;
      s.#watch = new native.FdWatch(device.fd, false, (status) => s.#onReadable(status));
      return s;
    } catch (err) {
      try {
        // a queue that started streaming is stopped first: REQBUFS(0) refuses a streaming queue
        device.releaseQueue(targets ? C.MEMORY_DMABUF : C.MEMORY_MMAP, streaming, buffers.map((b) => b.dmabuf));
      } catch {
        // nothing was requested
      }
      throw err;
    }
  }

  get stopped(): boolean {
    return this.#stopped;
  }


  #queue(index: number): void {
    const planes = this.memory === 'dmabuf'
      ? [{ fd: this.buffers[index]!.dmabuf.fd, length: Number(this.#targets![index]!.size) }]
      : [{}];
    native.v4l2QBuf(this.device.fd, this.#type, this.#mem, index, planes);
    this.stats.queued++;
  }

  #onReadable(status: number): void {
    if (this.#stopped) return;
    if (status !== 0) return this.#fail(new V4l2StreamError(`${this.device.path}: the camera's fd polls ${status === 9 ? 'POLLERR (the device is gone or failed)' : `an error (errno ${status})`}`));
    for (;;) {
      let raw: RawV4l2Buffer | null;
      try {
        raw = native.v4l2DQBuf(this.device.fd, this.#type, this.#mem);
      } catch (err) {
        return this.#fail(new V4l2StreamError(`${this.device.path}: taking a frame from the camera failed (VIDIOC_DQBUF)`, err));
      }
      if (!raw) return;
      this.#deliver(raw);
    }
  }

  #deliver(raw: RawV4l2Buffer): void {
    const frame = this.#frameOf(raw);
    for (const l of this.#listeners) l(frame);
    const w = this.#waiters.shift();
    if (w) w.resolve(frame);
    else if (this.#listeners.length === 0) this.#frames.push(frame);
  }

  #frameOf(raw: RawV4l2Buffer): CaptureFrame {
    const dequeuedNs = process.hrtime.bigint();
    this.stats.dequeued++;
    if (this.#lastSeq >= 0 && raw.sequence > this.#lastSeq + 1) this.stats.missed += raw.sequence - this.#lastSeq - 1;
    this.#lastSeq = raw.sequence;
    const buffer = this.buffers[raw.index]!;
    let given = false;
    return {
      buffer,
      sequence: raw.sequence,
      timestampUs: raw.timestampUs,
      monotonic: (raw.flags & C.BUF_FLAG_TIMESTAMP_MONOTONIC) !== 0,
      dequeuedNs,
      error: (raw.flags & C.BUF_FLAG_ERROR) !== 0,
      bytesused: raw.planes[0]?.bytesused ?? 0,
      requeue: () => {
        if (given) return;
        given = true;
        if (!this.#stopped) {
          if (this.#failure) return; // a failed stream takes nothing back
          try {
            this.#queue(raw.index);
          } catch (err) {
            this.#fail(new V4l2StreamError(`${this.device.path}: giving buffer ${raw.index} back to the camera failed (VIDIOC_QBUF)`, err));
          }
          return;
        }
        // a frame handed over at stop: its dma-buf was kept open for it until now
        const kept = this.#kept.get(raw.index);
        this.#kept.delete(raw.index);
        kept?.close();
      },
    };
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#watch?.stop();
    this.#watch = undefined;
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  /** Why the stream failed (a refused QBUF or DQBUF, a poll error), or undefined. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** The next dequeued frame (frames not yet taken wait in order); rejects once the stream failed. */
  next(): Promise<CaptureFrame> {
    if (this.#stopped) return Promise.reject(new ClosedError('CaptureStream'));
    if (this.#failure) return Promise.reject(this.#failure);
    const f = this.#frames.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Calls `fn` with every frame as it is dequeued (frames then do not wait for next()). */
  onFrame(fn: (f: CaptureFrame) => void): void {
    this.#listeners.push(fn);
  }

  /**
   * Counts the frames it throws away (stats.undelivered), STREAMOFF (the kernel gives every
   * queued buffer back), frees the queue's buffers (REQBUFS 0) and closes the stream's dma-bufs.
   * Pending next() calls reject with ClosedError. After handOver(), it closes the dma-bufs of the
   * frames handed over that were not given back.
   */
  stop(): void {
    if (this.#stopped) {
      // after handOver(): the dma-bufs of frames handed over and not given back yet
      for (const d of this.#kept.values()) d.close();
      this.#kept.clear();
      return;
    }
    this.stats.undelivered += this.#frames.length;
    this.#frames = [];
    this.#end(this.#collect().length, []);
  }

  /**
   * Stops like stop(), but hands the caller every frame the camera filled and nobody took yet
   * (dequeued and waiting, then those still done in the queue), in order, instead of throwing
   * them away: each one's dma-buf stays open until its requeue(), which then closes it (a stream
   * move loses no filled frame).
   */
  handOver(): CaptureFrame[] {
    if (this.#stopped) return [];
    const out = [...this.#frames.splice(0), ...this.#collect()];
    this.#end(0, out);
    return out;
  }

  /** The frames the camera finished that nobody dequeued yet (DQBUF until none). */
  #collect(): CaptureFrame[] {
    const out: CaptureFrame[] = [];
    if (this.#failure) return out;
    try {
      for (let raw = native.v4l2DQBuf(this.device.fd, this.#type, this.#mem); raw; raw = native.v4l2DQBuf(this.device.fd, this.#type, this.#mem)) out.push(this.#frameOf(raw));
    } catch {
      // STREAMOFF below takes them back all the same
    }
    return out;
  }

  #end(dropped: number, kept: readonly CaptureFrame[]): void {
    this.#stopped = true;
    this.stats.undelivered += dropped;
    this.#watch?.stop();
    this.#watch = undefined;
    for (const w of this.#waiters.splice(0)) w.reject(new ClosedError('CaptureStream'));
    for (const f of kept) this.#kept.set(f.buffer.index, f.buffer.dmabuf);
    try {
      this.device.releaseQueue(this.#mem, true, this.buffers.filter((b) => !this.#kept.has(b.index)).map((b) => b.dmabuf));
    } catch (err) {
      // a camera that failed (gone: ENODEV) refuses STREAMOFF and REQBUFS too; its dma-bufs
      // were closed all the same (releaseQueue closes them in any case)
      if (!this.#failure) throw err;
    }
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}

/** The DRM layout of one buffer holding V4L2's single-planar format with `bytesperline`. */
function layoutPlanes(opts: CaptureOptions, bytesperline: number, planes: number): Array<{ offset: number; pitch: number }> {
  const out: Array<{ offset: number; pitch: number }> = [];
  let offset = 0;
  for (let i = 0; i < planes; i++) {
    const info = formatInfo(opts.format)!;
    const hsub = i === 0 ? 1 : info.hsub;
    const vsub = i === 0 ? 1 : info.vsub;
    // V4L2's contiguous planar formats: chroma pitch = luma pitch * chroma bytes per line / luma's
    const pitch = i === 0 ? bytesperline : Math.floor((bytesperline * info.cpp[i]!) / (info.cpp[0]! * hsub));
    out.push({ offset, pitch });
    offset += pitch * Math.ceil(opts.height / vsub);
  }
  return out;
}

function checkLayout(path: string, opts: CaptureOptions, format: RawV4l2Format, targets: readonly CaptureTarget[], planes: number): void {
  const want = layoutPlanes(opts, format.planes[0]!.bytesperline, planes);
  for (const [i, t] of targets.entries()) {
    if (t.planes.length !== planes) throw new InvalidArgumentError(`${path}: target ${i} has ${t.planes.length} planes, ${formatName(opts.format)} has ${planes}`);
    t.planes.forEach((p, k) => {
      if (Number(p.pitch) !== want[k]!.pitch || Number(p.offset) !== want[k]!.offset) {
        throw new InvalidArgumentError(`${path}: target ${i} plane ${k} is at offset ${p.offset} pitch ${p.pitch}; the camera writes it at offset ${want[k]!.offset} pitch ${want[k]!.pitch} (S_FMT bytesperline ${format.planes[0]!.bytesperline})`);
      }
    });
    if (BigInt(t.size) < BigInt(format.planes[0]!.sizeimage)) {
      throw new InvalidArgumentError(`${path}: target ${i} has ${t.size} bytes, the camera writes ${format.planes[0]!.sizeimage} (sizeimage)`);
    }
  }
}

function scanoutOf(device: V4l2Device, index: number, opts: CaptureOptions, fd: number, planes: CaptureTarget['planes'], format: RawV4l2Format): ScanoutBuffer {
  const name = `${device.name} buffer ${index}`;
  return {
    kind: 'dmabuf',
    width: opts.width,
    height: opts.height,
    format: opts.format,
    modifier: DRM_FORMAT_MOD_LINEAR,
    planes: planes.map((p) => ({ fd, offset: Number(p.offset), stride: Number(p.pitch) })),
    name,
    // the camera's word on its YUV values (G_FMT), for the copy's conversion
    ...(YUV_SOURCE_FORMATS.includes(opts.format) ? { yuv: v4l2YuvEncoding(format) } : {}),
    ...(opts.life ? { life: opts.life(index, name) } : {}),
  };
}

