/**
 * A V4L2 video node as a constraint source and buffer user: its capabilities, its formats in
 * DRM terms (src/v4l2/formats.ts), and `constraintFor(size)`, the DeviceConstraint that joins
 * `merge`, `BufferRequest` and `primebuf solve --use /dev/video0:capture` like a KMS plane's.
 *
 * What the constraint says and where each part comes from:
 *   formats      the node's ENUM_FMT list mapped to DRM (LINEAR only: V4L2 has no modifiers),
 *                kept where TRY_FMT at the size keeps the size (a webcam-like input offers
 *                discrete sizes) and the format is one buffer (the 'M' formats need one per plane);
 *   pitch        TRY_FMT's bytesperline: when the driver takes a larger bytesperline (probed with
 *                TRY_FMT), any pitch from the minimum up works and the stream sets the
 *                allocation's pitch with S_FMT; when it does not, the pitch is pinned to the
 *                driver's (pitchAlign = maxPitch = bytesperline) for a constraint of one format;
 *   size         ENUM_FRAMESIZES (stepwise limits; for discrete sizes the size asked for);
 *   imports      REQBUFS(0)'s V4L2_BUF_CAP_SUPPORTS_DMABUF; without it the buffer must be the
 *                node's own (allocateOn), exported with EXPBUF;
 *   contiguous   vivid: its `allocators` module parameter (1 = dma-contig needs contiguous
 *                memory, 0 = vmalloc does not); other drivers: unknown, left out;
 *   coherent     vivid draws with the CPU through a kernel mapping: coherent.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { DRM_FORMAT_MOD_LINEAR, FormatSet, formatInfo, formatName, minPitch } from '../formats/index.js';
import { InvalidArgumentError } from '../errors.js';
import { native } from '../native.js';
import type { RawV4l2Format, RawV4l2FormatRequest, RawV4l2FrameSizes } from '../native/v4l2.js';
import { Resource } from '../resource.js';
import type { DeviceConstraint, Usage } from '../constraints/types.js';
import { v4l2FormatInfo, v4l2FormatFor, type V4l2FormatInfo } from './formats.js';

const C = native.v4l2;

export type V4l2Direction = 'capture' | 'output';

export interface V4l2Capabilities {
  readonly driver: string;
  readonly card: string;
  readonly busInfo: string;
  /** KERNEL_VERSION-style number */
  readonly version: number;
  /** V4L2_CAP_* of this node */
  readonly deviceCaps: number;
  readonly capture: boolean;
  readonly output: boolean;
  /** the node speaks the multi-planar API */
  readonly multiplanar: boolean;
  readonly streaming: boolean;
}

/** One ENUM_FMT entry in DRM terms. */
export interface V4l2Format extends V4l2FormatInfo {
  readonly description: string;
  readonly flags: number;
  readonly compressed: boolean;
  readonly emulated: boolean;
}

/** What TRY_FMT made of one format at one size. */
export interface V4l2FormatAtSize {
  readonly format: V4l2Format;
  /** null: the format is left out of the constraint (`reason` says why) */
  readonly drm: number | null;
  readonly bytesperline: number;
  readonly sizeimage: number;
  /** the driver accepts a bytesperline larger than its minimum */
  readonly flexiblePitch: boolean;
  readonly reason?: string;
}

export interface V4l2Size {
  readonly width: number;
  readonly height: number;
}

/** The dma-buf import capability and contiguity of the node's queue. */
export interface V4l2QueueCaps {
  readonly mmap: boolean;
  readonly dmabuf: boolean;
}

/** An open V4L2 video node (owns the fd). */
export class V4l2Device extends Resource {
  readonly path: string;
  /** 'video0' */
  readonly name: string;
  readonly #fd: number;
  #caps: V4l2Capabilities | undefined;
  #queue: V4l2QueueCaps | undefined;
  /** a CaptureStream holds the queue */
  #streaming = false;

  private constructor(path: string, fd: number) {
    super(`V4L2 ${path} (fd ${fd})`, () => native.closeFd(fd));
    this.path = path;
    this.name = basename(path);
    this.#fd = fd;
  }

  /** Opens a video node (O_RDWR | O_NONBLOCK | O_CLOEXEC); throws SystemError (ENOENT, EACCES, ...). */
  static open(path: string): V4l2Device {
    if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('V4l2Device.open: a path like /dev/video0');
    return new V4l2Device(path, native.v4l2Open(path));
  }

  get fd(): number {
    this.assertOpen();
    return this.#fd;
  }

  get capabilities(): V4l2Capabilities {
    this.assertOpen();
    if (!this.#caps) {
      const raw = native.v4l2QueryCap(this.#fd);
      const has = (bit: number) => (raw.deviceCaps & bit) !== 0;
      this.#caps = {
        driver: raw.driver,
        card: raw.card,
        busInfo: raw.busInfo,
        version: raw.version,
        deviceCaps: raw.deviceCaps,
        capture: has(C.CAP_VIDEO_CAPTURE) || has(C.CAP_VIDEO_CAPTURE_MPLANE),
        output: has(C.CAP_VIDEO_OUTPUT) || has(C.CAP_VIDEO_OUTPUT_MPLANE),
        multiplanar: has(C.CAP_VIDEO_CAPTURE_MPLANE) || has(C.CAP_VIDEO_OUTPUT_MPLANE),
        streaming: has(C.CAP_STREAMING),
      };
    }
    return this.#caps;
  }

  /** The node's direction: capture when it captures (a camera), else output. */
  get direction(): V4l2Direction {
    const c = this.capabilities;
    if (c.capture) return 'capture';
    if (c.output) return 'output';
    throw new InvalidArgumentError(`${this.path} (${c.driver}) is neither a video capture nor a video output node`);
  }

  /** The V4L2 buffer type of the node's video queue (single- or multi-planar). */
  get bufferType(): number {
    const c = this.capabilities;
    if (this.direction === 'capture') return c.multiplanar ? C.BUF_TYPE_VIDEO_CAPTURE_MPLANE : C.BUF_TYPE_VIDEO_CAPTURE;
    return c.multiplanar ? C.BUF_TYPE_VIDEO_OUTPUT_MPLANE : C.BUF_TYPE_VIDEO_OUTPUT;
  }

  /** Every format the node lists (ENUM_FMT), mapped to DRM or with why not: none dropped. */
  formats(): V4l2Format[] {
    this.assertOpen();
    return native.v4l2EnumFmt(this.#fd, this.bufferType).map((d) => ({
      ...v4l2FormatInfo(d.pixelformat),
      description: d.description,
      flags: d.flags,
      compressed: (d.flags & C.FMT_FLAG_COMPRESSED) !== 0,
      emulated: (d.flags & C.FMT_FLAG_EMULATED) !== 0,
    }));
  }

  /** ENUM_FRAMESIZES for a V4L2 fourcc; null when the driver does not enumerate sizes. */
  frameSizes(pixelformat: number): RawV4l2FrameSizes | null {
    this.assertOpen();
    return native.v4l2EnumFrameSizes(this.#fd, pixelformat);
  }

  getFormat(): RawV4l2Format {
    this.assertOpen();
    return native.v4l2GetFmt(this.#fd, this.bufferType);
  }

  tryFormat(req: RawV4l2FormatRequest): RawV4l2Format {
    this.assertOpen();
    return native.v4l2TryFmt(this.#fd, this.bufferType, req);
  }

  /** S_FMT; EBUSY while buffers are allocated on the queue. */
  setFormat(req: RawV4l2FormatRequest): RawV4l2Format {
    this.assertOpen();
    return native.v4l2SetFmt(this.#fd, this.bufferType, req);
  }

  /**
   * The queue's memory types (REQBUFS with count 0 answers V4L2_BUF_CAP_*). Asked once, before
   * any stream: REQBUFS(0) would free a running stream's buffers.
   */
  get queueCaps(): V4l2QueueCaps {
    this.assertOpen();
    if (!this.#queue) {
      if (this.#streaming) throw new InvalidArgumentError(`${this.path}: queue capabilities are read before a stream starts`);
      const r = native.v4l2ReqBufs(this.#fd, this.bufferType, C.MEMORY_MMAP, 0);
      this.#queue = { mmap: (r.capabilities & C.BUF_CAP_SUPPORTS_MMAP) !== 0, dmabuf: (r.capabilities & C.BUF_CAP_SUPPORTS_DMABUF) !== 0 };
    }
    return this.#queue;
  }

  /**
   * @internal A stream's end: STREAMOFF (when it streamed; the kernel gives every queued buffer
   * back), REQBUFS(0) for `memory`, the stream's dma-bufs closed, the queue free again.
   */
  releaseQueue(memory: number, streaming: boolean, dmabufs: Iterable<{ close(): void }>): void {
    try {
      if (!this.closed) {
        if (streaming) native.v4l2StreamOff(this.#fd, this.bufferType);
        native.v4l2ReqBufs(this.#fd, this.bufferType, memory, 0);
      }
    } finally {
      for (const d of dmabufs) d.close();
      if (!this.closed) this.claimQueue(false);
    }
  }

  /** @internal CaptureStream marks the queue as taken. */
  claimQueue(on: boolean): void {
    if (on && this.#streaming) throw new InvalidArgumentError(`${this.path}: a stream already uses the queue`);
    if (on) void this.queueCaps;
    this.#streaming = on;
  }

  /**
   * Contiguity the node's buffers need, and where that is known from. vivid: its `allocators`
   * module parameter for this instance (bus info 'platform:vivid-000'); others: unknown.
   */
  contiguity(): { contiguous?: boolean; source: string } {
    const c = this.capabilities;
    if (c.driver === 'vivid') {
      const inst = Number(/vivid-(\d+)/.exec(c.busInfo)?.[1] ?? 0);
      let raw = '';
      try {
        raw = readFileSync('/sys/module/vivid/parameters/allocators', 'utf8').trim();
      } catch {
        return { source: 'vivid: /sys/module/vivid/parameters/allocators unreadable' };
      }
      const a = Number(raw.split(',')[inst] ?? 0);
      return a === 1
        ? { contiguous: true, source: `vivid allocators[${inst}]=1 (videobuf2-dma-contig)` }
        : { contiguous: false, source: `vivid allocators[${inst}]=${a} (videobuf2-vmalloc: scatter-gather)` };
    }
    return { source: `${c.driver}: contiguity unknown (V4L2 does not report it)` };
  }

  /** What TRY_FMT makes of every listed format at `size`, in DRM terms. */
  formatsAt(size: V4l2Size): V4l2FormatAtSize[] {
    checkSize(size);
    const out: V4l2FormatAtSize[] = [];
    for (const f of this.formats()) {
      const base = { format: f, bytesperline: 0, sizeimage: 0, flexiblePitch: false };
      if (f.drm === null) {
        out.push({ ...base, drm: null, reason: `${f.v4l2}: ${f.source}` });
        continue;
      }
      if (f.separatePlanes) {
        out.push({ ...base, drm: null, reason: `${f.v4l2}: each plane in its own buffer (a BufferRequest is one buffer)` });
        continue;
      }
      if (formatInfo(f.drm) === undefined) {
        out.push({ ...base, drm: null, reason: `${f.v4l2}: the kernel's format table (src/formats/info.ts) has no layout for ${formatName(f.drm)}` });
        continue;
      }
      const got = this.tryFormat({ width: size.width, height: size.height, pixelformat: f.pixelformat });
      const p0 = got.planes[0] ?? { bytesperline: 0, sizeimage: 0 };
      const at = { ...base, bytesperline: p0.bytesperline, sizeimage: p0.sizeimage };
      if (got.pixelformat !== f.pixelformat || got.width !== size.width || got.height !== size.height) {
        out.push({ ...at, drm: null, reason: `${f.v4l2}: TRY_FMT ${size.width}x${size.height} gave ${got.width}x${got.height}${sizeList(this.frameSizes(f.pixelformat))}` });
        continue;
      }
      const min = Number(minPitch(f.drm, size.width, 0));
      if (p0.bytesperline < min) {
        out.push({ ...at, drm: null, reason: `${f.v4l2}: bytesperline ${p0.bytesperline} below ${formatName(f.drm)}'s ${min}` });
        continue;
      }
      const probe = this.tryFormat({ width: size.width, height: size.height, pixelformat: f.pixelformat, planes: [{ bytesperline: p0.bytesperline + 64 }] });
      out.push({ ...at, drm: f.drm, flexiblePitch: (probe.planes[0]?.bytesperline ?? 0) === p0.bytesperline + 64 });
    }
    return out;
  }

  /**
   * The node's constraint for a buffer of `size` (optionally one DRM format): see the top of
   * this file. Usage 'camera' for a capture node, 'video-encode' for an output node (the
   * stand-in encoder). Throws InvalidArgumentError when no format fits the size.
   */
  constraintFor(size: V4l2Size, opts: { format?: number; usage?: Usage } = {}): DeviceConstraint {
    const formats = this.formatsAt(size);
    const first = formats.find((a) => a.drm !== null && (opts.format === undefined || a.drm === opts.format));
    const caps = this.capabilities;
    return v4l2Constraint({
      path: this.path,
      driver: caps.driver,
      card: caps.card,
      direction: this.direction,
      formats,
      frameSizes: first ? this.frameSizes(first.format.pixelformat) : null,
      importsDmabuf: this.queueCaps.dmabuf,
      contiguity: this.contiguity(),
    }, size, opts);
  }

  /** The V4L2 fourcc the node lists for a DRM format, or null. */
  pixelformatFor(drm: number): number | null {
    const listed = new Set(this.formats().map((f) => f.pixelformat));
    const code = v4l2FormatFor(drm);
    return code !== null && listed.has(code) ? code : null;
  }
}

function checkSize(size: V4l2Size): void {
  if (!size || !Number.isInteger(size.width) || !Number.isInteger(size.height) || size.width < 1 || size.height < 1) {
    throw new RangeError(`a V4L2 size is positive integers, got ${JSON.stringify(size)}`);
  }
}

function sizeList(fs: RawV4l2FrameSizes | null): string {
  if (!fs) return '';
  if (fs.kind === 'discrete') return ` (discrete sizes: ${fs.sizes.map((s) => `${s.width}x${s.height}`).join(', ')})`;
  return ` (${fs.kind} ${fs.minWidth}..${fs.maxWidth} x ${fs.minHeight}..${fs.maxHeight})`;
}

/** What constraintFor() reads from a node: the pure input of v4l2Constraint(). */
export interface V4l2Probe {
  readonly path: string;
  readonly driver: string;
  readonly card: string;
  readonly direction: V4l2Direction;
  /** formatsAt(size) */
  readonly formats: readonly V4l2FormatAtSize[];
  /** ENUM_FRAMESIZES of the first format that fits */
  readonly frameSizes: RawV4l2FrameSizes | null;
  /** REQBUFS(0) answered V4L2_BUF_CAP_SUPPORTS_DMABUF */
  readonly importsDmabuf: boolean;
  readonly contiguity: { readonly contiguous?: boolean; readonly source: string };
}

/**
 * A V4L2 node's constraint from what was read of it (see the top of this file): the formats
 * that fit the size (one when `opts.format`), the pitch rule, size limits, import and
 * contiguity. Throws InvalidArgumentError when no format fits, with TRY_FMT's reasons.
 */
export function v4l2Constraint(probe: V4l2Probe, size: V4l2Size, opts: { format?: number; usage?: Usage } = {}): DeviceConstraint {
  const all = probe.formats;
  const fits = all.filter((a) => a.drm !== null && (opts.format === undefined || a.drm === opts.format));
  if (fits.length === 0) {
    const want = opts.format === undefined ? '' : ` in ${formatName(opts.format)}`;
    const why = all.filter((a) => opts.format === undefined || a.format.drm === opts.format).map((a) => a.reason).filter(Boolean);
    throw new InvalidArgumentError(`${probe.path}: no format for ${size.width}x${size.height}${want}${why.length ? ` (${why.slice(0, 4).join('; ')})` : ''}`);
  }
  // A pitch the driver will not change must be the pitch of the allocation.
  const pinned = fits.filter((a) => !a.flexiblePitch && a.bytesperline !== Number(minPitch(a.drm!, size.width, 0)));
  const pitch: Partial<{ pitchAlign: number; maxPitch: number }> = {};
  let pitchNote = 'pitch: any from the minimum up (the driver takes the allocation\'s bytesperline)';
  if (fits.length === 1 && !fits[0]!.flexiblePitch) {
    pitch.pitchAlign = fits[0]!.bytesperline;
    pitch.maxPitch = fits[0]!.bytesperline;
    pitchNote = `pitch exactly ${fits[0]!.bytesperline} (TRY_FMT bytesperline; the driver takes no other)`;
  } else if (pinned.length > 0) {
    throw new InvalidArgumentError(`${probe.path}: ${pinned.map((a) => formatName(a.drm!)).join(', ')} need a driver-chosen pitch: ask for one format`);
  }
  const fs = probe.frameSizes;
  const sizes = fs && fs.kind !== 'discrete'
    ? { minWidth: fs.minWidth, maxWidth: fs.maxWidth, minHeight: fs.minHeight, maxHeight: fs.maxHeight }
    : { minWidth: size.width, maxWidth: size.width, minHeight: size.height, maxHeight: size.height }; // discrete (or none listed): the size TRY_FMT kept
  const usage: Usage = opts.usage ?? (probe.direction === 'capture' ? 'camera' : 'video-encode');
  const c: { -readonly [K in keyof DeviceConstraint]: DeviceConstraint[K] } = {
    device: probe.path,
    usage,
    source: `V4L2 ${probe.path} (${probe.driver} '${probe.card}'): ENUM_FMT/TRY_FMT at ${size.width}x${size.height}, ${pitchNote}; ` +
      `${probe.importsDmabuf ? 'imports dma-bufs (V4L2_BUF_CAP_SUPPORTS_DMABUF)' : 'no DMABUF memory: its own buffers (EXPBUF)'}; ${probe.contiguity.source}`,
    formats: FormatSet.from(fits.map((a) => [a.drm!, DRM_FORMAT_MOD_LINEAR] as [number, bigint])),
    maxPlanes: Math.max(...fits.map((a) => formatInfo(a.drm!)?.planes ?? 1)),
    ...pitch,
    ...sizes,
  };
  if (!probe.importsDmabuf) c.allocateOn = probe.path;
  if (probe.contiguity.contiguous !== undefined) c.contiguous = probe.contiguity.contiguous;
  if (probe.driver === 'vivid') c.coherent = true;
  return c;
}
