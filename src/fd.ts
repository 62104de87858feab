/**
 * OwnedFd: the single owner of one file descriptor (a dma-buf plane fd received from a client,
 * a DRM device fd, a sync_file, a memfd). Closing it closes the fd exactly once.
 */
import { native } from './native.js';
import { Resource } from './resource.js';

export class OwnedFd extends Resource {
  readonly #fd: number;

  /** Takes ownership of `fd`: from now on only this object closes it. */
  constructor(fd: number, what = `fd ${fd}`) {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`OwnedFd: ${fd} is not a file descriptor`);
    super(what, () => native.closeFd(fd));
    this.#fd = fd;
  }

  /** The raw fd number; valid only while this object is open. */
  get fd(): number {
    this.assertOpen();
    return this.#fd;
  }

  /** A second owner of the same open file (F_DUPFD_CLOEXEC). */
  dup(what = `${this.what} (dup)`): OwnedFd {
    return new OwnedFd(native.dupFd(this.fd), what);
  }

  /** Gives up ownership without closing: the caller now owns the returned fd. */
  release(): number {
    const fd = this.fd;
    this.detach();
    return fd;
  }
}
