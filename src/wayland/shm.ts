/**
 * primebuf's wl_shm (the only one: libwayland's own is not used), on the generic bridge, so that a
 * pool keeps its fd, knows its seals, and a buffer in a pool the kernel can hand to a device
 * goes to the display without a copy:
 *
 *   const shm = installShm(server, { formats: [...kmsFormats(device).primary.formats, ...CONVERTIBLE_FORMATS],
 *                                    zeroCopy: { udmabuf: UdmabufAllocator.open() } });
 *   // wl_surface.attach: const b = ShmBuffer.from(resource); presenter.present({ buffer: b.scanoutBuffer() })
 *
 * Protocol (wayland.xml's wl_shm and wl_shm_pool; the checks and codes are libwayland's shm.c):
 * - wl_shm.create_pool: size <= 0 is invalid_stride ("invalid size"), a file that cannot be
 *   mapped is invalid_fd. The pool owns the fd from then on and reads its seals (F_GET_SEALS).
 * - wl_shm_pool.create_buffer: a format not advertised is invalid_format; offset < 0, width or
 *   height <= 0, a stride below the row's bytes or not a whole number of pixels, or a buffer
 *   reaching past the pool (offset + stride * height > size, 64-bit) is invalid_stride (the
 *   enum's "invalid size or stride during pool or buffer creation"; libwayland posts the same
 *   code for the out-of-range offset). Errors are posted on the pool.
 * - wl_shm_pool.resize: only grows ("can only be used to make the pool bigger"); a smaller size
 *   is invalid_fd, as libwayland posts it ("shrinking pool invalid"), so is a failed remap.
 * - A pool lives while a buffer of it does: a destroyed pool's buffers stay valid.
 *
 * Reading pool memory safely: a pool whose memfd carries F_SEAL_SHRINK and whose file was at
 * least as large as the buffer's end when the buffer was made cannot lose those pages (the
 * seal forbids any shrink), so its reads need no guard. Any other buffer (no seal, a plain file
 * in XDG_RUNTIME_DIR, a file smaller than the pool claims) is read under copy.cc's SIGBUS guard:
 * a read of truncated memory abandons the copy (siglongjmp: nothing is mapped over the hole, the
 * copy stops at the first fault instead of running on through zeroes as libwayland's handler
 * does), the pool is marked bad, the client gets wl_shm.error.invalid_fd on its wl_buffer, and
 * the compositor carries on.
 *
 * Zero copy: a buffer in a pool that is a memfd sealed against shrinking and without a write seal
 * (UDMABUF_CREATE refuses F_SEAL_WRITE and F_SEAL_FUTURE_WRITE) becomes a udmabuf, one per pool
 * and page range, shared by the buffers at that range and held while one of them is not freed; a
 * range no buffer holds any more stays cached for the next buffer there, up to
 * IDLE_UDMABUFS_PER_POOL per pool (least recently used closed first), and the rest close with the pool. udmabuf takes page-aligned offsets and sizes
 * inside the file only (a file that ends mid-page is grown to the page boundary first: see
 * ShmPool.#coverPages), so a buffer that starts (or ends) mid-page gets a udmabuf over the enclosing whole pages,
 * and its plane offset inside that dma-buf is the buffer's offset within the first page: AddFB2
 * takes plane offsets, so the display reads exactly the buffer's rows (on a display that reads
 * plane offsets right: `zeroCopy.planeOffsets: false` copies such buffers instead, for vkms). scanoutBuffer() is then a
 * `kind: 'dmabuf'` ScanoutBuffer (LINEAR) and the verdicts decide as for any dma-buf (format,
 * pitch, size, TEST_ONLY): direct when they pass, copied from the udmabuf otherwise with their
 * reasons. Anything else is a `kind: 'shm'` ScanoutBuffer whose copySource reads the pool
 * (guarded where needed), and `zeroCopy` says why.
 *
 * Coherency: udmabuf memory is ordinary cached memory the client writes with the CPU and never
 * brackets. When the display is not cache-coherent (`zeroCopy.coherent: false`, from the
 * constraint model: the merged set's writeCombine), no udmabuf is made and the buffer is copied
 * from the pool instead. Bracketing the hand-over with DMA_BUF_IOCTL_SYNC on the udmabuf was the
 * other choice; it is not taken because udmabuf syncs through its own misc device's DMA mapping,
 * not the display's, so whether that cleans the lines the display reads depends on the
 * architecture's DMA ops, and it would cost a whole-buffer cache clean on the JS thread's frame
 * path anyway. A copy into the presenter's write-combined ring is right everywhere.
 */
import { Dmabuf } from '../dmabuf/dmabuf.js';
import { Mapping } from '../dmabuf/mapping.js';
import { ClosedError, InvalidArgumentError, SystemError } from '../errors.js';
import type { OwnedFd } from '../fd.js';
import { formatInfo, formatName, fourcc, minPitch } from '../formats/index.js';
import { native } from '../native.js';
import type { UdmabufAllocator } from '../alloc/backends/udmabuf.js';
import { F_SEAL_GROW, F_SEAL_SHRINK, F_SEAL_WRITE, udmabufSizeLimit } from '../alloc/backends/udmabuf.js';
import { copyRectsInto, type ComposeSource, type CopyOptions, type CopySource, type CopySurface } from '../scanout/copy.js';
import type { Rect } from '../scanout/damage.js';
import { shmBuffer, type ScanoutBuffer } from '../scanout/verdict-buffer.js';
import { BufferLifetime } from './buffer-lifetime.js';
import type { KmsDeviceModel } from '../kms/model.js';
import { shmDefaults } from './kms-formats.js';
import { WL_SHM_ERROR, isShmTruncated, type ServerClient, type ServerGlobal, type ServerResource, type WaylandServer } from './server.js';

/** The wl_shm version served (the vendored wayland.xml's). */
export const WL_SHM_VERSION = 1;

/** F_SEAL_FUTURE_WRITE (linux/fcntl.h): udmabuf refuses it like F_SEAL_WRITE. */
export const F_SEAL_FUTURE_WRITE = 0x10;

const AR24 = fourcc('ARGB8888');
const XR24 = fourcc('XRGB8888');

/** wl_shm's code for a DRM fourcc (its two core formats have their own codes; the rest are the fourcc). */
export function wlShmFormat(drmFormat: number): number {
  return drmFormat === AR24 ? 0 : drmFormat === XR24 ? 1 : drmFormat;
}

/** The DRM fourcc of a wl_shm format code. */
export function drmFormatOfShm(code: number): number {
  return code === 0 ? AR24 : code === 1 ? XR24 : code;
}

/**
 * The whole pages a udmabuf must cover for `bytes` at `offset` of a file (udmabuf takes only
 * page-aligned offsets and sizes): `start` and `size` of the udmabuf, and `planeOffset`, where
 * the buffer begins inside it.
 */
export function udmabufRange(offset: number, bytes: number, pageSize: number): { start: number; size: number; planeOffset: number } {
  const start = Math.floor(offset / pageSize) * pageSize;
  const end = Math.ceil((offset + bytes) / pageSize) * pageSize;
  return { start, size: end - start, planeOffset: offset - start };
}

export interface ShmZeroCopyOptions {
  /** /dev/udmabuf, open (UdmabufAllocator.open()); the caller owns and closes it after the global. */
  readonly udmabuf: UdmabufAllocator;
  /**
   * false when the display is not cache-coherent (the constraint model's writeCombine): then no
   * udmabuf is made and buffers are copied (see the module comment). Default: from `model`
   * (ShmOptions), else true.
   */
  readonly coherent?: boolean;
  /** Largest udmabuf (default: the udmabuf module's size_limit_mb). */
  readonly sizeLimit?: bigint;
  /**
   * false when the display mishandles framebuffer plane offsets (the model's planeOffsets,
   * probed through writeback): then only buffers that start on a page boundary (plane offset 0)
   * are zero-copy, the others are copied. Default: from `model` (ShmOptions), else true.
   */
  readonly planeOffsets?: boolean;
}

/**
 * Whether a KMS driver reads a framebuffer's plane offsets right. vkms (Linux 6.12) applies them
 * twice: vkms_plane.c takes the plane's pixels from drm_gem_fb_vmap's `data` pointers, which
 * already include fb->offsets, and vkms_formats.c's pixel_offset() adds fb->offsets[0] again, so
 * a buffer at plane offset 256 shows the pixels 256 bytes further on. (Seen in the vkms rig's
 * writeback: test/vkms/shm-zero-copy.test.ts.)
 */
export function displayHonoursPlaneOffsets(driver: string): boolean {
  return driver !== 'vkms';
}

export interface ShmOptions {
  /**
   * The display's model (KmsDeviceModel.read): the defaults of `formats`, `zeroCopy.coherent`
   * and `zeroCopy.planeOffsets` come from it (shmDefaults), as LinuxDmabuf.forKmsDevice takes
   * its formats; what the caller passes overrides them.
   */
  readonly model?: KmsDeviceModel;
  /**
   * DRM fourccs advertised beyond ARGB8888 and XRGB8888 (the output's direct formats, the copy's
   * CONVERTIBLE_FORMATS). One-plane formats with whole bytes per pixel only. Default: from
   * `model` (the primary plane's and CONVERTIBLE_FORMATS), else none.
   */
  readonly formats?: readonly number[];
  /** Scan out buffers of sealed memfd pools through udmabuf; absent: every buffer is copied. */
  readonly zeroCopy?: ShmZeroCopyOptions;
  /** A new wl_buffer (the compositor takes it from here). */
  readonly onBuffer?: (buffer: ShmBuffer) => void;
}

/** Counts since the global was installed. */
export interface ShmStats {
  pools: number;
  buffers: number;
  /** udmabufs made (UDMABUF_CREATE calls that succeeded) */
  udmabufs: number;
  /** idle udmabufs closed to keep a pool's cache bounded (IDLE_UDMABUFS_PER_POOL) */
  udmabufsEvicted: number;
  /** guarded reads that hit a truncated pool */
  truncations: number;
}

/** Whether zero copy applies to a buffer, and why not. */
export type ZeroCopyVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * Idle udmabufs a pool keeps (ranges no live buffer uses, ready for the next buffer made at the
 * same range: clients that re-create their wl_buffers each frame at the same offsets); past it
 * the least recently used idle one is closed. Ranges in use by a buffer are never evicted.
 */
export const IDLE_UDMABUFS_PER_POOL = 8;

interface UdmabufEntry {
  readonly result: Dmabuf | string;
  /** buffers holding it (made their ScanoutBuffer from it and not yet freed) */
  users: number;
}

/** A wl_shm_pool: owns the client's fd and the mapping; lives while its resource or a buffer does. */
export class ShmPool {
  /** F_GET_SEALS of the fd (0 for a file that cannot be sealed). */
  readonly seals: number;
  #fd: OwnedFd;
  #mapping: Mapping;
  #size: number;
  #fileSize: number;
  #refs = 1; // the wl_shm_pool resource
  #freed = false;
  #bad: SystemError | undefined;
  /**
   * udmabufs by page range (`start+size`), least recently used first; a string is why the range
   * cannot be made (remembered too, so no retry every frame). An entry with users is held by
   * buffers not yet freed (their ScanoutBuffer carries its fd) and never evicted; idle entries
   * beyond IDLE_UDMABUFS_PER_POOL are closed, oldest first.
   */
  readonly #udmabufs = new Map<string, UdmabufEntry>();

  /** @internal (create_pool) */
  constructor(
    readonly shm: ShmGlobal,
    readonly resource: ServerResource<'wl_shm_pool'>,
    fd: OwnedFd,
    mapping: Mapping,
    size: number,
  ) {
    this.#fd = fd;
    this.#mapping = mapping;
    this.#size = size;
    this.#fileSize = Number(native.fdSize(fd.fd));
    this.seals = readSeals(fd.fd);
    resource.onDestroy(() => this.unref());
  }

  /** The pool's size (what the client said at create_pool or its last resize). */
  get size(): number {
    return this.#size;
  }

  /** The file's size when the pool was made or last resized. */
  get fileSize(): number {
    return this.#fileSize;
  }

  /** The fd carries F_SEAL_SHRINK: the file never becomes smaller than it is. */
  get sealedShrink(): boolean {
    return (this.seals & F_SEAL_SHRINK) !== 0;
  }

  /** The fd and mapping are released (the pool resource and every buffer of it gone). */
  get freed(): boolean {
    return this.#freed;
  }

  /** Set once a guarded read found the pool truncated: the error every later read gets. */
  get bad(): SystemError | undefined {
    return this.#bad;
  }

  /** The current mapping (replaced by a resize; the old one is unmapped once no copy uses it). */
  get mapping(): Mapping {
    return this.#mapping;
  }

  /** @internal Whether `end` bytes of the pool cannot fault: sealed against shrinking and in the file. */
  safeUpTo(end: number): boolean {
    return this.sealedShrink && end <= this.#fileSize;
  }

  /** @internal wl_shm_pool.resize to a size already checked to be larger. */
  remap(size: number): void {
    const m = Mapping.map(this.#fd.fd, 0, size, false, `wl_shm_pool@${this.resource.id} (${size} bytes)`);
    this.#mapping.close(); // unmapped when the copies using it settle
    this.#mapping = m;
    this.#size = size;
    this.#fileSize = Number(native.fdSize(this.#fd.fd));
  }

  /** @internal */
  markBad(err: SystemError): void {
    this.#bad ??= err;
  }

  /**
   * @internal The udmabuf over `size` bytes at `start` (whole pages), held for a buffer until
   * releaseUdmabuf: made on the first use of a range, kept (idle) for the next buffer at that
   * range while the pool lives, evicted when too many idle ones pile up. A string says why the
   * range cannot be made (remembered like an idle entry: no retry every frame).
   */
  acquireUdmabuf(dev: UdmabufAllocator, start: number, size: number): Dmabuf | string {
    const key = `${start}+${size}`;
    let e = this.#udmabufs.get(key);
    if (e) this.#udmabufs.delete(key); // re-inserted below: the most recently used
    else e = { result: this.#makeUdmabuf(dev, start, size), users: 0 };
    this.#udmabufs.set(key, e);
    if (e.result instanceof Dmabuf) e.users++;
    else this.#evictIdle();
    return e.result;
  }

  /** @internal A buffer that held `d` (acquireUdmabuf) is freed: the entry becomes idle when it was the last. */
  releaseUdmabuf(d: Dmabuf): void {
    for (const [key, e] of this.#udmabufs) {
      if (e.result !== d) continue;
      if (e.users > 0) e.users--;
      if (e.users === 0) {
        // idle from now: the most recently used idle entry
        this.#udmabufs.delete(key);
        this.#udmabufs.set(key, e);
        this.#evictIdle();
      }
      return;
    }
  }

  /** udmabufs of this pool that are open (held by buffers or idle). */
  get openUdmabufs(): number {
    let n = 0;
    for (const e of this.#udmabufs.values()) if (e.result instanceof Dmabuf) n++;
    return n;
  }

  #evictIdle(): void {
    let idle = 0;
    for (const e of this.#udmabufs.values()) if (e.users === 0) idle++;
    for (const [key, e] of this.#udmabufs) {
      if (idle <= IDLE_UDMABUFS_PER_POOL) break;
      if (e.users > 0) continue;
      this.#udmabufs.delete(key);
      if (e.result instanceof Dmabuf) {
        e.result.close();
        this.shm.stats.udmabufsEvicted++;
      }
      idle--;
    }
  }

  #makeUdmabuf(dev: UdmabufAllocator, start: number, size: number): Dmabuf | string {
    const why = (what: string, err: unknown): string => `${what}: ${err instanceof Error ? err.message : String(err)}`;
    let grown: string | undefined;
    try {
      grown = this.#coverPages(start + size);
    } catch (err) {
      return why('growing the file to the page boundary failed', err);
    }
    if (grown !== undefined) return grown;
    try {
      const d = dev.fromMemfd(this.#fd.fd, start, size, `udmabuf of wl_shm_pool@${this.resource.id} [${start}, ${start + size})`);
      this.shm.stats.udmabufs++;
      return d;
    } catch (err) {
      return why('UDMABUF_CREATE refused the range', err);
    }
  }

  // UDMABUF_CREATE pins whole pages inside the file only (memfd_pin_folios refuses a range that
  // reaches i_size), so a file that ends inside the buffer's last page (weston-simple-shm's
  // 250x250 pools: 250000 bytes) is grown to the page boundary first: the bytes added lie past
  // every buffer's end and the shrink seal keeps them. A file sealed against growing cannot be,
  // and a client that meanwhile grew its file past `end` needs nothing. (A client that later
  // ftruncates to a size between its own and ours gets EPERM from its shrink seal.)
  #coverPages(end: number): string | undefined {
    const now = Number(native.fdSize(this.#fd.fd));
    if (now >= end) return undefined;
    if (this.seals & F_SEAL_GROW) return `the pool's file (${now} bytes) ends inside the buffer's last page and is sealed against growing: udmabuf pins whole pages of the file only`;
    native.ftruncateFd(this.#fd.fd, end);
    this.#fileSize = Number(native.fdSize(this.#fd.fd));
    return undefined;
  }

  /** @internal */
  ref(): void {
    this.#refs++;
  }

  /** @internal */
  unref(): void {
    if (--this.#refs > 0 || this.#freed) return;
    this.#freed = true;
    for (const e of this.#udmabufs.values()) if (e.result instanceof Dmabuf) e.result.close();
    this.#udmabufs.clear();
    this.#mapping.close();
    this.#fd.close();
    this.shm._poolFreed();
  }
}

function readSeals(fd: number): number {
  try {
    return native.getSeals(fd);
  } catch (err) {
    if (err instanceof SystemError && err.code === 'EINVAL') return 0; // not a memfd: no seals
    throw err;
  }
}

/** A wl_buffer of primebuf's wl_shm. */
export class ShmBuffer extends BufferLifetime {
  /** DRM fourcc. */
  readonly format: number;
  readonly #guarded: boolean;
  #scanout: ScanoutBuffer | undefined;
  #zeroCopy: ZeroCopyVerdict | undefined;
  /** the pool's udmabuf this buffer's ScanoutBuffer reads, held until the buffer is freed */
  readonly #held: { dmabuf?: Dmabuf } = {};

  /** @internal (create_buffer, after its checks) */
  constructor(
    resource: ServerResource<'wl_buffer'>,
    readonly pool: ShmPool,
    readonly offset: number,
    readonly width: number,
    readonly height: number,
    readonly stride: number,
    shmFormat: number,
  ) {
    pool.ref();
    let held: { dmabuf?: Dmabuf } | undefined;
    super(resource, () => {
      if (held?.dmabuf) pool.releaseUdmabuf(held.dmabuf); // the range may go idle (and be evicted)
      pool.unref();
    });
    held = this.#held;
    this.format = drmFormatOfShm(shmFormat);
    this.#guarded = !pool.safeUpTo(offset + stride * height);
    resource.data['shmBuffer'] = this;
  }

  /** The ShmBuffer behind a wl_buffer resource (e.g. from wl_surface.attach), or null. */
  static from(resource: ServerResource | null): ShmBuffer | null {
    const b = resource?.data['shmBuffer'];
    return b instanceof ShmBuffer ? b : null;
  }

  get client(): ServerClient {
    return this.resource.client;
  }

  /** Reads of this buffer run under the SIGBUS guard (its pool could shrink under us). */
  get guarded(): boolean {
    return this.#guarded;
  }

  /** Whether this buffer is scanned out through a udmabuf, and why not (computed once). */
  get zeroCopy(): ZeroCopyVerdict {
    this.scanoutBuffer();
    return this.#zeroCopy!;
  }

  /**
   * The buffer as the presenter takes it (the same object every call): `kind: 'dmabuf'` over the
   * pool's udmabuf when zero copy applies, else `kind: 'shm'` with a copySource reading the pool.
   * Made on the first call (a compositor calls it when the buffer is committed); ClosedError when
   * that first call comes after the buffer was freed.
   */
  scanoutBuffer(): ScanoutBuffer {
    if (this.#scanout) return this.#scanout;
    if (this.freed) throw new ClosedError(`wl_buffer@${this.resource.id} (wl_shm, freed)`);
    const name = `wl_buffer@${this.resource.id} of client ${this.client.key} (wl_shm)`;
    const plan = this.#udmabuf();
    if (typeof plan === 'string') {
      this.#zeroCopy = { ok: false, reason: plan };
      this.#scanout = { ...shmBuffer(this.width, this.height, this.format, this.stride, name), copySource: this.#copySource(), life: this };
    } else {
      this.#zeroCopy = { ok: true };
      this.#scanout = {
        kind: 'dmabuf',
        width: this.width,
        height: this.height,
        format: this.format,
        modifier: 0n, // LINEAR: the client's rows as they are
        planes: [{ fd: plan.dmabuf.fd, offset: plan.planeOffset, stride: this.stride }],
        name: `${name.slice(0, -1)}, udmabuf)`,
        life: this,
      };
    }
    return this.#scanout;
  }

  #udmabuf(): { dmabuf: Dmabuf; planeOffset: number } | string {
    const zc = this.pool.shm.options.zeroCopy;
    if (!zc) return 'zero copy is off (no udmabuf device given)';
    if (zc.coherent === false) return 'the display is not cache-coherent: copied, not scanned out from cached memory';
    const pool = this.pool;
    const seals = `seals 0x${pool.seals.toString(16)}`;
    if (!pool.sealedShrink) return `the pool is not a memfd sealed against shrinking (${seals})`;
    if (pool.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) return `the pool has a write seal, which udmabuf refuses (${seals})`;
    const bytes = this.stride * this.height;
    if (this.#guarded) return `the pool's file (${pool.fileSize} bytes) ends before the buffer does (${this.offset + bytes})`;
    const r = udmabufRange(this.offset, bytes, native.pageSize);
    if (r.planeOffset !== 0 && zc.planeOffsets === false)
      return `the buffer starts ${r.planeOffset} bytes into a page and the display mishandles plane offsets`;
    const limit = pool.shm.udmabufLimit;
    if (BigInt(r.size) > limit) return `${r.size} bytes of pages exceed udmabuf's size limit (${limit})`;
    const d = pool.acquireUdmabuf(zc.udmabuf, r.start, r.size);
    if (typeof d === 'string') return d;
    this.#held.dmabuf = d;
    return { dmabuf: d, planeOffset: r.planeOffset };
  }

  #copySource(): CopySource {
    const surface = (): CopySurface => ({ memory: this.pool.mapping, offset: this.offset, format: this.format, stride: this.stride, width: this.width, height: this.height });
    const src: CopySource = {
      copyRects: (dst, rects, opts) => this.#copy(dst, rects, opts),
      // composeLayers reads a guarded buffer through its own guarded copy
      composeSource: (): ComposeSource => {
        if (this.pool.bad) throw this.pool.bad;
        return { surface: surface(), guarded: this.#guarded, failed: (err) => void (isShmTruncated(err) && this.#truncated(err)) };
      },
    };
    if (this.#guarded) return src; // an unguarded transformed copy of memory that may vanish: none
    return { ...src, surface };
  }

  /** The source half of every copy job of this buffer (all of it fixed for the buffer's life). */
  #source?: { offset: number; format: number; stride: number; width: number; height: number; guarded: boolean; what: string };

  async #copy(dst: CopySurface, rects: readonly Rect[], opts: CopyOptions): Promise<number> {
    const pool = this.pool;
    if (pool.bad) throw pool.bad;
    const mapping = pool.mapping;
    const src = (this.#source ??= {
      offset: this.offset, format: this.format, stride: this.stride, width: this.width, height: this.height, guarded: this.#guarded,
      what: `wl_buffer@${this.resource.id} (wl_shm ${this.width}x${this.height} ${formatName(this.format)})`,
    });
    try {
      return await copyRectsInto(dst, rects, opts, (job) => mapping.use((data) => native.shmPoolCopyRects({ data, ...src }, job)));
    } catch (err) {
      if (isShmTruncated(err)) this.#truncated(err);
      throw err;
    }
  }

  // As libwayland: wl_shm.error.invalid_fd on the wl_buffer; a buffer destroyed meanwhile cannot
  // carry it, so the client gets an implementation error. Either disconnects that client only.
  #truncated(err: SystemError): void {
    const pool = this.pool;
    if (!pool.bad) pool.shm.stats.truncations++;
    pool.markBad(err);
    const client = this.client;
    if (client.destroyed || client.server.closed) return;
    const message = `error accessing SHM buffer: ${err.detail}`;
    if (!this.destroyed) this.resource.postError(WL_SHM_ERROR.invalid_fd, message);
    else client.server.native.clientImplementationError(client.key, message);
  }
}

/** primebuf's wl_shm global on one WaylandServer. */
export class ShmGlobal {
  readonly global: ServerGlobal;
  readonly stats: ShmStats = { pools: 0, buffers: 0, udmabufs: 0, udmabufsEvicted: 0, truncations: 0 };
  /** DRM fourccs advertised (ARGB8888 and XRGB8888 first). */
  readonly formats: readonly number[];
  readonly #wlFormats: ReadonlySet<number>;
  #livePools = 0;
  #udmabufLimit: bigint | undefined;

  constructor(
    readonly server: WaylandServer,
    readonly options: ShmOptions = {},
  ) {
    const formats = [AR24, XR24];
    for (const f of options.formats ?? []) {
      const info = formatInfo(f);
      if (!info || info.planes !== 1 || !(info.cpp[0]! > 0)) {
        throw new InvalidArgumentError(`wl_shm: format 0x${f.toString(16)} (${formatName(f)}) is not a one-plane format with whole bytes per pixel`);
      }
      if (!formats.includes(f)) formats.push(f);
    }
    this.formats = formats;
    this.#wlFormats = new Set(formats.map(wlShmFormat));
    this.global = server.createGlobal('wl_shm', WL_SHM_VERSION, (res) => this.#bind(res));
  }

  /** udmabuf's size limit in bytes: the option, else the module parameter (read once). */
  get udmabufLimit(): bigint {
    this.#udmabufLimit ??= this.options.zeroCopy?.sizeLimit ?? udmabufSizeLimit();
    return this.#udmabufLimit;
  }

  /** Pools whose fd and mapping are still held. */
  get livePools(): number {
    return this.#livePools;
  }

  /** Withdraws the global (pools and buffers of connected clients live on until they go). */
  close(): void {
    this.global.destroy();
  }

  /** @internal */
  _poolFreed(): void {
    this.#livePools--;
  }

  #bind(res: ServerResource<'wl_shm'>): void {
    res.implement({
      create_pool: ({ id, fd, size }) => {
        if (size <= 0) {
          fd.close();
          res.postError(WL_SHM_ERROR.invalid_stride, `invalid size (${size})`);
          return;
        }
        let mapping: Mapping;
        try {
          mapping = Mapping.map(fd.fd, 0, size, false, `wl_shm_pool@${id.id} (${size} bytes)`);
        } catch (err) {
          fd.close();
          if (!(err instanceof SystemError)) throw err;
          res.postError(WL_SHM_ERROR.invalid_fd, `failed mmap fd: ${err.code}`);
          return;
        }
        let pool: ShmPool;
        try {
          pool = new ShmPool(this, id, fd, mapping, size);
        } catch (err) {
          mapping.close();
          fd.close();
          throw err;
        }
        this.stats.pools++;
        this.#livePools++;
        id.implement({
          create_buffer: (a) => this.#createBuffer(pool, a),
          resize: ({ size: n }) => {
            if (n < pool.size) {
              id.postError(WL_SHM_ERROR.invalid_fd, 'shrinking pool invalid');
              return;
            }
            if (n === pool.size) return;
            try {
              pool.remap(n);
            } catch (err) {
              if (!(err instanceof SystemError)) throw err;
              id.postError(WL_SHM_ERROR.invalid_fd, `failed mremap: ${err.code}`);
            }
          },
        });
      },
    });
    for (const f of this.#wlFormats) res.send('format', { format: f });
  }

  #createBuffer(
    pool: ShmPool,
    a: { id: ServerResource<'wl_buffer'>; offset: number; width: number; height: number; stride: number; format: number },
  ): void {
    const { id, offset, width, height, stride, format } = a;
    const res = pool.resource;
    if (!this.#wlFormats.has(format)) {
      res.postError(WL_SHM_ERROR.invalid_format, `invalid format 0x${format.toString(16)}`);
      return;
    }
    const drm = drmFormatOfShm(format);
    const cpp = formatInfo(drm)!.cpp[0]!;
    const bad =
      offset < 0 ||
      width <= 0 ||
      height <= 0 ||
      stride <= 0 ||
      BigInt(stride) < minPitch(drm, width) ||
      stride % cpp !== 0 ||
      BigInt(offset) + BigInt(stride) * BigInt(height) > BigInt(pool.size);
    if (bad) {
      res.postError(WL_SHM_ERROR.invalid_stride, `invalid width, height or stride (${width}x${height}, ${stride}) at offset ${offset} of a ${pool.size}-byte pool`);
      return;
    }
    const buffer = new ShmBuffer(id, pool, offset, width, height, stride, format);
    this.stats.buffers++;
    this.options.onBuffer?.(buffer);
  }
}

/** Installs primebuf's wl_shm on `server`. */
export function installShm(server: WaylandServer, opts: ShmOptions = {}): ShmGlobal {
  return new ShmGlobal(server, withModelDefaults(opts));
}

/** `opts` with what it leaves out taken from its `model` (shmDefaults). */
function withModelDefaults(opts: ShmOptions): ShmOptions {
  if (!opts.model) return opts;
  const d = shmDefaults(opts.model);
  const zc = opts.zeroCopy;
  return {
    ...opts,
    formats: opts.formats ?? d.formats,
    ...(zc ? { zeroCopy: { ...zc, coherent: zc.coherent ?? d.coherent, planeOffsets: zc.planeOffsets ?? d.planeOffsets } } : {}),
  };
}
