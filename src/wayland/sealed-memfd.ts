/**
 * Read-only data shared with every client through one fd: a memfd holding the bytes, sealed
 * against shrink, grow, write and further seals (the linux-dmabuf format table, a wl_keyboard
 * keymap). A client may map it (MAP_PRIVATE, or MAP_SHARED read-only) but cannot change what
 * another client reads from it.
 */
import { OwnedFd } from '../fd.js';
import { native } from '../native.js';

/** F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE: the seals sealedMemfd sets. */
export const SEALED_MEMFD_SEALS = 0x1 | 0x2 | 0x4 | 0x8;

/** A memfd holding `bytes`, sealed with SEALED_MEMFD_SEALS; the caller owns (and closes) it. */
export function sealedMemfd(name: string, bytes: Uint8Array, what = name): OwnedFd {
  return new OwnedFd(native.wlSealedMemfd(name, bytes), what);
}
