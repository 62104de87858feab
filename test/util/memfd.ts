/**
 * A plain memfd of `size` bytes (no sealing), owned: the dma-buf or shm stand-in of tests.
 * Built from the allocator's memfd natives, so tests need no memfd function of their own.
 */
import { OwnedFd } from '../../src/fd.js';
import { native } from '../../src/native.js';

export function plainMemfd(name: string, size: number): OwnedFd {
  const fd = new OwnedFd(native.memfdCreate(name, false));
  try {
    native.ftruncateFd(fd.fd, size);
  } catch (err) {
    fd.close();
    throw err;
  }
  return fd;
}
