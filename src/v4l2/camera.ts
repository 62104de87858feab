/**
 * CameraSource: a V4L2 camera's frames as ScanoutBuffers for the presenter, zero-copy where the
 * devices allow (the kiosk's `--camera /dev/videoN` and the camera-to-screen tests use it).
 *
 * The buffers are allocated once: each is a BufferRequest with the camera's constraint
 * (capture) and the display's (scanout on the primary plane) attached, from the allocator the
 * merged constraints choose; the stream queues them to the camera as DMABUF. A camera that
 * cannot import dma-bufs gets MMAP buffers instead, exported with EXPBUF (the display imports
 * the camera's memory). Each frame is shown as the ScanoutBuffer of its buffer (the same object
 * every time, so the presenter's verdict, import and framebuffer are made once per buffer), and
 * a buffer goes back to the camera once the next frame has replaced it on screen.
 * A format the display cannot show (YUYV on vkms): the buffers are allocated for the camera and
 * a CPU reader instead (`directReasons` says why), and the presenter's copy path converts them.
 */
import type { AllocatorPool } from '../alloc/pool.js';
import { BufferRequest, type Attachment } from '../alloc/request.js';
import type { FdOwner } from '../alloc/types.js';
import { cpuConstraint, scanoutConstraint, type KmsDeviceDescription } from '../constraints/device.js';
import { merge } from '../constraints/set.js';
import type { DeviceConstraint } from '../constraints/types.js';
import { InvalidArgumentError } from '../errors.js';
import { fourcc } from '../formats/index.js';
import type { ScanoutBuffer } from '../scanout/verdict-buffer.js';
import type { V4l2Device } from './device.js';
import { CaptureStream, type CaptureFrame, type CaptureTarget } from './stream.js';

export interface CameraSourceOptions {
  /** the camera (a capture node); the source borrows it (the caller closes it after stop()) */
  readonly camera: V4l2Device;
  /** the display the frames go to, as the constraints see it (describeKmsDevice(device)) */
  readonly display: KmsDeviceDescription;
  /** allocators (openSystemAllocators().pool) */
  readonly pool: AllocatorPool;
  readonly width: number;
  readonly height: number;
  /** DRM format (default XRGB8888) */
  readonly format?: number;
  /** buffers in flight (default 4: one on screen, one being replaced, two for the camera) */
  readonly buffers?: number;
  /** 'auto' (default): DMABUF when the camera imports, else MMAP + EXPBUF */
  readonly memory?: 'auto' | 'dmabuf' | 'mmap';
}

/** One camera frame for the screen. */
export interface CameraFrame {
  readonly buffer: ScanoutBuffer;
  readonly sequence: number;
  readonly timestampUs: number;
  /** when the frame was dequeued (CLOCK_MONOTONIC, ns) */
  readonly dequeuedNs: bigint;
  /** call once the frame is off the screen (a later frame was flipped in) */
  release(): void;
}

export class CameraSource {
  readonly stream: CaptureStream;
  /** the camera's and the display's constraints, merged (`writeCombine` and friends for present()) */
  readonly constraints: ReturnType<typeof merge>['set'];
  /** why the buffers were not allocated for the display (empty: they were) */
  readonly directReasons: readonly string[];
  /** one BufferRequest per buffer (DMABUF memory); empty for MMAP */
  readonly #requests: BufferRequest[];
  #stopped = false;

  private constructor(stream: CaptureStream, constraints: ReturnType<typeof merge>['set'], requests: BufferRequest[], directReasons: string[]) {
    this.stream = stream;
    this.constraints = constraints;
    this.#requests = requests;
    this.directReasons = directReasons;
  }

  /** Allocates the buffers for camera and display, and starts the camera. */
  static open(opts: CameraSourceOptions): CameraSource {
    const format = opts.format ?? fourcc('XRGB8888');
    const size = { width: opts.width, height: opts.height };
    const cam = opts.camera.constraintFor(size, { format });
    const scan = scanoutConstraint(opts.display, { type: 'primary' });
    let merged = merge(cam, scan);
    let partner: DeviceConstraint = scan;
    const plan = opts.pool.plan(merged.set, { ...size, formats: [format] });
    const directReasons = merged.ok && plan.ok ? [] : (merged.ok ? plan.reasons : merged.reasons).map((r) => `${r.code}: ${r.detail}`);
    if (directReasons.length > 0) {
      // the display cannot take these buffers: the copy path reads them with the CPU
      partner = cpuConstraint('read', 'copy path');
      merged = merge(cam, partner);
    }
    const memory = opts.memory ?? 'auto';
    const useDmabuf = memory === 'dmabuf' || (memory === 'auto' && opts.camera.queueCaps.dmabuf);
    if (!useDmabuf) {
      const stream = CaptureStream.start(opts.camera, { ...size, format, count: opts.buffers ?? 4 });
      return new CameraSource(stream, merged.set, [], directReasons);
    }
    const requests: BufferRequest[] = [];
    const fds: FdOwner[] = [];
    try {
      for (let i = 0; i < (opts.buffers ?? 4); i++) {
        const r = new BufferRequest({ pool: opts.pool, width: opts.width, height: opts.height, formats: [format] });
        requests.push(r);
        r.attach(cam as DeviceConstraint);
        r.attach(partner);
        fds.push(r.exportFd());
      }
      const targets = requests.map((r, i) => {
        const d = r.description!;
        return { fd: fds[i]!.fd, planes: d.planes, size: d.size };
      });
      const stream = CaptureStream.start(opts.camera, { ...size, format, targets });
      return new CameraSource(stream, merged.set, requests, directReasons);
    } catch (err) {
      for (const r of requests) r.close();
      throw err;
    } finally {
      for (const f of fds) f.close(); // the stream keeps its own duplicates
    }
  }

  /** 'dmabuf' (buffers allocated for both devices) or 'mmap' (the camera's own, EXPBUF). */
  get memory(): 'dmabuf' | 'mmap' {
    return this.stream.memory;
  }

  /** The allocations (allocator, layout) of the DMABUF buffers. */
  get allocations(): ReadonlyArray<BufferRequest['description']> {
    return this.#requests.map((r) => r.description);
  }

  /** The buffers as dma-bufs with their layout, for a second consumer's stream (OutputStream). */
  get targets(): CaptureTarget[] {
    return this.stream.buffers.map((b) => ({
      fd: b.dmabuf.fd,
      planes: b.scanout.planes.map((p) => ({ offset: p.offset, pitch: p.stride })),
      size: b.dmabuf.size,
    }));
  }

  /**
   * Attaches another device to every buffer while the preview runs ("then start recording"):
   * when the buffers satisfy it, they are shared as they are (no re-allocation, no copy); when
   * not, BufferBusyError (code 'EBUSY') with the reasons, and nothing stays attached.
   */
  attach(c: DeviceConstraint): { readonly attachments: readonly Attachment[]; detach(): void } {
    if (this.#requests.length === 0) throw new InvalidArgumentError('the camera\'s own (MMAP) buffers were not allocated through BufferRequests: nothing to attach to');
    const done: Attachment[] = [];
    try {
      for (const r of this.#requests) done.push(r.attach(c));
    } catch (err) {
      for (const a of done) a.detach();
      throw err;
    }
    return { attachments: done, detach: () => done.forEach((a) => a.detach()) };
  }

  /** Re-allocations the buffers went through (0 while every attach was satisfied as is). */
  get reallocations(): number {
    return this.#requests.reduce((n, r) => n + r.reallocations, 0);
  }

  /** The next frame from the camera. */
  async next(): Promise<CameraFrame> {
    const f: CaptureFrame = await this.stream.next();
    return { buffer: f.buffer.scanout, sequence: f.sequence, timestampUs: f.timestampUs, dequeuedNs: f.dequeuedNs, release: () => f.requeue() };
  }

  /** Stops the camera and frees the buffers (the presenter must have let go of them: forget()). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      this.stream.stop();
    } finally {
      for (const r of this.#requests) r.close();
    }
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}
