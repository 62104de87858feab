/** Raw native surface of native/wayland_server.cc and native/wayland_client.cc. */

export interface WlServerCallbacks {
  onClient(client: number, pid: number, uid: number, gid: number): void;
  onClientDestroyed(client: number): void;
  onBind(global: number, client: number, resource: number, version: number): void;
  /** args decoded by signature: numbers, strings, resource keys (object/new_id), Buffers, fds */
  onRequest(resource: number, opcode: number, args: unknown[]): void;
  onDestroy(resource: number): void;
}

export interface WlResourceInfo {
  id: number;
  interface: string;
  version: number;
  client: number;
  ours: boolean;
}

export interface WlServerNative {
  addSocket(name: string): string;
  addSocketAuto(): string;
  createClient(): { client: number; fd: number };
  globalCreate(iface: string, version: number): number;
  globalDestroy(global: number): void;
  resourceCreate(client: number, iface: string, version: number, id: number): number;
  resourceDestroy(resource: number): void;
  resourceInfo(resource: number): WlResourceInfo | null;
  postEvent(resource: number, opcode: number, args: unknown[]): void;
  postError(resource: number, code: number, message: string): void;
  clientDestroy(client: number): void;
  clientImplementationError(client: number, message: string): void;
  nextSerial(): number;
  destroy(): void;
  /** The direct lane (wayland_server.cc): one surface's steady-state direct frames in native code. */
  laneArm(opts: WlLaneArm, onHandback: (report: WlLaneReport) => void): void;
  laneDisarm(reason: string): boolean;
  laneStats(): WlLaneStats;
}

export interface WlLaneArm {
  surface: number;
  drmFd: number;
  objs: Uint32Array;
  props: Uint32Array;
  values: BigUint64Array;
  /** index of the plane's FB_ID in objs/props/values */
  fbSlot: number;
  planeId: number;
  /** the plane's IN_FENCE_FD property (0: none) */
  inFenceProp: number;
  /** [wl_buffer key, framebuffer id, dma-buf fd to wait on (-1: none)] per buffer, flat */
  buffers: number[];
  /** the surface's current buffer, on screen */
  current: number;
  /** whether its commit still owes the client a wl_buffer.release */
  currentOwed: boolean;
  /** tests only: each lane frame spins this fraction of the process's CPU per lane frame */
  slower?: number;
  /** the copy mode (sources copied into the presenter's ring); `buffers` then give fb 0, fd -1 */
  copy?: {
    slots: ReadonlyArray<{ fb: number; memory: ArrayBuffer; stride: number; dmabufFd: number }>;
    slotShown: number;
    dx: number;
    dy: number;
    modeW: number;
    modeH: number;
    /** [wl_buffer key, pool memory, offset, stride, width, height] */
    sources: Array<[number, ArrayBuffer, number, number, number, number]>;
  };
}

export interface WlLaneReport {
  reason: string;
  /** errno name of a refused commit (or ETIMEDOUT: no flip event within 2 s), else null */
  error: string | null;
  /** flips the lane completed since it was armed, and the last one's time and sequence */
  frames: number;
  tvSec: number;
  tvUsec: number;
  sequence: number;
  shown: number | null;
  current: number | null;
  /** frame callbacks of commits applied and not shown: [key, id] */
  committedCallbacks: Array<[number, number]>;
  attached: boolean;
  pendingBuffer: number | null;
  pendingCallbacks: Array<[number, number]>;
  /** wl_buffer keys whose commit still owes a release */
  owed: number[];
  /** the copy mode: the ring buffer on screen (else -1), and the bytes copied since arming */
  slotShown: number;
  bytes: number;
}

export interface WlLaneStats {
  armed: boolean;
  frames: number;
  bytesCopied: number;
  commits: number;
  handbacks: number;
  strayEvents: number;
  /** lane commits that carried the buffer's write fence as IN_FENCE_FD (its writes were pending) */
  fences: number;
  /** tests only (WlLaneArm.slower): lane frames that spun, the CPU spun, and the CPU those frames cost without it */
  spunFrames: number;
  spunMs: number;
  spunBaseMs: number;
}

export interface WlClientCallbacks {
  onEvent(proxy: number, opcode: number, args: unknown[]): void;
  onError(): void;
}

export interface WlClientError {
  errno: number;
  code?: number;
  interface?: string | null;
  id?: number;
}

export interface WlClientNative {
  connect(name: string | null): void;
  connectFd(fd: number): void;
  marshal(proxy: number, opcode: number, args: unknown[], newInterface: string | null, newVersion: number | null, destroy: boolean): number;
  proxyDestroy(proxy: number): void;
  proxyInfo(proxy: number): { id: number; interface: string; version: number } | null;
  flush(): void;
  error(): WlClientError | null;
  disconnect(): void;
}

export interface WaylandNative {
  WlServer: new (callbacks: WlServerCallbacks) => WlServerNative;
  WlClient: new (callbacks: WlClientCallbacks) => WlClientNative;
  /** A memfd holding `bytes`, sealed against shrink, grow, write and further seals. */
  wlSealedMemfd(name: string, bytes: Uint8Array): number;
  /** 'dev:ino' of the open file behind fd. */
  wlFdIdentity(fd: number): string;
  /** Reads `size` bytes through mmap(PROT_READ, MAP_PRIVATE). */
  wlReadFdPrivate(fd: number, size: number): Buffer;
}
