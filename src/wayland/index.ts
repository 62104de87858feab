export { WaylandServer, ServerResource, ServerClient, WL_DISPLAY_ERROR, requestNames } from './server.js';
export type { ServerGlobal, WaylandServerOptions } from './server.js';
export { WaylandConnection, Proxy } from './client.js';
export type { GlobalInfo } from './client.js';
export { ProtocolError, ConnectionError, protocolErrorName } from './errors.js';
export type * from './types.js';
export { interfaces as protocolInterfaces, enums as protocolEnums } from '../generated/protocols.js';
