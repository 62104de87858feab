/**
 * Raw native surface of native/drm.cc: DRM/KMS ioctls over a device fd. Mechanism only; the
 * typed, owning shape is src/kms (Device, Framebuffer, AtomicRequest) and src/dmabuf (PRIME).
 */

export interface RawDrmVersion {
  name: string;
  major: number;
  minor: number;
  patchlevel: number;
  date: string;
  desc: string;
}

export interface RawResources {
  fbs: number[];
  crtcs: number[];
  connectors: number[];
  encoders: number[];
  minWidth: number;
  maxWidth: number;
  minHeight: number;
  maxHeight: number;
}

export interface RawMode {
  clock: number;
  hdisplay: number;
  hsyncStart: number;
  hsyncEnd: number;
  htotal: number;
  hskew: number;
  vdisplay: number;
  vsyncStart: number;
  vsyncEnd: number;
  vtotal: number;
  vscan: number;
  vrefresh: number;
  flags: number;
  type: number;
  name: string;
}

export interface RawCrtc {
  id: number;
  fbId: number;
  x: number;
  y: number;
  width: number;
  height: number;
  mode: RawMode | null;
  gammaSize: number;
}

export interface RawEncoder {
  id: number;
  type: number;
  crtcId: number;
  possibleCrtcs: number;
  possibleClones: number;
}

export interface RawConnector {
  id: number;
  encoderId: number;
  type: number;
  typeId: number;
  typeName: string;
  /** 1 connected, 2 disconnected, 3 unknown */
  connection: number;
  mmWidth: number;
  mmHeight: number;
  subpixel: number;
  modes: RawMode[];
  encoders: number[];
}

export interface RawPlane {
  id: number;
  crtcId: number;
  fbId: number;
  possibleCrtcs: number;
  gammaSize: number;
  /** the legacy format list (no modifiers): IN_FORMATS is the full answer */
  formats: number[];
}

export interface RawPropertyValue {
  id: number;
  value: bigint;
}

export interface RawProperty {
  id: number;
  name: string;
  flags: number;
  values: bigint[];
  enums: Array<{ name: string; value: bigint }>;
  blobs: number[];
}

export interface RawAddFB2 {
  width: number;
  height: number;
  format: number;
  flags?: number;
  handles: number[];
  pitches: number[];
  offsets: number[];
  modifiers?: bigint[];
}

export interface RawDrmEvent {
  /** DRM_EVENT_VBLANK 1, DRM_EVENT_FLIP_COMPLETE 2, DRM_EVENT_CRTC_SEQUENCE 3 */
  type: number;
  userData?: bigint;
  tvSec?: number;
  tvUsec?: number;
  sequence?: number | bigint;
  crtcId?: number;
  timeNs?: bigint;
}

/** A libuv poll handle on an fd; the callback runs on the JS thread. Does not own the fd. */
export interface RawFdWatch {
  stop(): void;
  ref(): void;
  unref(): void;
  readonly active: boolean;
}

export interface DrmNative {
  drmOpenPath(path: string): number;
  drmGetVersion(fd: number): RawDrmVersion;
  drmGetCap(fd: number, cap: number): bigint;
  drmSetClientCap(fd: number, cap: number, value: bigint | number): void;
  drmNodeType(fd: number): 'primary' | 'control' | 'render';
  drmFstatRdev(fd: number): bigint;
  drmIsMaster(fd: number): boolean;
  drmGetResources(fd: number): RawResources;
  drmGetPlaneResources(fd: number): number[];
  drmGetCrtc(fd: number, crtcId: number): RawCrtc;
  drmGetEncoder(fd: number, encoderId: number): RawEncoder;
  drmGetConnector(fd: number, connectorId: number, probe?: boolean): RawConnector;
  drmGetPlane(fd: number, planeId: number): RawPlane;
  drmGetObjectProperties(fd: number, objectId: number, objectType: number): RawPropertyValue[];
  drmGetProperty(fd: number, propertyId: number): RawProperty;
  drmGetPropertyBlob(fd: number, blobId: number): Buffer;
  drmCreatePropertyBlob(fd: number, data: Uint8Array): number;
  drmDestroyPropertyBlob(fd: number, blobId: number): void;
  drmPrimeFdToHandle(fd: number, dmabufFd: number): number;
  drmPrimeHandleToFd(fd: number, handle: number, writable?: boolean): number;
  drmGemClose(fd: number, handle: number): void;
  drmAddFB2(fd: number, fb: RawAddFB2): number;
  drmAddFB(fd: number, width: number, height: number, pitch: number, bpp: number, depth: number, handle: number): number;
  drmRmFB(fd: number, fbId: number): void;
  /** DRM_IOCTL_MODE_CLOSEFB (Linux 6.8+): like RmFB, but planes showing it keep showing it. */
  drmCloseFB(fd: number, fbId: number): void;
  /** Returns the sync_file fds the kernel wrote into the fence slots (-1 where none). */
  drmAtomicCommit(
    fd: number,
    objects: Uint32Array,
    props: Uint32Array,
    values: BigUint64Array,
    /** indices of the fence-pointer properties (undefined: none) */
    fenceSlots: number[] | undefined,
    flags: number,
    userData?: bigint,
  ): number[];
  /** Reads and decodes the pending events; call when the fd polls readable. */
  drmReadEvents(fd: number): RawDrmEvent[];
  FdWatch: new (fd: number, writable: boolean, callback: (status: number, events: number) => void) => RawFdWatch;
}
