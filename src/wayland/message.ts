/**
 * Decoding one message as the native bridge delivers it (raw values by position) into named
 * arguments: shared by the server (requests) and the client (events), which differ only in how
 * object and new_id keys become their wrappers. Internal to src/wayland/.
 */
import { OwnedFd } from '../fd.js';
import type { ArgSpec, MessageSpec } from '../generated/protocols.js';

/**
 * Takes ownership of every fd among raw at once, so no path can leak one. Nothing is taken when
 * the message is unknown (msg undefined). iface names the receiving object in each fd's label.
 */
export function takeFds(msg: MessageSpec | undefined, raw: readonly unknown[], iface: string | undefined): readonly OwnedFd[] {
  // a plain loop and no array unless an fd came: this runs for every request of every frame
  let fds: OwnedFd[] | undefined;
  const args = msg?.args;
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i];
    if (args?.[i]?.type === 'fd' && typeof v === 'number') (fds ??= []).push(new OwnedFd(v, `fd received in ${iface}.${msg!.name}`));
  }
  return fds ?? NO_FDS;
}

const NO_FDS: readonly OwnedFd[] = Object.freeze([]);

/** The arguments of a message that has none (shared, frozen). */
const NO_ARGS: Record<string, unknown> = Object.freeze({});

/** How one side turns object and new_id keys into its wrappers. */
export interface KeyWrappers {
  /** A new_id argument's raw value (a key, or null where the bridge gives none). */
  newId(v: unknown, a: ArgSpec): unknown;
  /** A non-null object argument's key. */
  object(key: number): unknown;
}

/**
 * Names raw's values by msg's arguments: fds are takeFds' OwnedFds in order, a null object is
 * null, objects and new_ids go through wrap, everything else passes as it is.
 */
export function decodeArgs(msg: MessageSpec, raw: readonly unknown[], fds: readonly OwnedFd[], wrap: KeyWrappers): Record<string, unknown> {
  const specs = msg.args;
  if (specs.length === 0) return NO_ARGS; // wl_surface.commit, destroy requests: every frame
  let fdIndex = 0;
  const args: Record<string, unknown> = {};
  for (let i = 0; i < specs.length; i++) {
    const a = specs[i]!;
    const v = raw[i];
    switch (a.type) {
      case 'fd':
        args[a.name] = fds[fdIndex++];
        break;
      case 'new_id':
        args[a.name] = wrap.newId(v, a);
        break;
      case 'object':
        args[a.name] = v == null ? null : wrap.object(v as number);
        break;
      default:
        args[a.name] = v;
    }
  }
  return args;
}
