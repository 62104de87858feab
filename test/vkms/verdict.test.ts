// Conformance: scanout verdicts against the real vkms kernel. Static refusals carry their
// reason codes (format outside IN_FORMATS, scaling, placement); LINEAR XRGB8888 buffers from
// vgem and udmabuf pass AddFB2 and TEST_ONLY on the primary and an overlay; the implicit
// modifier follows the policy (vkms's own buffer yes, vgem's no); a buffer AddFB2 refuses is
// remembered in the known-bad table; bad placements are verdicts, not exceptions; a second
// check does no import, AddFB2 or TEST_ONLY. Every subtest returns fds, GEM handles and
// framebuffers (primebuf's and the kernel's debugfs list) to baseline.
import t from 'tap';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { UdmabufAllocator } from '../../src/alloc/backends/udmabuf.js';
import { explain } from '../../src/cli/explain.js';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { Framebuffer } from '../../src/kms/framebuffer.js';
import { preferredMode, readResources } from '../../src/kms/resources.js';
import { liveRenderNodeConstraint } from '../../src/constraints/egl.js';
import {
  KmsScanoutKernel,
  checkTexture,
  ScanoutChecker,
  findPlane,
  scanoutDeviceFromLive,
  rotationMask,
  ROTATE_0,
  type ScanoutBuffer,
} from '../../src/scanout/index.js';
import { findDriver, openDriver } from './devices-util.js';
import { leakFree } from './leak.js';

const XR24 = fourcc('XRGB8888');

leakFree(t, 'verdicts on vkms: refusals with their codes, LINEAR buffers accepted by TEST_ONLY, the cache', async (t) => {
  const vkms = openDriver('vkms');
  const vgem = openDriver('vgem');
  const model = scanoutDeviceFromLive(vkms);
  const res = readResources(vkms, { probe: true });
  const virt = res.connectors.find((c) => !c.writeback)!;
  const mode = preferredMode(virt)!;
  t.ok(mode, `Virtual-1 has a mode (${mode.name})`);
  const W = mode.hdisplay;
  const H = mode.vdisplay;
  const crtc = res.crtcs[0]!.id;
  const primary = findPlane(model, 'primary', crtc)!;
  const overlay = findPlane(model, 'overlay', crtc)!;
  const livePrimary = res.planes.find((p) => p.id === primary.id)!;
  t.equal(primary.rotations, rotationMask(livePrimary.properties.get('rotation')!.enums!.map((e) => e.name)) | ROTATE_0, 'rotation offer read from the plane property');
  t.equal(primary.scaling, false, 'vkms planes do not scale');
  t.equal(model.devId, vkms.devId);

  // the compositor's black background on the primary, for overlay tests
  const bg = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
  const bgFb = Framebuffer.create(vkms, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: bg.handle, pitch: bg.pitch }] });
  const kernel = new KmsScanoutKernel(vkms, { crtcId: crtc, connectorId: virt.id, mode, background: { planeId: primary.id, fb: bgFb } });
  const checker = new ScanoutChecker(model, { kernel, mode: { width: W, height: H } });

  // sources: a vgem dumb buffer of the mode's size, a 256x256 udmabuf, a vkms dumb buffer
  const vgemDumb = DumbBuffer.create(vgem, { width: W, height: H, bpp: 32 });
  const vgemDmabuf = vgemDumb.exportDmabuf();
  const udmabuf = UdmabufAllocator.open();
  const ud = udmabuf.allocate(256 * 4 * 256);
  const own = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
  const ownDmabuf = own.exportDmabuf();
  const fromVgem: ScanoutBuffer = { kind: 'dmabuf', width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: vgemDmabuf.fd, offset: 0, stride: vgemDumb.pitch }], allocatedOn: vgem.devId, name: 'vgem dumb' };
  const fromUdmabuf: ScanoutBuffer = { kind: 'dmabuf', width: 256, height: 256, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: ud.fd, offset: 0, stride: 1024 }], name: 'udmabuf' };

  // accepted: vgem LINEAR XRGB8888 mode-size on the primary, TEST_ONLY agrees
  const ok = checker.checkScanout(fromVgem, primary.id, { crtc });
  t.same(ok.reasons, [], 'vgem LINEAR XRGB8888 mode-size buffer: no reason');
  t.ok(ok.ok, 'it would scan out on the primary');
  t.equal(ok.stage, 'kernel', 'the kernel was asked');
  t.same(checker.kernelCounts, { imports: 1, addfb2: 1, testOnly: 1 }, 'one import, one AddFB2, one TEST_ONLY');
  const again = checker.checkScanout(fromVgem, primary.id, { crtc });
  t.equal(again, ok, 'cached verdict');
  t.same(checker.kernelCounts, { imports: 1, addfb2: 1, testOnly: 1 }, 'the second call did no import, AddFB2 or TEST_ONLY');
  const onOverlay = checker.checkScanout(fromUdmabuf, overlay.id, { crtc, dst: { x: 100, y: 50, width: 256, height: 256 } });
  t.ok(onOverlay.ok, `udmabuf 256x256 on overlay ${overlay.id} above the black background: ${onOverlay.reasons.map((r) => r.detail).join('; ')}`);
  t.equal(onOverlay.stage, 'kernel');
  const clipped = checker.checkScanout(fromUdmabuf, overlay.id, { crtc, dst: { x: W - 100, y: H - 56, width: 256, height: 256 }, clip: true });
  t.ok(clipped.ok, 'partly off-screen with clipping: TEST_ONLY accepts the clipped rectangles');
  t.same(clipped.placement?.dst, { x: W - 100, y: H - 56, width: 100, height: 56 });
  const rot = checker.checkScanout(fromUdmabuf, overlay.id, { crtc, dst: { x: 0, y: 0, width: 256, height: 256 }, rotation: 180, reflectX: true });
  t.ok(rot.ok, `rotate-180|reflect-x on vkms: ${rot.reasons.map((r) => r.detail).join('; ')}`);

  // static refusals with their codes: no kernel call
  const before = checker.kernelCounts;
  const xbgr = checker.checkScanout({ ...fromVgem, format: fourcc('XBGR8888') }, primary.id, { crtc });
  t.same(xbgr.reasons.map((r) => r.code), ['FORMAT'], 'XBGR8888 is outside IN_FORMATS');
  t.equal(xbgr.reasons[0]!.fixable, true, 'a client could re-allocate');
  const scaled = checker.checkScanout(fromUdmabuf, primary.id, { crtc, dst: { x: 0, y: 0, width: W, height: H } });
  t.same(scaled.reasons.map((r) => r.code), ['SCALING'], '256x256 stretched to the mode needs scaling vkms lacks');
  t.equal(scaled.reasons[0]!.fixable, false, 're-allocation could not fix scaling');
  const partly = checker.checkScanout(fromUdmabuf, overlay.id, { crtc, dst: { x: W - 100, y: 0, width: 256, height: 256 } });
  t.same(partly.reasons.map((r) => r.code), ['PLACEMENT'], 'partly off-screen without clipping: refused');
  t.same(checker.checkScanout(fromUdmabuf, overlay.id, { crtc, dst: { x: W + 10, y: 0, width: 256, height: 256 } }).reasons.map((r) => r.code), ['PLACEMENT'], 'off-screen: a verdict');
  t.same(checker.checkScanout(fromUdmabuf, overlay.id, { crtc, dst: { x: 0, y: 0, width: 0, height: 0 } }).reasons.map((r) => r.code), ['PLACEMENT'], 'zero size: a verdict');
  t.same(checker.checkScanout(fromUdmabuf, 424242, { crtc }).reasons.map((r) => r.code), ['NO_PLANE'], 'unknown plane: a verdict');
  t.same(checker.kernelCounts, before, 'static refusals asked the kernel nothing');

  // the implicit modifier: vkms's own buffer yes (AddFB2 without modifiers), vgem's no
  const ownImplicit: ScanoutBuffer = { kind: 'dmabuf', width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_INVALID, planes: [{ fd: ownDmabuf.fd, offset: 0, stride: own.pitch }], allocatedOn: vkms.devId, name: 'vkms dumb, implicit' };
  const impl = checker.checkScanout(ownImplicit, primary.id, { crtc });
  t.ok(impl.ok, `implicit modifier, allocated on vkms: AddFB2 without modifiers and TEST_ONLY accept it ${impl.reasons.map((r) => r.detail).join('; ')}`);
  const vgemImplicit = checker.checkScanout({ ...fromVgem, modifier: DRM_FORMAT_MOD_INVALID }, primary.id, { crtc });
  t.same(vgemImplicit.reasons.map((r) => r.code), ['IMPLICIT_MODIFIER'], 'implicit modifier from vgem: refused by policy');

  // AddFB2 refuses what the static checks cannot see (the object is smaller than offset + pitch * height)
  const n = checker.kernelCounts.addfb2;
  const tooSmall: ScanoutBuffer = { ...fromUdmabuf, planes: [{ fd: ud.fd, offset: 4096, stride: 1024 }], name: 'udmabuf at offset 4096' };
  const refused = checker.checkScanout(tooSmall, overlay.id, { crtc, dst: { x: 0, y: 0, width: 256, height: 256 } });
  t.same(refused.reasons.map((r) => [r.code, r.errno]), [['ADDFB2', 'EINVAL']], 'AddFB2 refusal with its errno');
  t.equal(checker.kernelCounts.addfb2, n + 1, 'one AddFB2');
  checker.checkScanout(tooSmall, overlay.id, { crtc, dst: { x: 0, y: 0, width: 256, height: 256 } });
  t.equal(checker.kernelCounts.addfb2, n + 1, 'the refusal is remembered, not retried');
  t.ok(checker.knownBad.has(XR24, DRM_FORMAT_MOD_LINEAR, overlay.id), 'the known-bad table learnt the triple');
  t.match(checker.knownBad.get(XR24, DRM_FORMAT_MOD_LINEAR, overlay.id)!.taughtBy, /udmabuf at offset 4096/);

  // When primebuf does not know a plane cannot scale, TEST_ONLY has the last word
  const unknownScaling = { ...model, planes: model.planes.map((p) => ({ ...p, scaling: undefined })) };
  const kernel2 = new KmsScanoutKernel(vkms, { crtcId: crtc, connectorId: virt.id, mode, background: { planeId: primary.id, fb: bgFb } });
  const asKernel = new ScanoutChecker(unknownScaling, { kernel: kernel2, mode: { width: W, height: H } });
  const byKernel = asKernel.checkScanout(fromUdmabuf, overlay.id, { crtc, dst: { x: 0, y: 0, width: 512, height: 512 } });
  t.same(byKernel.reasons.map((r) => [r.code, r.errno]), [['TEST_ONLY', 'ERANGE']], 'vkms refuses scaling in TEST_ONLY (ERANGE)');
  t.same(asKernel.kernelCounts, { imports: 1, addfb2: 1, testOnly: 1 });
  t.equal(asKernel.knownBad.size, 0, 'a refused scaled window teaches the known-bad table nothing');
  asKernel.close();

  // The presenter's rest of the next state is part of the TEST_ONLY: a second overlay bound to
  // the CRTC without a framebuffer (an invalid state) makes the kernel refuse the whole frame
  const overlay2 = model.planes.filter((p) => p.type === 'overlay')[1]!;
  const kernel3 = new KmsScanoutKernel(vkms, {
    crtcId: crtc,
    connectorId: virt.id,
    mode,
    background: { planeId: primary.id, fb: bgFb },
    nextState: (req, under) => {
      if (under !== overlay2.id) req.set(overlay2.id, 'CRTC_ID', crtc).set(overlay2.id, 'FB_ID', 0);
    },
  });
  const withRest = new ScanoutChecker(model, { kernel: kernel3, mode: { width: W, height: H } });
  const whole = withRest.checkScanout(fromUdmabuf, overlay.id, { crtc, dst: { x: 0, y: 0, width: 256, height: 256 } });
  t.same(whole.reasons.map((r) => [r.code, r.errno]), [['TEST_ONLY', 'EINVAL']], 'the whole next state is tested, not only the plane');
  withRest.close();

  checker.forget(fromVgem);
  checker.close();
  for (const r of [bgFb, bg, vgemDmabuf, vgemDumb, ud, udmabuf, ownDmabuf, own]) r.close();
  vgem.close();
  vkms.close();
});

leakFree(t, 'primebuf explain on vkms: exit 0 for a scanout, 1 with the reasons otherwise', async (t) => {
  const card = findDriver('vkms');
  t.ok(card, 'vkms present');
  const device = card!.path;
  const okRun = explain({ device, plane: 'primary', format: 'XRGB8888', modifier: 'LINEAR', size: '1024x768' });
  t.equal(okRun.code, 0, `XRGB8888 LINEAR 1024x768 on the primary scans out\n${okRun.text}`);
  t.same(okRun.json.kernelCalls, { imports: 1, addfb2: 1, testOnly: 1 }, 'import, AddFB2 and TEST_ONLY ran');
  const bgr = explain({ device, plane: 'primary', format: 'XBGR8888', size: '1024x768' });
  t.equal(bgr.code, 1, 'XBGR8888: exit 1');
  t.same(bgr.verdict.reasons.map((r) => r.code), ['FORMAT']);
  const off = explain({ device, plane: 'overlay', format: 'XRGB8888', size: '512x512', at: '800,600' });
  t.same(off.verdict.reasons.map((r) => r.code), ['PLACEMENT'], 'partly off-screen overlay');
  const clip = explain({ device, plane: 'overlay', format: 'XRGB8888', size: '512x512', at: '800,600', clip: true });
  t.equal(clip.code, 0, `clipped: accepted\n${clip.text}`);
  const stride = explain({ device, plane: 'primary', format: 'XRGB8888', size: '1024x768', stride: 8192 });
  t.equal(stride.code, 0, 'a larger stride (8192) is fine');
  t.match(stride.text, /stride 8192/);
  const tiled = explain({ device, plane: 'primary', format: 'XRGB8888', modifier: 'I915_FORMAT_MOD_X_TILED', size: '1024x768' });
  t.same(tiled.verdict.reasons.map((r) => r.code), ['MODIFIER'], 'X_TILED: not on vkms');
  t.equal(tiled.code, 1);
});

leakFree(t, 'texture verdicts from the render node EGL describes (vgem renderD128, Mesa kms_swrast)', async (t) => {
  const node = findDriver('vgem', 'render');
  t.ok(node, 'vgem render node present');
  const live = await liveRenderNodeConstraint(node!.name, 'vgem', { path: node!.path });
  t.equal(live.from, 'egl', `the constraint comes from EGL's query (${live.constraint.source})`);
  const vgem = openDriver('vgem');
  const dumb = DumbBuffer.create(vgem, { width: 64, height: 64, bpp: 32 });
  const dmabuf = dumb.exportDmabuf();
  const b: ScanoutBuffer = { kind: 'dmabuf', width: 64, height: 64, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: dmabuf.fd, offset: 0, stride: dumb.pitch }] };
  t.same(checkTexture(b, live.constraint).reasons, [], 'LINEAR XRGB8888 from vgem is importable');
  const tiled = checkTexture({ ...b, modifier: 0x0100000000000001n }, live.constraint);
  t.same(tiled.reasons.map((r) => r.code), ['MODIFIER'], 'X_TILED is not (kms_swrast lists LINEAR/implicit only)');
  t.equal(tiled.reasons[0]!.fixable, true);
  for (const r of [dmabuf, dumb, vgem]) r.close();
});
