/**
 * OutputStream: a V4L2 output queue (an encoder, or vivid's output node standing in for one)
 * fed with dma-bufs the caller already shares with other devices (DMABUF memory): the second
 * consumer of "preview, then record". The stream keeps its own duplicate of each fd (closed at
 * stop); `queue(index)` hands a buffer to the device (QBUF with bytesused = sizeimage; STREAMON
 * with the first), `done()` resolves with the index of the next buffer the device has finished
 * reading (DQBUF, the fd polled for POLLOUT on the libuv loop).
 */
import { Dmabuf } from '../dmabuf/dmabuf.js';
import { ClosedError, InvalidArgumentError, SystemError } from '../errors.js';
import { formatName } from '../formats/index.js';
import { native } from '../native.js';
import type { RawFdWatch } from '../native/drm.js';
import type { RawV4l2Format } from '../native/v4l2.js';
import type { V4l2Device } from './device.js';
import type { CaptureTarget } from './stream.js';

const C = native.v4l2;

export interface OutputOptions {
  readonly width: number;
  readonly height: number;
  /** DRM format */
  readonly format: number;
  /** the buffers, all with the same layout (one plane) */
  readonly targets: readonly CaptureTarget[];
}

export class OutputStream {
  readonly device: V4l2Device;
  /** S_FMT's answer */
  readonly format: RawV4l2Format;
  /** buffers the device has finished with (DQBUF) */
  dequeued = 0;
  /** of those, how many carried V4L2_BUF_FLAG_ERROR */
  errors = 0;
  readonly #dmabufs: Dmabuf[];
  readonly #targets: readonly CaptureTarget[];
  readonly #queued = new Set<number>();
  #streaming = false;
  #stopped = false;
  #watch: RawFdWatch | undefined;
  #failure: Error | undefined;
  #done: number[] = [];
  #waiters: Array<{ resolve: (i: number) => void; reject: (e: Error) => void }> = [];

  private constructor(device: V4l2Device, format: RawV4l2Format, dmabufs: Dmabuf[], targets: readonly CaptureTarget[]) {
    this.device = device;
    this.format = format;
    this.#dmabufs = dmabufs;
    this.#targets = targets;
  }

  /** S_FMT with the targets' pitch, REQBUFS(DMABUF) for them; nothing is queued yet. */
  static start(device: V4l2Device, opts: OutputOptions): OutputStream {
    if (device.direction !== 'output') throw new InvalidArgumentError(`${device.path} is not an output node`);
    if (device.capabilities.multiplanar) throw new InvalidArgumentError(`${device.path}: multi-planar output streams are not supported yet`);
    if (opts.targets.length === 0) throw new InvalidArgumentError('OutputStream: targets is empty');
    if (!device.queueCaps.dmabuf) throw new InvalidArgumentError(`${device.path} does not import dma-bufs (no V4L2_BUF_CAP_SUPPORTS_DMABUF)`);
    const pixelformat = device.pixelformatFor(opts.format);
    if (pixelformat === null) throw new InvalidArgumentError(`${device.path} offers no V4L2 format for ${formatName(opts.format)}`);
    const pitch = Number(opts.targets[0]!.planes[0]!.pitch);
    device.claimQueue(true);
    const dmabufs: Dmabuf[] = [];
    try {
      const format = device.setFormat({ width: opts.width, height: opts.height, pixelformat, planes: [{ bytesperline: pitch }] });
      if (format.width !== opts.width || format.height !== opts.height || format.planes[0]!.bytesperline !== pitch) {
        throw new InvalidArgumentError(`${device.path}: S_FMT ${opts.width}x${opts.height} pitch ${pitch} gave ${format.width}x${format.height} pitch ${format.planes[0]!.bytesperline}`);
      }
      const r = native.v4l2ReqBufs(device.fd, device.bufferType, C.MEMORY_DMABUF, opts.targets.length);
      if (r.count !== opts.targets.length) throw new InvalidArgumentError(`${device.path}: REQBUFS gave ${r.count} buffers for ${opts.targets.length} dma-bufs`);
      for (const [i, t] of opts.targets.entries()) dmabufs.push(Dmabuf.dupFrom(t.fd, `${device.name} output buffer ${i}`));
      return new OutputStream(device, format, dmabufs, opts.targets);
    } catch (err) {
      try {
        device.releaseQueue(C.MEMORY_DMABUF, false, dmabufs);
      } catch {
        // nothing was requested
      }
      throw err;
    }
  }

  /** Hands buffer `index` to the device (it must not be queued already). */
  queue(index: number): void {
    if (this.#stopped) throw new ClosedError('OutputStream');
    if (!Number.isInteger(index) || index < 0 || index >= this.#dmabufs.length) throw new RangeError(`buffer index ${index} out of range`);
    if (this.#queued.has(index)) throw new InvalidArgumentError(`buffer ${index} is already queued`);
    const sizeimage = this.format.planes[0]!.sizeimage;
    native.v4l2QBuf(this.device.fd, this.device.bufferType, C.MEMORY_DMABUF, index, [
      { fd: this.#dmabufs[index]!.fd, length: Number(this.#targets[index]!.size), bytesused: sizeimage },
    ]);
    this.#queued.add(index);
    if (!this.#streaming) {
      native.v4l2StreamOn(this.device.fd, this.device.bufferType);
      this.#streaming = true;
      this.#watch = new native.FdWatch(this.device.fd, true, (status) => this.#onWritable(status));
    }
  }

  #onWritable(status: number): void {
    if (this.#stopped || this.#failure) return;
    if (status !== 0) {
      this.#fail(new SystemError(`${this.device.path}: poll failed`, { code: native.errnoName(status), errno: status, syscall: 'uv_poll', detail: this.device.path }));
      return;
    }
    for (;;) {
      let raw;
      try {
        raw = native.v4l2DQBuf(this.device.fd, this.device.bufferType, C.MEMORY_DMABUF);
      } catch (err) {
        this.#fail(err as Error);
        return;
      }
      if (!raw) return;
      this.#queued.delete(raw.index);
      this.dequeued++;
      if (raw.flags & C.BUF_FLAG_ERROR) this.errors++;
      const w = this.#waiters.shift();
      if (w) w.resolve(raw.index);
      else this.#done.push(raw.index);
    }
  }

  // A queue in error keeps polling ready (vb2 reports EPOLLERR): stop watching, so the loop does
  // not spin on DQBUF, and fail the waiters now and every later done().
  #fail(err: Error): void {
    this.#failure = err;
    this.#watch?.stop();
    this.#watch = undefined;
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  /** The index of the next buffer the device finished reading. */
  done(): Promise<number> {
    if (this.#stopped) return Promise.reject(new ClosedError('OutputStream'));
    if (this.#failure) return Promise.reject(this.#failure);
    const i = this.#done.shift();
    if (i !== undefined) return Promise.resolve(i);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** STREAMOFF, REQBUFS(0), closes the stream's fds; idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#watch?.stop();
    this.#watch = undefined;
    for (const w of this.#waiters.splice(0)) w.reject(new ClosedError('OutputStream'));
    this.device.releaseQueue(C.MEMORY_DMABUF, this.#streaming, this.#dmabufs);
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}
