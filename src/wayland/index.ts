export { WaylandServer, ServerResource, ServerClient, WL_DISPLAY_ERROR, WL_SHM_ERROR, isShmTruncated, requestNames } from './server.js';
export type { ServerGlobal, WaylandServerOptions } from './server.js';
export { WaylandConnection, WaylandProxy } from './client.js';
export type { GlobalInfo } from './client.js';
export { ProtocolError, ConnectionError, protocolErrorName } from './errors.js';
export type * from './types.js';
export { interfaces as protocolInterfaces, enums as protocolEnums } from '../generated/protocols.js';
export { LinuxDmabuf, LinuxDmabufBuffer, LINUX_DMABUF_VERSION } from './linux-dmabuf.js';
export { BufferLifetime } from './buffer-lifetime.js';
export type { LinuxDmabufOptions, BufferVerdict, KmsScanoutSource } from './linux-dmabuf.js';
export {
  FeedbackCache,
  FormatTable,
  TRANCHE_FLAGS,
  normalizeTranches,
  devArray,
  readDevArray,
  parseFormatTable,
  type Tranche,
  type FeedbackSpec,
  type CompiledFeedback,
} from './dmabuf-feedback.js';
export { installMinimalShell, type MinimalShellOptions } from './minimal-shell.js';
export { kmsFormats, shmDefaults, type KmsFormats, type ShmModelDefaults } from './kms-formats.js';
export * from './shm.js';
