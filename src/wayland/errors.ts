/** Errors of the Wayland area. */
import { PrimebufError } from '../errors.js';
import { interfaces } from '../generated/protocols.js';

/** The name of error `code` of `iface` (its `error` enum, or wl_display's for generic errors). */
export function protocolErrorName(iface: string, code: number): string {
  const own = interfaces[iface]?.enums['error']?.entries;
  for (const [name, value] of Object.entries(own ?? {})) if (value === code) return name;
  return `${code}`;
}

/** A fatal protocol error seen by a client: which interface, which object, which code. */
export class ProtocolError extends PrimebufError {
  override name = 'ProtocolError';
  readonly code: number;
  readonly codeName: string;
  readonly interface: string;
  readonly objectId: number;
  constructor(iface: string, objectId: number, code: number) {
    const codeName = protocolErrorName(iface, code);
    super(`protocol error on ${iface}@${objectId}: ${codeName} (${code})`);
    this.interface = iface;
    this.objectId = objectId;
    this.code = code;
    this.codeName = codeName;
  }
}

/** The connection to the compositor failed or was closed (not a protocol error). */
export class ConnectionError extends PrimebufError {
  override name = 'ConnectionError';
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
  }
}
