// Scanout verdicts on recorded devices (the vkms guest's fixture and the real devices of
// test/fixtures/devices): every static check with its reason code, the implicit-modifier
// policy, the verdict cache and known-bad table over a counting fake kernel, the tranche
// debounce, texture verdicts and plane assignment. No kernel needed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { SystemError } from '../../src/errors.js';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc, parseModifier } from '../../src/formats/index.js';
import { eglRenderNodeConstraint } from '../../src/constraints/egl.js';
import { renderNodeConstraint } from '../../src/constraints/device.js';
import { packageRoot } from '../../src/native.js';
import {
  KnownBadTable,
  ScanoutChecker,
  ScanoutTrancheDebounce,
  assignPlanes,
  checkTexture,
  findPlane,
  reallocationCouldHelp,
  scanoutDeviceFromDrmInfo,
  scanoutDevicesFromDevicesJSON,
  shmBuffer,
  staticScanoutChecks,
  REFLECT_X,
  REFLECT_Y,
  ROTATE_0,
  ROTATE_180,
  ROTATE_270,
  ROTATE_90,
  type KernelCounts,
  type KernelStep,
  type Placement,
  type ScanoutBuffer,
  type ScanoutDeviceInfo,
  type ScanoutKernel,
} from '../../src/scanout/index.js';
import { SCANOUT_REASON_CODES } from '../../src/scanout/reasons.js';

const fixture = (name: string): unknown => JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', name), 'utf8'));
const vkms = scanoutDevicesFromDevicesJSON(fixture('vkms-devices.json')).find((d) => d.driver === 'vkms')!;
const i915 = scanoutDeviceFromDrmInfo(fixture('devices/i915-kbl-8086-5927.json'));
const msm = scanoutDeviceFromDrmInfo(fixture('devices/msm-qcm2290-unoq.json'));
const hibmc = scanoutDeviceFromDrmInfo(fixture('devices/hibmc-hi171x-kunpeng.json'));

const XR24 = fourcc('XRGB8888');
const XB24 = fourcc('XBGR8888');
const NV12 = fourcc('NV12');
const Y_TILED = parseModifier('I915_FORMAT_MOD_Y_TILED');
const Y_TILED_CCS = parseModifier('I915_FORMAT_MOD_Y_TILED_CCS');
const QCOM_COMPRESSED = msm.planes[0]!.emptyModifiers[0]!; // advertised with no format
const MODE = { width: 1024, height: 768 };

function buf(width: number, height: number, opts: Partial<ScanoutBuffer> = {}): ScanoutBuffer {
  return { kind: 'dmabuf', width, height, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: -1, offset: 0, stride: width * 4 }], ...opts };
}

const crtc0 = (d: ScanoutDeviceInfo) => d.crtcs[0]!.id;
const primaryOf = (d: ScanoutDeviceInfo) => findPlane(d, 'primary', crtc0(d))!.id;
const overlayOf = (d: ScanoutDeviceInfo) => findPlane(d, 'overlay', crtc0(d))!.id;
const cursorOf = (d: ScanoutDeviceInfo) => findPlane(d, 'cursor', crtc0(d))!.id;

function codes(d: ScanoutDeviceInfo, b: ScanoutBuffer, plane: number, p: Partial<Placement> = {}, mode = MODE): string[] {
  return staticScanoutChecks(d, b, plane, { crtc: crtc0(d), ...p }, mode).reasons.map((r) => r.code);
}

t.test('device models from the fixtures: planes, rotation offers, scaling, CRTCs', async (t) => {
  t.ok(vkms, 'the vkms recording has a KMS device');
  t.equal(vkms.planes.length, 10, 'vkms: 1 primary, 8 overlays, 1 cursor');
  t.same(vkms.crtcs, [{ id: 62, index: 0 }], 'the recorded CRTC id');
  for (const p of vkms.planes) {
    t.equal(p.rotations, ROTATE_0 | ROTATE_90 | ROTATE_180 | ROTATE_270 | REFLECT_X | REFLECT_Y, `vkms plane ${p.id} offers every rotation and reflection`);
    t.equal(p.scaling, false, `vkms plane ${p.id} cannot scale`);
  }
  t.equal(findPlane(i915, 'cursor', 0)!.rotations, ROTATE_0 | ROTATE_180, 'i915 cursor: rotate-0 and rotate-180 only');
  t.equal(findPlane(i915, 'primary', 0)!.scaling, undefined, 'i915 primary: TEST_ONLY decides scaling');
  t.equal(findPlane(msm, 'primary', 0)!.rotations, ROTATE_0 | ROTATE_180 | REFLECT_X | REFLECT_Y, 'msm: no 90/270');
  t.equal(vkms.devId, 0xe200n, 'dev_t of the recorded card0 (226:0)');
});

t.test('vkms: a LINEAR XRGB8888 mode-size buffer passes every static check on the primary', async (t) => {
  const v = staticScanoutChecks(vkms, buf(1024, 768), primaryOf(vkms), { crtc: 62 }, MODE);
  t.same(v.reasons, []);
  t.same(v.placement, { crtc: 62, src: { x: 0, y: 0, width: 1024, height: 768 }, dst: { x: 0, y: 0, width: 1024, height: 768 }, rotation: ROTATE_0, clipped: false });
});

t.test('static refusals with their codes, each marked fixable or not', async (t) => {
  const P = primaryOf(vkms);
  t.same(codes(vkms, buf(1024, 768, { format: XB24 }), P), ['FORMAT'], 'XBGR8888 is not in vkms IN_FORMATS');
  t.same(codes(vkms, buf(1024, 768, { modifier: Y_TILED }), P), ['MODIFIER'], 'XRGB8888 only as LINEAR on vkms');
  t.same(codes(vkms, buf(800, 600), P, { dst: { x: 0, y: 0, width: 1024, height: 768 } }), ['SCALING'], 'vkms cannot scale 800x600 to the mode');
  t.same(codes(vkms, buf(512, 512), P, { dst: { x: 600, y: 400, width: 512, height: 512 } }), ['PLACEMENT'], 'partly off-screen is refused by default');
  t.same(codes(vkms, buf(512, 512), P, { dst: { x: 2000, y: 0, width: 512, height: 512 } }), ['PLACEMENT'], 'entirely off-screen');
  t.same(codes(vkms, buf(512, 512), P, { dst: { x: 0, y: 0, width: 0, height: 512 } }), ['PLACEMENT'], 'zero-sized destination');
  t.same(codes(vkms, buf(512, 512), P, { src: { x: 256, y: 0, width: 512, height: 512 } }), ['PLACEMENT'], 'source outside the buffer');
  t.same(codes(vkms, buf(1024, 768), 9999), ['NO_PLANE'], 'an unknown plane is a verdict, not an exception');
  t.same(codes(vkms, buf(1024, 768), P, { crtc: 4242 }), ['NO_PLANE'], 'an unknown CRTC too');
  t.same(codes(vkms, shmBuffer(1024, 768, XR24, 4096), P), ['NOT_DMABUF'], 'wl_shm is copied');
  t.same(codes(vkms, buf(9000, 64), P, { dst: { x: 0, y: 0, width: 9000, height: 64 }, clip: true }), ['SIZE'], 'wider than vkms max 8192');
  t.same(codes(vkms, buf(600, 600), cursorOf(vkms), { clip: true }), ['SIZE'], 'larger than the 512x512 cursor');
  t.same(codes(vkms, buf(1024, 768, { planes: [{ fd: -1, offset: 0, stride: 1024 }] }), P), ['LAYOUT'], 'pitch below 4 * width');
  t.same(codes({ ...vkms, pitchAlign: 256, offsetAlign: 4096 }, buf(1000, 768, { planes: [{ fd: -1, offset: 64, stride: 4000 }] }), P, { dst: { x: 0, y: 0, width: 1000, height: 768 } }), ['LAYOUT', 'LAYOUT'], 'declared pitch and offset alignment');
  t.same(codes(vkms, buf(1024, 768, { format: XB24, modifier: Y_TILED }), P, { dst: { x: 10, y: 10, width: 100, height: 100 } }), ['FORMAT', 'SCALING'], 'every reason is collected, not only the first');
  t.same(codes(msm, buf(1024, 768), primaryOf(msm), { rotation: 90, dst: { x: 0, y: 0, width: 768, height: 1024 } }, { width: 1920, height: 1080 }), ['ROTATION'], 'msm planes lack rotate-90');
  t.same(codes(i915, buf(64, 64, { format: fourcc('ARGB8888') }), cursorOf(i915), { rotation: 270 }), ['ROTATION'], 'i915 cursor lacks rotate-270');
  t.same(codes(i915, buf(64, 64, { format: fourcc('ARGB8888') }), cursorOf(i915), { rotation: 180 }), [], 'i915 cursor has rotate-180');
  t.same(codes(msm, buf(1024, 768), primaryOf(msm), { reflectX: true }), [], 'msm offers reflect-x');

  const fixable = Object.entries(SCANOUT_REASON_CODES).filter(([, f]) => f).map(([c]) => c).sort();
  t.same(fixable, ['ADDFB2', 'COMMIT', 'FORMAT', 'IMPLICIT_MODIFIER', 'IMPORT', 'LAYOUT', 'MODIFIER', 'PLANE_OFFSET', 'TEST_ONLY'], 'codes re-allocation could fix');
  const st = staticScanoutChecks(vkms, buf(1024, 768, { format: XB24 }), P, { crtc: 62 }, MODE);
  t.equal(st.reasons[0]!.fixable, true, 'FORMAT is fixable');
  t.equal(st.reasons[0]!.plane, P, 'the reason names the plane');
  t.equal(st.reasons[0]!.format, XB24, 'and the format');
  t.ok(reallocationCouldHelp({ ok: false, reasons: st.reasons, notes: [] }), 'a wrong format alone: re-allocation could help');
  const mixed = staticScanoutChecks(vkms, buf(800, 600, { format: XB24 }), P, { crtc: 62, dst: { x: 0, y: 0, width: 1024, height: 768 } }, MODE);
  t.notOk(reallocationCouldHelp({ ok: false, reasons: mixed.reasons, notes: [] }), 'with scaling too it could not');
});

t.test('rotation and clipping: sizes after rotation, the clipped rectangles', async (t) => {
  const P = primaryOf(vkms);
  const rot = staticScanoutChecks(vkms, buf(768, 1024), P, { crtc: 62, rotation: 90 }, MODE);
  t.same(rot.reasons, [], 'a 768x1024 buffer rotated 90 fills 1024x768 unscaled');
  t.same(rot.placement?.dst, { x: 0, y: 0, width: 1024, height: 768 }, 'the default destination is the rotated size');
  t.equal(rot.placement?.rotation, ROTATE_90);
  t.same(codes(vkms, buf(1024, 768), P, { rotation: 90, dst: { x: 0, y: 0, width: 1024, height: 768 } }), ['SCALING'], 'unrotated size on a 90-degree placement needs scaling');
  const clip = staticScanoutChecks(vkms, buf(512, 512), overlayOf(vkms), { crtc: 62, dst: { x: 768, y: -100, width: 512, height: 512 }, clip: true }, MODE);
  t.same(clip.reasons, [], 'clipping was asked for');
  t.same(clip.placement?.src, { x: 0, y: 100, width: 256, height: 412 }, 'source clipped by the same amounts');
  t.same(clip.placement?.dst, { x: 768, y: 0, width: 256, height: 412 }, 'destination clipped to the mode');
  t.equal(clip.placement?.clipped, true);
  t.same(codes(vkms, buf(512, 512), P, { rotation: 180, dst: { x: 768, y: 0, width: 512, height: 512 }, clip: true }), ['PLACEMENT'], 'rotated placements are not clipped');
});

t.test('real devices: Intel tiled and CCS modifiers, Qualcomm, a driver without IN_FORMATS', async (t) => {
  const big = { width: 1920, height: 1080 };
  const ip = primaryOf(i915);
  t.same(codes(i915, buf(1920, 1080, { modifier: Y_TILED_CCS, planes: [{ fd: -1, offset: 0, stride: 7680 }, { fd: -1, offset: 8294400, stride: 512 }] }), ip, {}, big), [], 'XRGB8888 Y_TILED_CCS (2 memory planes) on the Kaby Lake primary');
  t.same(codes(i915, buf(1920, 1080, { format: NV12, modifier: Y_TILED_CCS }), ip, {}, big), ['MODIFIER'], 'NV12 has no CCS on Kaby Lake');
  t.same(codes(i915, buf(1920, 1080, { format: NV12, modifier: Y_TILED, planes: [{ fd: -1, offset: 0, stride: 2048 }, { fd: -1, offset: 2228224, stride: 2048 }] }), ip, {}, big), [], 'NV12 Y_TILED is');
  t.same(codes(i915, buf(1280, 720), overlayOf(i915), { dst: { x: 0, y: 0, width: 1920, height: 1080 } }, big), [], 'scaling on i915 is left to TEST_ONLY');
  t.same(codes(msm, buf(1920, 1080, { modifier: QCOM_COMPRESSED }), primaryOf(msm), {}, big), ['MODIFIER'], 'QCOM_COMPRESSED is advertised with no format on this msm');
  t.same(hibmc.description.prime, { import: false, export: false }, 'hibmc: DRM_CAP_PRIME 0');
  const imp = staticScanoutChecks(hibmc, buf(1920, 1080), primaryOf(hibmc), { crtc: 0 }, big).reasons;
  t.same(imp.map((r) => [r.code, r.fixable]), [['IMPORT', true]], 'hibmc imports no dma-buf: refused before the kernel is asked');
  t.same(codes(hibmc, buf(1920, 1080, { modifier: Y_TILED }), primaryOf(hibmc), {}, big), ['MODIFIER', 'IMPORT'], 'and nothing tiled');
});

t.test('the implicit modifier: only from the KMS device or the same GPU', async (t) => {
  const P = primaryOf(vkms);
  const implicit = (allocatedOn?: bigint) => buf(1024, 768, { modifier: DRM_FORMAT_MOD_INVALID, ...(allocatedOn !== undefined ? { allocatedOn } : {}) });
  const own = staticScanoutChecks(vkms, implicit(vkms.devId!), P, { crtc: 62 }, MODE);
  t.same(own.reasons, [], 'allocated on vkms itself: allowed (AddFB2 and TEST_ONLY decide)');
  t.match(own.notes.join('\n'), /implicit modifier accepted by policy/);
  t.same(staticScanoutChecks({ ...vkms, sameGpu: [0xe280n] }, implicit(0xe280n), P, { crtc: 62 }, MODE).reasons, [], 'allocated on a render node of the same GPU: allowed');
  const vgem = staticScanoutChecks(vkms, implicit(0xe201n), P, { crtc: 62 }, MODE).reasons;
  t.same(vgem.map((r) => r.code), ['IMPLICIT_MODIFIER'], 'allocated on vgem (card1): refused');
  t.equal(vgem[0]!.fixable, true, 'the client can re-allocate with an explicit modifier');
  t.same(codes(vkms, implicit(), P), ['IMPLICIT_MODIFIER'], 'allocating device unknown: refused');
  t.same(codes(vkms, buf(1024, 768, { format: XB24, modifier: DRM_FORMAT_MOD_INVALID, allocatedOn: vkms.devId! }), P), ['FORMAT'], 'the format check comes first');
});

/** A kernel that counts calls and refuses what it is told to. */
class FakeKernel implements ScanoutKernel {
  counts: KernelCounts = { imports: 0, addfb2: 0, testOnly: 0 };
  made = new Set<object>();
  constructor(private readonly refuse: { addfb2?: (b: ScanoutBuffer) => boolean; testOnly?: boolean } = {}) {}
  framebuffer(key: object, b: ScanoutBuffer): KernelStep {
    this.counts.imports += b.planes.length;
    this.counts.addfb2++;
    this.made.add(key);
    if (this.refuse.addfb2?.(b)) return { ok: false, stage: 'ADDFB2', error: new SystemError('AddFB2 refused', { code: 'EINVAL', errno: 22, syscall: 'DRM_IOCTL_MODE_ADDFB2' }) };
    return { ok: true };
  }
  testOnly(): KernelStep {
    this.counts.testOnly++;
    if (this.refuse.testOnly) return { ok: false, stage: 'TEST_ONLY', error: new SystemError('TEST_ONLY refused', { code: 'ERANGE', errno: 34, syscall: 'DRM_IOCTL_MODE_ATOMIC' }) };
    return { ok: true };
  }
  forget(key: object): void {
    this.made.delete(key);
  }
  closed = false;
  close(): void {
    this.closed = true;
  }
}

t.test('cache: the second check asks nothing; forget and invalidate recompute', async (t) => {
  const kernel = new FakeKernel();
  const c = new ScanoutChecker(vkms, { kernel, mode: MODE });
  const b = buf(1024, 768);
  const v1 = c.checkScanout(b, primaryOf(vkms), { crtc: 62 });
  t.ok(v1.ok, 'ok');
  t.equal(v1.stage, 'kernel', 'the kernel was asked');
  t.same(c.kernelCounts, { imports: 1, addfb2: 1, testOnly: 1 });
  const v2 = c.checkScanout(b, primaryOf(vkms), { crtc: 62 });
  t.equal(v2, v1, 'the same verdict object');
  t.same(c.kernelCounts, { imports: 1, addfb2: 1, testOnly: 1 }, 'no import, AddFB2 or TEST_ONLY the second time');
  t.same(c.stats, { hits: 1, computed: 1 });
  c.checkScanout(b, overlayOf(vkms), { crtc: 62 });
  t.equal(c.stats.computed, 2, 'another plane is another verdict');
  c.checkScanout(b, primaryOf(vkms), { crtc: 62, clip: true });
  t.equal(c.stats.computed, 3, 'another placement is another verdict');
  c.forget(b);
  t.notOk(kernel.made.has(b), 'forget drops the framebuffer');
  c.checkScanout(b, primaryOf(vkms), { crtc: 62 });
  t.equal(c.stats.computed, 4, 'recomputed after forget');
  c.invalidate({ width: 800, height: 600 });
  const v3 = c.checkScanout(b, primaryOf(vkms), { crtc: 62 });
  t.equal(c.stats.computed, 5, 'recomputed after the mode changed');
  t.same(v3.reasons.map((r) => r.code), ['PLACEMENT'], 'now partly off the 800x600 mode');
  const static1 = c.checkScanout(buf(1024, 768, { format: XB24 }), primaryOf(vkms), { crtc: 62 });
  t.equal(static1.stage, 'static', 'a static refusal never reaches the kernel');
  c.close();
  t.ok(kernel.closed, 'close closes the kernel adapter');
});

t.test('kernel refusals: reasons with errno, the known-bad table learns and prunes', async (t) => {
  const table = new KnownBadTable();
  const kernel = new FakeKernel({ addfb2: (b) => b.format === fourcc('RGB565') });
  const c = new ScanoutChecker(vkms, { kernel, mode: MODE, knownBad: table });
  const P = primaryOf(vkms);
  const rgb = buf(1024, 768, { format: fourcc('RGB565'), planes: [{ fd: -1, offset: 0, stride: 2048 }] });
  const v = c.checkScanout(rgb, P, { crtc: 62 });
  t.same(v.reasons.map((r) => [r.code, r.errno, r.fixable]), [['ADDFB2', 'EINVAL', true]], 'AddFB2 refusal with its errno');
  t.equal(kernel.counts.testOnly, 0, 'no TEST_ONLY after a refused AddFB2');
  t.ok(table.has(fourcc('RGB565'), DRM_FORMAT_MOD_LINEAR, P), 'the triple is known bad');
  t.match(table.get(fourcc('RGB565'), DRM_FORMAT_MOD_LINEAR, P)!.taughtBy, /1024x768 RGB565/, 'with the buffer that taught it');
  const plane = vkms.planes.find((p) => p.id === P)!;
  const pruned = table.prune(P, plane.formats);
  t.equal(pruned.size, plane.formats.size - 1, 'the tranche loses exactly that pair');
  t.notOk(pruned.has(fourcc('RGB565'), DRM_FORMAT_MOD_LINEAR));
  t.equal(table.prune(overlayOf(vkms), plane.formats), plane.formats, 'other planes are untouched');

  const tk = new FakeKernel({ testOnly: true });
  const c2 = new ScanoutChecker(vkms, { kernel: tk, mode: MODE, knownBad: table });
  const small = c2.checkScanout(buf(256, 256), overlayOf(vkms), { crtc: 62, dst: { x: 10, y: 10, width: 256, height: 256 } });
  t.same(small.reasons.map((r) => [r.code, r.errno]), [['TEST_ONLY', 'ERANGE']], 'TEST_ONLY refusal with its errno');
  t.equal(table.size, 1, 'a refused windowed placement teaches nothing about the pair');
  const i9 = new ScanoutChecker(i915, { kernel: new FakeKernel({ testOnly: true }), mode: { width: 1920, height: 1080 } });
  i9.checkScanout(buf(1280, 720), primaryOf(i915), { crtc: 0, dst: { x: 0, y: 0, width: 1920, height: 1080 } });
  t.equal(i9.knownBad.size, 0, 'a refused scaled full-screen placement teaches nothing about the pair');
  c2.checkScanout(buf(1024, 768), overlayOf(vkms), { crtc: 62 });
  t.equal(table.size, 2, 'a refused full-screen unscaled placement does');
  table.clear({ format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, plane: overlayOf(vkms) });
  t.equal(table.size, 1, 'clear one');
  t.equal(table.describe().length, 1);
});

t.test('a commit refused after its TEST_ONLY passed: the verdict becomes COMMIT, cached; known-bad learns a full-screen pair, not a window', async (t) => {
  const table = new KnownBadTable();
  const learned: string[] = [];
  table.onLearn((e) => learned.push(`${e.plane}/${e.reason.code}/${e.reason.errno}`));
  const kernel = new FakeKernel();
  const c = new ScanoutChecker(vkms, { kernel, mode: MODE, knownBad: table });
  const P = primaryOf(vkms);
  const b = buf(1024, 768);
  const at = { crtc: 62 };
  t.ok(c.checkScanout(b, P, at).ok, 'the TEST_ONLY passed');
  const err = new SystemError('commit refused', { code: 'ENOSPC', errno: 28, syscall: 'DRM_IOCTL_MODE_ATOMIC' });
  const v = c.commitRefused(b, P, at, err);
  t.same([v.ok, v.stage, v.reasons.map((r) => [r.code, r.errno, r.fixable])], [false, 'kernel', [['COMMIT', 'ENOSPC', true]]], 'a COMMIT refusal with the errno');
  t.ok(v.placement, 'the placement of the passed verdict is kept');
  const before = { ...kernel.counts };
  t.equal(c.checkScanout(b, P, at), v, 'the refusal is the cached verdict now');
  t.same(kernel.counts, before, 'nothing asked of the kernel again');
  t.same(learned, [`${P}/COMMIT/ENOSPC`], 'the full-screen pair is learned (its onLearn listeners follow: the scanout tranche)');
  t.ok(table.has(XR24, DRM_FORMAT_MOD_LINEAR, P));

  const win = buf(256, 256);
  const wat = { crtc: 62, dst: { x: 10, y: 10, width: 256, height: 256 } };
  const O = overlayOf(vkms);
  t.ok(c.checkScanout(win, O, wat).ok);
  t.equal(c.commitRefused(win, O, wat, err).reasons[0]!.code, 'COMMIT');
  t.equal(table.size, 1, 'a refused window teaches nothing about the pair');
});

t.test('static checks only, without a kernel', async (t) => {
  const c = new ScanoutChecker(vkms, { mode: MODE });
  const v = c.checkScanout(buf(1024, 768), primaryOf(vkms), { crtc: 62 });
  t.ok(v.ok);
  t.equal(v.stage, 'static');
  t.match(v.notes.join(' '), /static checks only/);
  t.same(c.kernelCounts, { imports: 0, addfb2: 0, testOnly: 0 });
});

t.test('tranche debounce: first frame at once, changes after 1 s and 2 frames, no flapping', async (t) => {
  t.throws(() => new ScanoutTrancheDebounce({ minFrames: 0 }), RangeError);
  const d = new ScanoutTrancheDebounce();
  const fixableV = { ok: false, reasons: [{ code: 'FORMAT' as const, fixable: true, detail: '' }], notes: [] };
  const notFixable = { ok: false, reasons: [{ code: 'SCALING' as const, fixable: false, detail: '' }], notes: [] };
  t.same(d.frame(fixableV, 0), { offered: true, changed: true }, 'a fixable refusal offers the tranche at once');
  // flapping every frame for 5 s at 60 Hz never withdraws it
  let changes = 0;
  for (let i = 1; i <= 300; i++) if (d.frame(i % 2 ? notFixable : fixableV, i * 16.7).changed) changes++;
  t.equal(changes, 0, 'alternating verdicts never change the offer');
  t.ok(d.offered);
  // not fixable, held: 59 frames in 985 ms are not enough, the 61st (1001 ms) is
  const t0 = 10_000;
  for (let i = 0; i < 60; i++) t.equal(d.frame(notFixable, t0 + i * 16.7).changed, false);
  t.same(d.frame(notFixable, t0 + 60 * 16.7), { offered: false, changed: true }, 'withdrawn after 1 s of frames');
  t.equal(d.changes, 1);
  // one frame after an idle pause is not enough: 2 frames are needed
  t.equal(d.frame(true, 100_000).changed, false, 'first wanted frame after a pause');
  t.same(d.frame(true, 101_000), { offered: true, changed: true }, 'second frame, 1 s later: offered');
  t.equal(new ScanoutTrancheDebounce().frame(undefined, 0).offered, false, 'no candidate: not offered');
});

t.test('texture verdicts: EGL-derived and declared render-node constraints', async (t) => {
  const declaredVgem = renderNodeConstraint('renderD128', 'vgem');
  t.ok(checkTexture(buf(256, 256), declaredVgem).ok, 'vgem: LINEAR XRGB8888');
  t.same(checkTexture(buf(256, 256, { modifier: Y_TILED }), declaredVgem).reasons.map((r) => r.code), ['MODIFIER'], 'vgem: nothing tiled');
  t.same(checkTexture(shmBuffer(256, 256, XR24, 1024), declaredVgem).reasons.map((r) => r.code), ['NOT_DMABUF']);
  const egl = eglRenderNodeConstraint('renderD128', {
    platform: 'device',
    vendor: 'Intel',
    version: '1.5',
    driver: 'iris',
    formats: [
      { format: XR24, modifiers: [{ modifier: DRM_FORMAT_MOD_LINEAR, externalOnly: false }, { modifier: Y_TILED, externalOnly: false }] },
      { format: NV12, modifiers: [{ modifier: DRM_FORMAT_MOD_LINEAR, externalOnly: true }] },
    ],
  });
  t.ok(checkTexture(buf(256, 256, { modifier: Y_TILED }), egl).ok, 'iris imports XRGB8888 Y_TILED');
  const nv = checkTexture(buf(256, 256, { format: NV12, planes: [{ fd: -1, offset: 0, stride: 256 }, { fd: -1, offset: 65536, stride: 256 }] }), egl);
  t.ok(nv.ok, 'NV12 LINEAR is importable');
  t.match(nv.notes.join(' '), /external-only/, 'noted as external-only');
  t.same(checkTexture(buf(256, 256, { format: XB24 }), egl).reasons.map((r) => r.code), ['FORMAT']);
  t.same(checkTexture(buf(256, 256, { modifier: Y_TILED_CCS }), egl).reasons.map((r) => r.code), ['MODIFIER']);
  t.same(checkTexture(buf(256, 256, { modifier: DRM_FORMAT_MOD_INVALID }), egl).reasons, [], 'implicit: the driver decides');
  const limited = { ...declaredVgem, maxWidth: 128, pitchAlign: 256 };
  t.same(checkTexture(buf(200, 64, { planes: [{ fd: -1, offset: 0, stride: 800 }] }), limited).reasons.map((r) => r.code), ['SIZE', 'LAYOUT']);
});

t.test('plane assignment on vkms and Kaby Lake', async (t) => {
  const checker = new ScanoutChecker(vkms, { mode: MODE });
  const planes = vkms.planes;
  type S = { id: string; b: ScanoutBuffer; dst: { x: number; y: number; width: number; height: number } };
  const run = (surfaces: S[], c = checker, ps = planes, mode = MODE) =>
    assignPlanes({
      mode,
      planes: ps,
      surfaces,
      verdict: (id, plane) => {
        const s = surfaces.find((x) => x.id === id)!;
        return c.checkScanout(s.b, plane, { crtc: c.device.crtcs[0]!.id, dst: s.dst });
      },
    });
  const full: S = { id: 'full', b: buf(1024, 768), dst: { x: 0, y: 0, width: 1024, height: 768 } };
  let a = run([full]);
  t.same(a.primary, { kind: 'surface', surface: 'full' }, 'fullscreen on the primary');
  t.same(a.overlays, []);
  t.same(a.copied, []);
  const win: S = { id: 'win', b: buf(300, 200), dst: { x: 100, y: 100, width: 300, height: 200 } };
  a = run([win]);
  t.same(a.primary, { kind: 'background' }, 'a smaller surface: black background on the primary');
  t.same(a.overlays, [{ plane: 35, surface: 'win' }], 'and the surface on the first overlay');
  a = run([full, win]);
  t.same(a.primary, { kind: 'surface', surface: 'full' });
  t.same(a.overlays, [{ plane: 35, surface: 'win' }], 'a window above a fullscreen surface');
  const bgr: S = { id: 'bgr', b: buf(300, 200, { format: XB24 }), dst: { x: 200, y: 150, width: 300, height: 200 } };
  a = run([win, bgr]);
  t.same(a.primary, { kind: 'composite' }, 'an XBGR8888 surface is copied: the primary shows the composite');
  t.same(a.copied, ['win', 'bgr'], 'the window below it overlaps it: copied too');
  t.same(a.overlays, []);
  const apart: S = { id: 'apart', b: buf(100, 100), dst: { x: 900, y: 600, width: 100, height: 100 } };
  a = run([apart, bgr]);
  t.same(a.overlays, [{ plane: 35, surface: 'apart' }], 'a window that does not overlap the copied one stays direct');
  t.same(a.copied, ['bgr']);
  const many: S[] = Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, b: buf(64, 64), dst: { x: i * 70, y: 0, width: 64, height: 64 } }));
  a = run(many);
  t.equal(a.overlays.length, 8, 'vkms has 8 overlays');
  t.same(a.copied, ['s8', 's9'], 'the top two are copied');
  t.ok(a.overlays.every((o, i) => i === 0 || o.plane > a.overlays[i - 1]!.plane), 'overlays stack in ascending plane id');
  // Kaby Lake: one overlay per CRTC; a second window is copied
  const ic = new ScanoutChecker(i915, { mode: { width: 1920, height: 1080 } });
  const ip = i915.planes.filter((p) => p.possibleCrtcs.includes(0));
  const w1: S = { id: 'w1', b: buf(640, 480), dst: { x: 0, y: 0, width: 640, height: 480 } };
  const w2: S = { id: 'w2', b: buf(640, 480), dst: { x: 1000, y: 500, width: 640, height: 480 } };
  a = run([w1, w2], ic, ip, { width: 1920, height: 1080 });
  t.same(a.overlays.map((o) => o.surface), ['w1'], 'one overlay on Kaby Lake');
  t.same(a.copied, ['w2']);
  // a lone surface no overlay takes goes on the primary, positioned
  a = assignPlanes({ mode: MODE, planes, surfaces: [win], verdict: (_s, plane) => ({ ok: plane === 32 }) });
  t.same(a.primary, { kind: 'surface', surface: 'win' }, 'positioned on the primary');
  t.same(a.copied, []);
  t.same(assignPlanes({ mode: MODE, planes, surfaces: [], verdict: () => ({ ok: true }) }).primary, { kind: 'background' }, 'nothing to show: background');
});

t.test('a FormatSet pruned by an empty table is the same set', async (t) => {
  const s = FormatSet.from([[XR24, DRM_FORMAT_MOD_LINEAR]]);
  t.equal(new KnownBadTable().prune(1, s), s);
});

t.test('primebuf explain: usage errors and a missing device exit 2, not 1', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const cli = join(packageRoot, 'dist', 'src', 'cli.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'explain', ...args], { encoding: 'utf8' });
  const help = run('--help');
  t.equal(help.status, 0, '--help');
  t.match(help.stdout, /--plane SEL/);
  const missing = run('--format', 'XRGB8888');
  t.equal(missing.status, 2, 'missing options');
  t.match(missing.stderr, /missing --device, --plane, --size/);
  const badFormat = run('--device', 'card0', '--plane', 'primary', '--format', 'NOPE1', '--size', '64x64');
  t.equal(badFormat.status, 2, 'unknown format');
  t.match(badFormat.stderr, /unknown pixel format/);
  const noDevice = run('--device', '/nonexistent/card9', '--plane', 'primary', '--format', 'XRGB8888', '--size', '64x64');
  t.equal(noDevice.status, 2, 'no such device: the check could not run');
  t.match(noDevice.stderr, /ENOENT|no such file/i);
});

t.test('a linux-dmabuf buffer as the verdicts see it (bufferFromAttributes)', async (t) => {
  const { openSync } = await import('node:fs');
  const { OwnedFd } = await import('../../src/fd.js');
  const { DmabufAttributes } = await import('../../src/dmabuf/attributes.js');
  const { bufferFromAttributes } = await import('../../src/scanout/index.js');
  const fd = new OwnedFd(openSync('/dev/null', 'r'));
  const v = DmabufAttributes.validate(
    { planes: new Map([[0, { fd, offset: 0, stride: 4096, modifier: DRM_FORMAT_MOD_INVALID }]]), width: 1024, height: 768, format: XR24, flags: 0 },
    { version: 5, advertised: FormatSet.from([[XR24, DRM_FORMAT_MOD_INVALID]]), fdSize: () => null },
  );
  t.ok(v.ok, 'validated');
  if (!v.ok) return;
  const b = bufferFromAttributes(v.attributes, { allocatedOn: vkms.devId!, name: 'wl_buffer@7' });
  t.same({ ...b, planes: b.planes.map((p) => ({ ...p, fd: p.fd === fd.fd })) }, {
    kind: 'dmabuf', width: 1024, height: 768, format: XR24, modifier: DRM_FORMAT_MOD_INVALID,
    planes: [{ fd: true, offset: 0, stride: 4096 }], allocatedOn: vkms.devId!, name: 'wl_buffer@7',
  }, 'size, format, modifier, planes (the fd borrowed), allocating device');
  t.same(staticScanoutChecks(vkms, b, primaryOf(vkms), { crtc: 62 }, MODE).reasons, [], 'an implicit buffer the client allocated on vkms passes the static checks');
  v.attributes.close();
  t.ok(fd.closed, 'the attributes still own and close the fd');
});

t.test('plane assignment on every recorded device', async (t) => {
  const { readdirSync } = await import('node:fs');
  const dir = join(packageRoot, 'test', 'fixtures', 'devices');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  t.ok(files.length >= 4, 'the four recorded devices');
  const mode = { width: 1280, height: 720 };
  const direct = { primary: { kind: 'surface', surface: 'full' }, overlays: ['win'], copied: [] };
  const expected: Record<string, unknown> = {
    // DRM_CAP_PRIME 0: no client dma-buf reaches its plane; everything is composited
    'hibmc-hi171x-kunpeng.json': { primary: { kind: 'composite' }, overlays: [], copied: ['full', 'win'] },
    'i915-kbl-8086-5927.json': direct,
    'msm-qcm2290-unoq.json': direct,
    'spacemit-k1-dsi.json': direct,
  };
  for (const f of files) {
    const d = scanoutDeviceFromDrmInfo(fixture(`devices/${f}`));
    const crtc = d.crtcs[0]!.id;
    const planes = d.planes.filter((p) => p.possibleCrtcs.includes(d.crtcs[0]!.index));
    const checker = new ScanoutChecker(d, { mode });
    const surfaces = [
      { id: 'full', b: buf(1280, 720), dst: { x: 0, y: 0, width: 1280, height: 720 } },
      { id: 'win', b: buf(320, 240), dst: { x: 100, y: 100, width: 320, height: 240 } },
    ];
    const a = assignPlanes({
      mode,
      planes,
      surfaces,
      verdict: (id, plane) => {
        const s = surfaces.find((x) => x.id === id)!;
        return checker.checkScanout(s.b, plane, { crtc, dst: s.dst });
      },
    });
    const want = expected[f];
    t.ok(want, `${f}: an expectation is written down`);
    t.same({ primary: a.primary, overlays: a.overlays.map((o) => o.surface), copied: a.copied }, want, `${f}: ${a.why.join('; ')}`);
  }
});
