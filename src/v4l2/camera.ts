/**
 * CameraSource: a V4L2 camera's frames as ScanoutBuffers for the presenter, zero-copy where the
 * devices allow (the kiosk's `--camera /dev/videoN` and the camera-to-screen tests use it).
 *
 * The buffers are allocated once: each is a BufferRequest with the camera's constraint
 * (capture) and the display's (scanout on the primary plane) attached, from the allocator the
 * merged constraints choose; the stream queues them to the camera as DMABUF. A camera that
 * cannot import dma-bufs gets MMAP buffers instead, exported with EXPBUF (the display imports
 * the camera's memory). Each frame is shown as the ScanoutBuffer of its buffer (the same object
 * every time, so the presenter's verdict, import and framebuffer are made once per buffer).
 *
 * Each buffer has a life (BufferLocks): the source owns it while its stream does, and every reader
 * locks it: a frame holds one lock from next() until its release(), the presenter one while it
 * scans the buffer out (until the flip that replaced it) or copies from it. The buffer goes back
 * to the camera (QBUF) when its last lock goes while the source still owns it. When the stream
 * stops or moves to a new set of buffers (re-allocation), the source lets go of the old buffers
 * (BufferLocks.end()): each ends with its last unlock, and the presenter's caches of it (verdicts,
 * framebuffer, copy source) leave then, with no forget() to call.
 * A format the display cannot show (YUYV on vkms): the buffers are allocated for the camera and
 * a CPU reader instead (`directReasons` says why), and the presenter's copy path converts them.
 */
import type { AllocatorPool } from '../alloc/pool.js';
import { BufferRequest, type Attachment } from '../alloc/request.js';
import type { FdOwner } from '../alloc/types.js';
import { cpuConstraint, scanoutConstraint, type KmsDeviceDescription } from '../constraints/device.js';
import { merge } from '../constraints/set.js';
import type { DeviceConstraint } from '../constraints/types.js';
import { ClosedError, InvalidArgumentError } from '../errors.js';
import { fourcc } from '../formats/index.js';
import { BufferLocks, type ScanoutBuffer } from '../scanout/verdict-buffer.js';
import type { V4l2Device } from './device.js';
import { CaptureStream, type CaptureBuffer, type CaptureFrame, type CaptureTarget } from './stream.js';

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
  /**
   * What attach() does with a device the buffers cannot serve: 'fail' (default) throws
   * BufferBusyError; 'reallocate' allocates a new set for every attached device and moves the
   * stream to it (STREAMOFF, REQBUFS, re-queue, STREAMON) while the preview runs.
   */
  readonly onIncompatibleAttach?: 'fail' | 'reallocate';
}

/** A stream move's costs (CameraSource.lastMove). */
export interface MoveTiming {
  /** the BufferRequests' re-allocation (the old stream still running) */
  readonly reallocateMs: number;
  /** STREAMOFF, REQBUFS 0, S_FMT, REQBUFS, QBUF, STREAMON */
  readonly restartMs: number;
  /** frames the camera had filled in the old set, handed over (next() gives them out first) */
  readonly framesCarried: number;
  /** frames the camera skipped during the move (sequence gaps up to the last frame handed over) */
  readonly framesLost: number;
  /** from STREAMON on the new set to its first frame (once that came) */
  readonly firstFrameMs?: number;
}

/** What attach() gives back. */
export interface CameraAttach {
  readonly attachments: readonly Attachment[];
  /**
   * After a re-allocation: the ScanoutBuffers of the old set. Their frames no longer come (but
   * those the camera had filled, handed over first); their lives were ended, so each leaves the
   * presenter's caches with its last unlock (the one on screen once it is replaced). Empty when
   * the buffers were shared as they are.
   */
  readonly retired: readonly ScanoutBuffer[];
  detach(): void;
}

/** How the stream is (re)started. */
interface StreamSpec {
  readonly camera: V4l2Device;
  readonly width: number;
  readonly height: number;
  readonly format: number;
}

/** One camera frame for the screen. */
export interface CameraFrame {
  readonly buffer: ScanoutBuffer;
  readonly sequence: number;
  readonly timestampUs: number;
  /** when the frame was dequeued (CLOCK_MONOTONIC, ns) */
  readonly dequeuedNs: bigint;
  /**
   * Drops the frame's lock on `buffer.life` (once; later calls do nothing). Call it once the
   * frame was given to the presenter (right after present() returns: the presenter holds its own
   * lock while it shows or copies the buffer) or when it is not shown. The buffer goes back to
   * the camera when its last lock goes. Never throws: a camera that refuses the buffer
   * (unplugged: ENODEV, EIO) fails the stream, and next() rejects with a V4l2StreamError saying
   * why.
   */
  release(): void;
}

export class CameraSource {
  #stream: CaptureStream;
  /** the camera's and the display's constraints, merged (`writeCombine` and friends for present()) */
  readonly constraints: ReturnType<typeof merge>['set'];
  /** why the buffers were not allocated for the display (empty: they were) */
  readonly directReasons: readonly string[];
  /** one BufferRequest per buffer (DMABUF memory); empty for MMAP */
  readonly #requests: BufferRequest[];
  readonly #start: StreamSpec;
  #stopped = false;
  /** frames lost to stream moves (see framesMissed) */
  #missed = 0;
  /** when the last move restarted the stream (ns), until its first frame */
  #movedAt: bigint | undefined;
  #lastMove: MoveTiming | undefined;
  /** frames the old stream handed over at a move, given out by next() before the new stream's */
  #carried: CaptureFrame[] = [];
  /** old streams whose handed-over frames may still be out (stop() closes their dma-bufs) */
  #handedOver: CaptureStream[] = [];
  /** the buffers' lives and ScanoutBuffers (the stream's buffers and the old sets not ended yet) */
  readonly #lives = new Map<CaptureBuffer, CameraBuffer>();

  private constructor(stream: CaptureStream, lives: CameraLives, constraints: ReturnType<typeof merge>['set'], requests: BufferRequest[], directReasons: string[], start: StreamSpec) {
    this.#stream = stream;
    this.#adopt(stream, lives);
    this.#start = start;
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
      const lives = cameraLives();
      const stream = CaptureStream.start(opts.camera, { ...size, format, count: opts.buffers ?? 4, life: lives.life });
      return new CameraSource(stream, lives, merged.set, [], directReasons, { camera: opts.camera, ...size, format });
    }
    const requests: BufferRequest[] = [];
    const fds: FdOwner[] = [];
    try {
      for (let i = 0; i < (opts.buffers ?? 4); i++) {
        const r = new BufferRequest({ pool: opts.pool, width: opts.width, height: opts.height, formats: [format], onIncompatibleAttach: opts.onIncompatibleAttach ?? 'fail' });
        requests.push(r);
        r.attach(cam as DeviceConstraint);
        r.attach(partner);
        fds.push(r.exportFd());
      }
      const lives = cameraLives();
      const stream = CaptureStream.start(opts.camera, { ...size, format, targets: targetsOf(requests, fds), life: lives.life });
      return new CameraSource(stream, lives, merged.set, requests, directReasons, { camera: opts.camera, ...size, format });
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

  /** The stream the frames come from (a new one after a re-allocation moved it). */
  get stream(): CaptureStream {
    return this.#stream;
  }

  /**
   * Attaches another device to every buffer while the preview runs ("then start recording"):
   * when the buffers satisfy it, they are shared as they are (no re-allocation, no copy). When
   * not: with `onIncompatibleAttach: 'reallocate'`, every buffer is re-allocated for all the
   * devices attached (BufferRequest's re-allocation) and the stream moves to the new set
   * (STREAMOFF, REQBUFS 0, S_FMT with the new pitch, REQBUFS, re-queue, STREAMON); frames lost
   * to the move are counted in framesMissed. Otherwise BufferBusyError (code 'EBUSY') with the
   * reasons, and nothing stays attached.
   */
  attach(c: DeviceConstraint): CameraAttach {
    if (this.#stopped) throw new ClosedError('CameraSource');
    if (this.#requests.length === 0) throw new InvalidArgumentError('the camera\'s own (MMAP) buffers were not allocated through BufferRequests: nothing to attach to');
    const done: Attachment[] = [];
    const t0 = process.hrtime.bigint();
    try {
      for (const r of this.#requests) done.push(r.attach(c));
    } catch (err) {
      for (const a of done) a.detach();
      if (done.some((a) => a.reallocation !== undefined)) this.#move(); // the buffers changed under the stream anyway
      throw err;
    }
    const realloc = done.some((a) => a.reallocation !== undefined);
    const t1 = process.hrtime.bigint();
    const retired = realloc ? this.#move() : [];
    if (realloc) this.#lastMove = { reallocateMs: Number(t1 - t0) / 1e6, restartMs: Number(process.hrtime.bigint() - t1) / 1e6, framesCarried: this.#lastMove!.framesCarried, framesLost: this.#lastMove!.framesLost };
    return { attachments: done, retired, detach: () => done.forEach((a) => a.detach()) };
  }

  /** The lives `stream` gave its buffers (`lives.life`), owned by the source from now on. */
  #adopt(stream: CaptureStream, lives: CameraLives): void {
    for (const b of stream.buffers) {
      const cb = lives.made.get(b.index)!;
      cb.life.onEnd(() => {
        this.#lives.delete(b);
        giveBack(cb); // a frame handed over at a move: its kept dma-buf is closed now
      });
      this.#lives.set(b, cb);
    }
  }

  /**
   * The frame's lock on its buffer, taken as it leaves the stream (until the frame's release()).
   * False when the source no longer owns the buffer (a frame of a stream that moved meanwhile).
   */
  #hold(f: CaptureFrame): boolean {
    const cb = this.#lives.get(f.buffer);
    if (!cb || cb.life.ended) return false;
    cb.frame = f;
    cb.life.lock();
    return true;
  }

  /** The source lets go of `stream`'s buffers: each ends with its last unlock (at once when unlocked). */
  #endAll(stream: CaptureStream): void {
    for (const b of stream.buffers) this.#lives.get(b)?.life.end();
  }

  /** Moves the stream to the requests' current buffers; returns the old buffers' ScanoutBuffers. */
  #move(): ScanoutBuffer[] {
    const old = this.#stream;
    const retired = old.buffers.map((b) => b.scanout);
    const seqBefore = old.stats.missed;
    // STREAMOFF, REQBUFS 0, the old dups closed (the presenter keeps its own imports), except
    // those of the frames the camera had filled: handed over, given out first by next(), each
    // holding its buffer's lock until then
    const carried = old.handOver();
    for (const f of carried) this.#hold(f);
    this.#carried.push(...carried);
    if (carried.length > 0) this.#handedOver.push(old);
    this.#endAll(old);
    const fds = this.#requests.map((r) => r.exportFd());
    try {
      const { camera, width, height, format } = this.#start;
      const lives = cameraLives();
      this.#stream = CaptureStream.start(camera, { width, height, format, targets: targetsOf(this.#requests, fds), life: lives.life });
      this.#adopt(this.#stream, lives);
    } finally {
      for (const f of fds) f.close();
    }
    // frames the camera skipped while the move kept its buffers from it (sequence gaps in what it handed over)
    const lost = old.stats.missed - seqBefore;
    this.#missed += lost;
    this.#movedAt = process.hrtime.bigint();
    this.#lastMove = { reallocateMs: 0, restartMs: 0, framesCarried: carried.length, framesLost: lost };
    return retired;
  }

  /**
   * Camera frames lost to stream moves: the frames the camera skipped (gaps in its sequence
   * numbers) from the last frame before a move to the last frame of the old stream. Frames it
   * had filled are not lost: the old stream hands them over and next() gives them out first.
   */
  get framesMissed(): number {
    return this.#missed;
  }

  /** What the last move took (undefined before any). */
  get lastMove(): MoveTiming | undefined {
    return this.#lastMove;
  }

  /** Re-allocations the buffers went through (0 while every attach was satisfied as is). */
  get reallocations(): number {
    return this.#requests.reduce((n, r) => n + r.reallocations, 0);
  }

  /** The next frame from the camera; rejects (V4l2StreamError) once the camera failed, ClosedError after stop(). */
  async next(): Promise<CameraFrame> {
    const stream = this.#stream;
    let f: CaptureFrame;
    try {
      const carried = this.#carried.shift();
      f = carried ?? (await stream.next());
      if (!carried) {
        this.#timing(f.dequeuedNs);
        if (!this.#hold(f)) {
          f.requeue(); // its stream stopped: this closes nothing and queues nothing
          return this.next();
        }
      }
    } catch (err) {
      // the stream was moved (re-allocation) while this call waited: wait on the new one
      if (stream !== this.#stream && !this.#stopped) return this.next();
      throw err;
    }
    const cb = this.#lives.get(f.buffer)!;
    let released = false;
    return {
      buffer: f.buffer.scanout,
      sequence: f.sequence,
      timestampUs: f.timestampUs,
      dequeuedNs: f.dequeuedNs,
      release: () => {
        if (released) return;
        released = true;
        cb.life.unlock();
      },
    };
  }

  #timing(ns: bigint): void {
    if (this.#movedAt === undefined || !this.#lastMove) return;
    this.#lastMove = { ...this.#lastMove, firstFrameMs: Number(ns - this.#movedAt) / 1e6 };
    this.#movedAt = undefined;
  }

  /**
   * Stops the camera, frees the buffers and lets go of their lives: a buffer the presenter still
   * holds (on screen) ends with its last unlock, and its caches leave then (its framebuffer keeps
   * the memory alive meanwhile, through its own import).
   */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const f of this.#carried.splice(0)) this.#lives.get(f.buffer)?.life.unlock(); // never given out
    for (const s of this.#handedOver.splice(0)) s.stop(); // closes the kept dma-bufs of frames still out
    try {
      this.stream.stop();
    } finally {
      try {
        for (const cb of [...this.#lives.values()]) cb.life.end();
      } finally {
        for (const r of this.#requests) r.close();
      }
    }
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}

/** One buffer of a stream: its life and the frame in it. */
interface CameraBuffer {
  readonly life: BufferLocks;
  /** the frame dequeued into it, given back to the camera when the last lock goes */
  frame: CaptureFrame | undefined;
}

/** The lives a stream about to start gives its buffers (CaptureOptions.life), by buffer index. */
interface CameraLives {
  readonly made: Map<number, CameraBuffer>;
  readonly life: (index: number, name: string) => BufferLocks;
}

function cameraLives(): CameraLives {
  const made = new Map<number, CameraBuffer>();
  return {
    made,
    life: (index, name) => {
      // while the source owns the buffer, its last unlock gives the frame in it back to the camera
      const cb: CameraBuffer = { life: new BufferLocks(name, () => giveBack(cb)), frame: undefined };
      made.set(index, cb);
      return cb.life;
    },
  };
}

/** The last lock of a buffer went: its frame goes back to the camera (never throws: a refused QBUF fails the stream). */
function giveBack(cb: CameraBuffer): void {
  const f = cb.frame;
  cb.frame = undefined;
  f?.requeue();
}

/** The requests' buffers as a DMABUF stream's targets (`fds`: one export of each). */
function targetsOf(requests: readonly BufferRequest[], fds: readonly FdOwner[]): CaptureTarget[] {
  return requests.map((r, i) => {
    const d = r.description!;
    return { fd: fds[i]!.fd, planes: d.planes, size: d.size };
  });
}
