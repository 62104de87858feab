/**
 * Writeback capture: route a CRTC's output into a framebuffer through a writeback connector,
 * with the out-fence that signals when the capture is complete.
 */
import type { AtomicRequest, KmsRef } from './atomic.js';

/**
 * Adds a writeback capture to `req`: the connector on `crtc`, writing into `fb`, with an
 * out-fence (WRITEBACK_OUT_FENCE_PTR). The commit's `fences` holds the sync_file at the
 * position of this call among the request's outFence() calls.
 */
export function addWriteback(req: AtomicRequest, connector: KmsRef, crtc: KmsRef, fb: KmsRef): AtomicRequest {
  return req.set(connector, 'CRTC_ID', crtc).set(connector, 'WRITEBACK_FB_ID', fb).outFence(connector, 'WRITEBACK_OUT_FENCE_PTR');
}
