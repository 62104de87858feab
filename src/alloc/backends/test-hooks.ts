/**
 * Fault injection for tests only: not exported from any index, never set by src/. A hook set
 * here runs inside an allocator (allocators.ts `settle`) at the step named, and what it throws
 * takes the path a real failure at that step would take, so a test can prove that path closes
 * everything the allocator had made (test/vkms/alloc.test.ts).
 */
export const allocTestHooks: {
  /**
   * Runs after the backend made the buffer's dma-buf (and what keeps its memory alive: a dumb
   * buffer, a GBM bo) and before the backing takes ownership of them; `allocator` is the caps name.
   */
  afterDmabuf?: (allocator: string) => void;
} = {};
