/**
 * The client helper: read linux-dmabuf feedback (default and per surface), pick a format and
 * modifier for a size (scanout tranche first, then the main device's), allocate through
 * primebuf's allocators on a device the tranche targets, wrap the buffers in wl_buffers and keep
 * a ring of them that honours wl_buffer.release and follows feedback changes.
 */
export { ClientDmabuf, FeedbackWatch, type DmabufFeedback, type FeedbackTranche } from './feedback.js';
export { pickFormat, type Pick, type PickRequest, type PickReason, type PickReasonCode } from './pick.js';
export {
  BufferRing,
  RingBuffer,
  clientAllocators,
  type ClientAllocator,
  type BufferRingOptions,
  type ClientReallocationEvent,
  type RingBufferState,
} from './buffers.js';
