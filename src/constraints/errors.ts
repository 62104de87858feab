/**
 * Typed errors of the constraint and allocation layer. A merge conflict is a value
 * (MergeResult); these errors are for operations that cannot go on: allocating a request
 * whose constraints conflict, or attaching a device a buffer that already exists cannot serve.
 */
import { PrimebufError } from '../errors.js';
import { formatName } from '../formats/index.js';
import { modifierLabel, type Reason } from './types.js';

/** A reason as JSON: format and modifier by name, modifier also in hex. */
export function reasonToJSON(r: Reason): Record<string, unknown> {
  const out: Record<string, unknown> = { code: r.code, device: r.device, usage: r.usage };
  if (r.plane !== undefined) out.plane = r.plane;
  if (r.format !== undefined) out.format = formatName(r.format);
  if (r.modifier !== undefined) {
    out.modifier = modifierLabel(r.modifier);
    out.modifierHex = `0x${r.modifier.toString(16).padStart(16, '0')}`;
  }
  out.detail = r.detail;
  return out;
}

/** The constraints of a request conflict, or no allocator can serve them. */
export class ConstraintConflictError extends PrimebufError {
  override name = 'ConstraintConflictError';
  readonly code: string = 'ERR_PRIMEBUF_CONSTRAINTS';
  constructor(
    message: string,
    readonly reasons: readonly Reason[],
  ) {
    super(reasons.length > 0 ? `${message}: ${[...new Set(reasons.map((r) => r.detail))].join('; ')}` : message);
  }
}

/**
 * A device was attached to a buffer that already exists and cannot serve it (EBUSY, as in the
 * kernel's "the buffer is in use"), and the owner did not allow re-allocation.
 */
export class BufferBusyError extends ConstraintConflictError {
  override name = 'BufferBusyError';
  override readonly code = 'EBUSY';
  readonly errno = 16;
}
