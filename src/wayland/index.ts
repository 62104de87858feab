/**
 * The Wayland protocol layer: the libwayland-server bridge (WaylandServer, its resources and
 * clients), the client connection, generated protocol typings and enums, the linux-dmabuf global
 * with its feedback, the kms format helper, the minimal shell and primebuf's own wl_shm.
 */
export { WaylandServer, ServerResource, ServerClient, WL_SHM_ERROR, isShmTruncated } from './server.js';
export type { ServerGlobal, WaylandServerOptions } from './server.js';
export { WaylandConnection, WaylandProxy } from './client.js';
export type { GlobalInfo } from './client.js';
export { ProtocolError, ConnectionError } from './errors.js';
export type * from './types.js';
export { interfaces as protocolInterfaces } from '../generated/protocols.js';
export { LinuxDmabuf, LinuxDmabufBuffer, LINUX_DMABUF_VERSION } from './linux-dmabuf.js';
export { BufferLifetime } from './buffer-lifetime.js';
export { DirectLane, type DirectLaneArm, type DirectLaneHandback } from './direct-lane.js';
export type { LinuxDmabufOptions, BufferVerdict, KmsScanoutSource } from './linux-dmabuf.js';
export {
  FeedbackCache,
  type FormatTable,
  TRANCHE_FLAGS,
  type Tranche,
  type FeedbackSpec,
  type CompiledFeedback,
} from './dmabuf-feedback.js';
export { installMinimalShell, type MinimalShellOptions } from './minimal-shell.js';
export { kmsFormats, shmDefaults, type KmsFormats, type ShmModelDefaults } from './kms-formats.js';
export * from './shm.js';
export { sealedMemfd, SEALED_MEMFD_SEALS } from './sealed-memfd.js';
