/**
 * Device: the one owner of an open DRM node's fd. Everything that lives in the fd's namespace
 * (GEM handles, framebuffers, blobs, pending page-flip events) is tied to a Device and released
 * no later than the Device itself: Device.close() closes its framebuffers, then its blobs, then
 * its GEM handle references, then the fd (children closed again later do nothing).
 */
import { basename } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { native } from '../native.js';
import { Resource } from '../resource.js';
import { DRM_CAPS, DRM_CLIENT_CAPS, DRM_PRIME_CAP_EXPORT, DRM_PRIME_CAP_IMPORT, type DrmCap, type DrmClientCap } from './caps.js';
import type { NodeType } from './discovery.js';
import { GemHandle, GemHandleTable } from './gem.js';
import { DrmEventDispatcher } from './events.js';
import { PropertyCache, type PropertyInfo } from './properties.js';
import { Dmabuf } from '../dmabuf/dmabuf.js';
import { AtomicRequest } from './atomic.js';

export interface DrmVersion {
  name: string;
  major: number;
  minor: number;
  patchlevel: number;
  date: string;
  desc: string;
}

export interface DeviceOpenOptions {
  /**
   * Client caps to ask for on a primary node: UNIVERSAL_PLANES, ATOMIC and WRITEBACK_CONNECTORS
   * by default (each is tried; `device.clientCaps` says which the kernel accepted). Pass [] to
   * ask for none. Render nodes get none (they have no KMS).
   */
  clientCaps?: readonly DrmClientCap[];
}

const DEFAULT_CLIENT_CAPS: readonly DrmClientCap[] = ['UNIVERSAL_PLANES', 'ATOMIC', 'WRITEBACK_CONNECTORS'];

/** Mutable state shared with the release function (which must not capture the Device). */
interface DeviceState {
  /** the fd; -1 once closed (children check it: it stays valid while close() runs) */
  fd: number;
  /** onClose hooks of other owners (caches, buffers), run first, in reverse order */
  hooks: Array<() => void>;
  events: DrmEventDispatcher | undefined;
  /** children, held weakly (a leaked child is still finalized), closed in this order */
  framebuffers: Set<WeakRef<Resource>>;
  blobs: Set<WeakRef<Resource>>;
  gem: GemHandleTable;
  /** releases the fd: close(2), or the owner it came from (a session's closeDevice) */
  closeFd: (fd: number) => void;
}

/** Runs one step of a close; a failure does not stop the rest (the fd close frees it anyway). */
function attempt(step: () => void): void {
  try {
    step();
  } catch {
    // keep closing: the fd close at the end releases what this step could not
  }
}

/**
 * Closes what a Device owns, in a safe order: the hooks of other owners, the event watcher
 * (pending flips reject), framebuffers (RmFB), property blobs, GEM handle references (the last
 * of each does GEM_CLOSE), then the fd.
 */
function closeDevice(state: DeviceState): void {
  for (const h of state.hooks.splice(0).reverse()) attempt(h);
  const events = state.events;
  state.events = undefined;
  if (events) attempt(() => events.close());
  for (const set of [state.framebuffers, state.blobs]) {
    for (const w of [...set]) attempt(() => w.deref()?.close());
    set.clear();
  }
  attempt(() => state.gem.closeAll());
  const fd = state.fd;
  state.fd = -1;
  state.closeFd(fd);
}

export class Device extends Resource {
  readonly path: string;
  readonly version: DrmVersion;
  readonly devId: bigint;
  readonly nodeType: NodeType;
  readonly prime: { readonly import: boolean; readonly export: boolean };
  readonly #state: DeviceState;
  readonly #clientCaps = new Set<DrmClientCap>();
  readonly #gem: GemHandleTable;
  #primeImports = 0;
  #props: PropertyCache | undefined;
  #ids: { crtcs: number[]; connectors: number[]; encoders: number[]; planes: number[] } | undefined;
  readonly #objectProps = new Map<number, Map<string, number>>();

  /** Opens a DRM node O_RDWR | O_CLOEXEC; SystemError (code, errno, syscall 'open') on failure. */
  static open(path: string, opts: DeviceOpenOptions = {}): Device {
    const fd = native.drmOpenPath(path);
    try {
      return new Device(fd, path, opts, (f) => native.closeFd(f));
    } catch (err) {
      native.closeFd(fd);
      throw err;
    }
  }

  /**
   * A Device over an fd opened elsewhere (a session's: `session.openDevice(path).fd`, which libseat
   * opened and made DRM master). The Device owns it from here on: its close() releases the
   * children, then calls `release(fd)` (e.g. `() => session.closeDevice(dev)`) instead of
   * close(2). When this throws, `release(fd)` has run.
   */
  static fromFd(fd: number, path: string, release: (fd: number) => void, opts: DeviceOpenOptions = {}): Device {
    try {
      return new Device(fd, path, opts, release);
    } catch (err) {
      release(fd);
      throw err;
    }
  }

  private constructor(fd: number, path: string, opts: DeviceOpenOptions, closeFd: (fd: number) => void) {
    const version = native.drmGetVersion(fd);
    const devId = native.drmFstatRdev(fd);
    const nodeType = native.drmNodeType(fd);
    const gem = new GemHandleTable(fd, basename(path));
    const state: DeviceState = { fd, hooks: [], events: undefined, framebuffers: new Set(), blobs: new Set(), gem, closeFd };
    super(`${basename(path)} (${version.name})`, () => closeDevice(state));
    this.#state = state;
    this.#gem = gem;
    this.path = path;
    this.version = version;
    this.devId = devId;
    this.nodeType = nodeType;
    let primeCap = 0n;
    try {
      primeCap = native.drmGetCap(fd, DRM_CAPS.PRIME);
    } catch {
      primeCap = 0n;
    }
    this.prime = Object.freeze({
      import: (primeCap & DRM_PRIME_CAP_IMPORT) !== 0n,
      export: (primeCap & DRM_PRIME_CAP_EXPORT) !== 0n,
    });
    if (nodeType === 'primary') {
      for (const cap of opts.clientCaps ?? DEFAULT_CLIENT_CAPS) {
        try {
          this.setClientCap(cap, 1n);
        } catch {
          // not supported by this driver/kernel: clientCaps says what holds
        }
      }
    }
  }

  /** The raw fd; valid while the Device is open. Do not close it: the Device owns it. */
  get fd(): number {
    this.assertOpen();
    return this.#state.fd;
  }

  /** 'card0' */
  get name(): string {
    return basename(this.path);
  }

  /** DRM_IOCTL_GET_CAP by name. */
  getCap(cap: DrmCap): bigint {
    const n = DRM_CAPS[cap];
    if (n === undefined) throw new InvalidArgumentError(`unknown DRM cap '${String(cap)}'`);
    return native.drmGetCap(this.fd, n);
  }

  /** getCap, or `fallback` when the kernel does not know the cap (EINVAL). */
  tryGetCap(cap: DrmCap, fallback = 0n): bigint {
    try {
      return this.getCap(cap);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw err;
      return fallback;
    }
  }

  /** DRM_IOCTL_SET_CLIENT_CAP by name. */
  setClientCap(cap: DrmClientCap, value: bigint | number = 1n): void {
    const n = DRM_CLIENT_CAPS[cap];
    if (n === undefined) throw new InvalidArgumentError(`unknown DRM client cap '${String(cap)}'`);
    native.drmSetClientCap(this.fd, n, BigInt(value));
    if (BigInt(value) !== 0n) this.#clientCaps.add(cap);
    else this.#clientCaps.delete(cap);
  }

  /** The client caps this Device set successfully. */
  get clientCaps(): ReadonlySet<DrmClientCap> {
    return this.#clientCaps;
  }

  /** Whether this fd is DRM master (a primary node opened with no other master). */
  get isMaster(): boolean {
    return native.drmIsMaster(this.fd);
  }

  /**
   * PRIME import: the GEM handle of this dma-buf on this device, as one counted reference.
   * Importing the same dma-buf again gives the same handle with one more reference; the
   * kernel handle is closed when the last reference is closed (or with the Device).
   */
  importDmabuf(dmabuf: number | Dmabuf): GemHandle {
    this.assertOpen();
    const fd = typeof dmabuf === 'number' ? dmabuf : dmabuf.fd;
    this.#primeImports++;
    const handle = this.#gem.importFd(fd);
    return new GemHandle(this.#gem, handle);
  }

  /** PRIME imports asked of this device so far (DRM_IOCTL_PRIME_FD_TO_HANDLE calls, failed ones too). */
  get primeImports(): number {
    return this.#primeImports;
  }

  /** PRIME export of a GEM handle of this device: a new dma-buf fd (O_CLOEXEC, read-write by default). */
  exportDmabuf(handle: GemHandle | number, writable = true): Dmabuf {
    const h = typeof handle === 'number' ? handle : handle.handle;
    return new Dmabuf(native.drmPrimeHandleToFd(this.fd, h, writable), `dma-buf of ${this.name} GEM handle ${h}`);
  }

  /**
   * Counts a handle the kernel just created on this device (dumb buffer, GBM bo) and returns
   * its first reference.
   * @internal
   */
  adoptHandle(handle: number, what?: string): GemHandle {
    this.assertOpen();
    this.#gem.ref(handle);
    return new GemHandle(this.#gem, handle, what);
  }

  /** Property metadata of this device (ids are stable while the fd is open). */
  get properties(): PropertyCache {
    this.assertOpen();
    this.#props ??= new PropertyCache(this.#state.fd);
    return this.#props;
  }

  /** Metadata of one property id. */
  propertyInfo(propId: number): PropertyInfo {
    return this.properties.info(propId);
  }

  /** Property name -> id of a KMS object (cached). */
  objectPropertyIds(objectId: number): ReadonlyMap<string, number> {
    let m = this.#objectProps.get(objectId);
    if (!m) {
      m = new Map();
      for (const [name, p] of this.properties.objectProperties(objectId)) m.set(name, p.id);
      this.#objectProps.set(objectId, m);
    }
    return m;
  }

  /** The KMS object ids (GETRESOURCES + GETPLANERESOURCES), cached; throws on a device without KMS. */
  resourceIds(): { crtcs: number[]; connectors: number[]; encoders: number[]; planes: number[] } {
    this.assertOpen();
    if (!this.#ids) {
      const r = native.drmGetResources(this.#state.fd);
      this.#ids = { crtcs: r.crtcs, connectors: r.connectors, encoders: r.encoders, planes: native.drmGetPlaneResources(this.#state.fd) };
    }
    return this.#ids;
  }

  /**
   * Records the object ids a full read just got (readResources), so resourceIds() does not ask
   * the kernel again.
   * @internal
   */
  noteResourceIds(ids: { crtcs: number[]; connectors: number[]; encoders: number[]; planes: number[] }): void {
    this.assertOpen();
    this.#ids ??= ids;
  }

  /** An atomic request builder on this device. */
  atomic(): AtomicRequest {
    this.assertOpen();
    return new AtomicRequest(this);
  }

  /** The device's event dispatcher (page flips), created on first use. */
  get events(): DrmEventDispatcher {
    this.assertOpen();
    this.#state.events ??= new DrmEventDispatcher(this.#state.fd, this.what);
    return this.#state.events;
  }

  /** Distinct GEM handles primebuf holds on this device. */
  get gemHandleCount(): number {
    return this.#gem.size;
  }

  /** References counted on a handle (0 when primebuf does not hold it). */
  gemHandleRefs(handle: number): number {
    return this.#gem.count(handle);
  }

  /**
   * Registers a cleanup that runs (in reverse order of registration) when the Device closes,
   * before its fd is closed: owners of per-fd kernel objects use it. Returns an unregister
   * function.
   * @internal
   */
  onClose(hook: () => void): () => void {
    this.assertOpen();
    this.#state.hooks.push(hook);
    return () => {
      const i = this.#state.hooks.indexOf(hook);
      if (i >= 0) this.#state.hooks.splice(i, 1);
    };
  }

  /**
   * Registers a framebuffer or blob of this device, to be closed (before the GEM handles and
   * the fd) when the Device closes. Held weakly. Returns the unregister function the child
   * calls from its own release.
   * @internal
   */
  adoptChild(kind: 'framebuffer' | 'blob', child: Resource): () => void {
    this.assertOpen();
    const set = kind === 'framebuffer' ? this.#state.framebuffers : this.#state.blobs;
    const w = new WeakRef(child);
    set.add(w);
    return () => set.delete(w);
  }

  /**
   * The fd while it is open, including while close() releases the children (which still need
   * it for RmFB and friends); undefined once it is closed.
   * @internal
   */
  get liveFd(): number | undefined {
    return this.#state.fd >= 0 ? this.#state.fd : undefined;
  }
}
