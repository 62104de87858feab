// Conformance: framebuffer inputs the kernel rejects (after IGT's kms_addfb_basic) give typed
// SystemErrors carrying the kernel's errno, and leave no framebuffer, GEM handle or fd behind;
// the accepted forms (implicit modifier without the flag, LINEAR with it) work, and a
// framebuffer keeps its GEM handle alive after the caller closed its own reference.
import t from 'tap';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { SystemError } from '../../src/errors.js';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { DRM_MODE_FB_MODIFIERS, Framebuffer } from '../../src/kms/framebuffer.js';
import { FramebufferCache } from '../../src/kms/fb-cache.js';
import { native } from '../../src/native.js';
import type { RawAddFB2 } from '../../src/native/drm.js';
import { openDriver } from './devices-util.js';
import { assertBack, kernelFramebuffers, leakFree, snapshot } from './leak.js';
import { PropertyBlob } from '../../src/kms/blob.js';
import { liveFramebufferCount } from '../../src/kms/framebuffer.js';
import { liveGemHandleCount } from '../../src/kms/gem.js';

const XR24 = fourcc('XRGB8888');
const X_TILED = 0x0100000000000001n; // I915_FORMAT_MOD_X_TILED: vkms supports LINEAR only

const before = snapshot();
const dev = openDriver('vkms');
const W = 1024;
const H = 768;
const buf = DumbBuffer.create(dev, { width: W, height: H, bpp: 32 });
const h = buf.handle.handle;
const P = buf.pitch;

function base(over: Partial<RawAddFB2> = {}): RawAddFB2 {
  return { width: W, height: H, format: XR24, flags: 0, handles: [h], pitches: [P], offsets: [0], ...over };
}

function rejects(t: Parameters<Parameters<typeof leakFree>[2]>[0], raw: RawAddFB2, errno: string, what: string): void {
  let err: unknown;
  try {
    const fb = Framebuffer.createRaw(dev, raw);
    fb.close(); // accepted after all: remove it so the failure below does not also leak
    t.fail(`${what} is refused (the kernel accepted it as fb ${fb.id})`);
    return;
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof SystemError, `${what}: a SystemError`);
  if (!(err instanceof SystemError)) return;
  t.equal(err.code, errno, `${what}: ${errno}`);
  t.equal(err.syscall, 'DRM_IOCTL_MODE_ADDFB2');
  t.match(err.message, /fb \d+x\d+/, `${what}: the message names the framebuffer`);
}

t.test('the base description is valid (implicit and LINEAR with the flag)', async (t) => {
  const s = snapshot();
  t.ok(dev.getCap('ADDFB2_MODIFIERS') === 1n, 'vkms supports modifiers');
  const a = Framebuffer.createRaw(dev, base());
  const b = Framebuffer.createRaw(dev, base({ flags: DRM_MODE_FB_MODIFIERS, modifiers: [DRM_FORMAT_MOD_LINEAR] }));
  t.ok(a.id > 0 && b.id > 0 && a.id !== b.id);
  a.close();
  b.close();
  assertBack(t, s);
});

leakFree(t, 'pitch 0 and pitch below the minimum: EINVAL', async (t) => {
  rejects(t, base({ pitches: [0] }), 'EINVAL', 'pitch 0');
  rejects(t, base({ pitches: [W * 4 - 1] }), 'EINVAL', 'pitch one below width*cpp');
  rejects(t, base({ pitches: [W * 2] }), 'EINVAL', 'pitch half the minimum');
});

leakFree(t, 'buffer too small: EINVAL', async (t) => {
  rejects(t, base({ height: H + 1 }), 'EINVAL', 'one line more than the buffer holds');
  rejects(t, base({ pitches: [P * 2] }), 'EINVAL', 'a pitch the buffer cannot hold');
  rejects(t, base({ offsets: [P] }), 'EINVAL', 'an offset pushing the last line out');
});

leakFree(t, 'unused plane with handle, pitch, offset or modifier set: EINVAL', async (t) => {
  const M = { flags: DRM_MODE_FB_MODIFIERS, modifiers: [DRM_FORMAT_MOD_LINEAR] };
  rejects(t, base({ ...M, handles: [h, h] }), 'EINVAL', 'handle on unused plane 1');
  rejects(t, base({ ...M, pitches: [P, P] }), 'EINVAL', 'pitch on unused plane 1');
  rejects(t, base({ ...M, offsets: [0, 4096] }), 'EINVAL', 'offset on unused plane 1');
  rejects(t, base({ flags: DRM_MODE_FB_MODIFIERS, modifiers: [DRM_FORMAT_MOD_LINEAR, X_TILED] }), 'EINVAL', 'modifier on unused plane 1');
  rejects(t, base({ flags: 0, modifiers: [0n, X_TILED] }), 'EINVAL', 'modifier on unused plane 1 without the flag');
  // Without DRM_MODE_FB_MODIFIERS the kernel ignores stale handle/pitch/offset of unused planes
  // (pre-modifier userspace did not clear them): accepted, as drm_framebuffer.c documents.
  const legacy = Framebuffer.createRaw(dev, base({ handles: [h, h], pitches: [P, P], offsets: [0, 4096] }));
  t.ok(legacy.id > 0, 'without the flag, stale unused-plane fields are tolerated');
  legacy.close();
});

leakFree(t, 'a modifier without the flag, an unsupported modifier, unknown flags: EINVAL', async (t) => {
  rejects(t, base({ flags: 0, modifiers: [X_TILED] }), 'EINVAL', 'modifier without DRM_MODE_FB_MODIFIERS');
  rejects(t, base({ flags: DRM_MODE_FB_MODIFIERS, modifiers: [X_TILED] }), 'EINVAL', 'a modifier no plane supports');
  rejects(t, base({ flags: 1 << 7 }), 'EINVAL', 'an unknown flag');
});

leakFree(t, 'unknown format and format no plane supports: EINVAL', async (t) => {
  rejects(t, base({ format: 0x20202020 }), 'EINVAL', 'unknown fourcc "    "');
  rejects(t, base({ format: fourcc('NV12'), handles: [h, h], pitches: [P, P], offsets: [0, P * H] }), 'EINVAL', 'NV12 on vkms');
});

leakFree(t, 'width or height 0 or above the maximum: EINVAL', async (t) => {
  const r = native.drmGetResources(dev.fd);
  rejects(t, base({ width: 0 }), 'EINVAL', 'width 0');
  rejects(t, base({ height: 0 }), 'EINVAL', 'height 0');
  rejects(t, base({ width: r.maxWidth + 1, pitches: [(r.maxWidth + 1) * 4] }), 'EINVAL', `width ${r.maxWidth + 1}`);
  rejects(t, base({ height: r.maxHeight + 1 }), 'EINVAL', `height ${r.maxHeight + 1}`);
});

leakFree(t, 'missing or unknown handle: EINVAL / ENOENT; pitch*height above 4 GiB: ERANGE', async (t) => {
  rejects(t, base({ handles: [0] }), 'EINVAL', 'handle 0');
  rejects(t, base({ handles: [0xfffff] }), 'ENOENT', 'a handle that does not exist');
  rejects(t, base({ height: 4096, pitches: [0x100000] }), 'ERANGE', 'height*pitch above UINT_MAX');
});

leakFree(t, 'Framebuffer.create: implicit modifier goes without the flag; the fb owns a handle reference', async (t) => {
  const ref = buf.handle.ref();
  t.equal(ref.refCount, 2);
  const implicit = Framebuffer.create(dev, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_INVALID, planes: [{ handle: ref, pitch: P }] });
  t.equal(implicit.via, 'addfb2');
  const linear = Framebuffer.create(dev, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: ref, pitch: P }] });
  t.equal(linear.via, 'addfb2-modifiers');
  t.equal(dev.gemHandleRefs(h), 4, 'two framebuffers + two callers');
  ref.close();
  t.equal(dev.gemHandleRefs(h), 3, 'the framebuffers keep theirs');
  const e = t.throws(() =>
    Framebuffer.create(dev, { width: W, height: H, format: XR24, modifier: X_TILED, planes: [{ handle: buf.handle, pitch: P }] }),
  ) as SystemError;
  t.equal(e.code, 'EINVAL');
  t.equal(dev.gemHandleRefs(h), 3, 'a failed create gives its reference back');
  implicit.close();
  linear.close();
  linear.close();
  t.equal(dev.gemHandleRefs(h), 1);
});

leakFree(t, 'legacy AddFB works on vkms (the fallback path) and RmFB removes it', async (t) => {
  const id = native.drmAddFB(dev.fd, W, H, P, 32, 24, h);
  t.ok(id > 0);
  native.drmRmFB(dev.fd, id);
  const e = t.throws(() => native.drmRmFB(dev.fd, id)) as SystemError;
  t.equal(e.code, 'ENOENT', 'removed exactly once');
});

leakFree(t, 'FramebufferCache: one framebuffer per buffer and layout, refusals remembered', async (t) => {
  const cache = new FramebufferCache(dev);
  const key = {};
  const desc = { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: buf.handle, pitch: P }] };
  const a = cache.get(key, desc);
  t.ok(a.ok, 'made');
  const b = cache.get(key, desc);
  t.equal(b, a, 'the cached framebuffer');
  const bad = {};
  const r1 = cache.get(bad, { ...desc, modifier: X_TILED });
  t.equal(r1.ok, false, 'X_TILED refused by vkms');
  t.equal(cache.get(bad, { ...desc, modifier: X_TILED }), r1, 'the refusal is remembered, not retried');
  t.equal(dev.gemHandleRefs(h), 2, 'the one framebuffer holds one reference');
  cache.close();
  t.equal(dev.gemHandleRefs(h), 1);
});

t.test('Device.close() closes what the device owns: framebuffers, blobs, GEM handles, then the fd', async (t) => {
  const s = snapshot();
  const d2 = openDriver('vkms');
  const dumb = DumbBuffer.create(d2, { width: 64, height: 64, bpp: 32 });
  const fb = Framebuffer.create(d2, { width: 64, height: 64, format: XR24, modifier: DRM_FORMAT_MOD_INVALID, planes: [{ handle: dumb.handle, pitch: dumb.pitch }] });
  const blob = PropertyBlob.create(d2, new Uint8Array(16));
  const dma = dumb.exportDmabuf();
  const again = d2.importDmabuf(dma);
  dma.close();
  t.equal(again.handle, dumb.handle.handle, 'the re-import is the same GEM handle');
  t.equal(d2.gemHandleRefs(again.handle), 3, 'dumb buffer, framebuffer and re-import hold it');
  t.ok(Object.values(kernelFramebuffers()).some((ids) => ids.includes(fb.id)), 'the kernel lists the framebuffer');
  d2.close();
  t.ok(fb.closed, 'the framebuffer is closed with its device');
  t.ok(blob.closed, 'the blob is closed with its device');
  t.ok(again.closed, 'the imported GEM handle reference is closed');
  t.ok(dumb.handle.closed, 'the dumb buffer\'s GEM handle reference is closed');
  t.equal(liveFramebufferCount(), s.framebuffers, 'live framebuffer count back');
  t.equal(liveGemHandleCount(), s.gemHandles, 'live GEM handle count back');
  t.doesNotThrow(() => {
    fb.close();
    blob.close();
    again.close();
    dumb.close();
  }, 'closing the children again is a no-op');
  assertBack(t, s);
});

t.test('closing the device leaves nothing behind', async (t) => {
  buf.close();
  t.equal(dev.gemHandleCount, 0);
  dev.close();
  assertBack(t, before);
});
