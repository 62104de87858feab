// Constraint model, merge and solve on real devices (recorded drm_info dumps in
// test/fixtures/devices, loaded through the importer) and on synthetic devices.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import {
  ConstraintSet,
  constraintFromJSON,
  cpuConstraint,
  merge,
  renderNodeConstraint,
  satisfies,
  scanoutConstraint,
  solve,
  anyPlaneConstraint,
  importDevicesJSON,
  type BufferDescription,
  type DeviceConstraint,
  type KmsDeviceDescription,
} from '../../src/constraints/index.js';
import { importDrmInfoFile } from '../../src/constraints/import-drm-info.js';
import { declared } from '../../src/constraints/device.js';
import { packageRoot } from '../../src/native.js';
import type { DeviceJSON } from '../../src/kms/describe.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const NV12 = fourcc('NV12');
const X_TILED = 0x0100000000000001n;
const Y_TILED = 0x0100000000000002n;
const Y_TILED_CCS = 0x0100000000000004n;
const AFBC_16x16 = 0x0800000000000001n;
const QCOM_COMPRESSED = 0x0500000000000001n;

const fixture = (name: string) => join(packageRoot, 'test', 'fixtures', 'devices', name);
const load = (name: string, opts = {}) => importDrmInfoFile(fixture(name), opts);

const intel = load('i915-kbl-8086-5927.json');
const msm = load('msm-qcm2290-unoq.json');
const k1 = load('spacemit-k1-dsi.json');
const hibmc = load('hibmc-hi171x-kunpeng.json');

const encoderNV12Afbc: DeviceConstraint = declared({
  device: 'encoder',
  usage: 'video-encode',
  formats: FormatSet.from([[NV12, AFBC_16x16]]),
});

t.test('importer: every recorded device loads, no format name is lost, attribution kept', async (t) => {
  for (const d of [intel, msm, k1, hibmc]) {
    t.same(d.unknownFormats, [], `${d.description.driver}: every listed format is known`);
    t.match(d.attribution.source, /^https:\/\//, `${d.description.driver}: the dump's address is kept`);
    t.ok(d.attribution.notes.length > 0, `${d.description.driver}: notes are kept`);
  }
  t.equal(intel.description.planes.length, 9);
  t.equal(k1.description.planes.length, 8);
  t.same(k1.description.planes[0]!.possibleCrtcs, [0], 'possible_crtcs_mask 0x1 -> CRTC 0');
  t.equal(k1.description.prime, undefined, 'modetest prints no caps: PRIME unknown');
  t.same(intel.description.prime, { import: true, export: true }, 'DRM_CAP_PRIME 3');
  t.same(hibmc.description.prime, { import: false, export: false }, 'DRM_CAP_PRIME 0');
  t.same(intel.description.fbSize, { minWidth: 0, maxWidth: 16384, minHeight: 0, maxHeight: 16384 });
});

t.test('i915 (Kaby Lake): tiled and CCS modifiers; pipe C planes lose CCS', async (t) => {
  const dev = intel.description;
  const a = scanoutConstraint(dev, { plane: 32 });
  const c = scanoutConstraint(dev, { plane: 76 });
  t.ok(a.formats!.has(XR24, Y_TILED_CCS), 'pipe A primary takes XRGB8888 Y_TILED_CCS');
  t.notOk(c.formats!.has(XR24, Y_TILED_CCS), 'pipe C primary does not');
  const m = merge(a, c);
  t.ok(m.ok);
  t.same(m.set.accepted(XR24), [DRM_FORMAT_MOD_LINEAR, X_TILED, Y_TILED, 0x0100000000000003n], 'the intersection keeps LINEAR, X, Y, Yf');
  // A GPU that can sample CCS keeps it with pipe A ...
  const gpu = renderNodeConstraint('renderD128', 'i915', 'texture', {
    modifiers: undefined,
    formats: FormatSet.from([[XR24, DRM_FORMAT_MOD_LINEAR], [XR24, Y_TILED], [XR24, Y_TILED_CCS]]),
  });
  t.same(merge(a, gpu).set.accepted(XR24), [DRM_FORMAT_MOD_LINEAR, Y_TILED, Y_TILED_CCS]);
  // ... and the CPU reduces everything to LINEAR.
  const withCpu = merge(a, gpu, cpuConstraint('write'));
  t.same(withCpu.set.accepted(XR24), [DRM_FORMAT_MOD_LINEAR]);
  t.equal(withCpu.set.cpuAccess, 'write');
  // The cursor plane takes only ARGB8888 LINEAR, up to the cursor size.
  const cursor = scanoutConstraint(dev, { type: 'cursor' });
  t.equal(cursor.maxWidth, 256);
  const s = solve(merge(cursor), { width: 512, height: 64, formats: [AR24] });
  t.notOk(s.ok, 'a 512-wide cursor does not fit a 256x256 cursor plane');
  t.equal(s.reasons[0]!.code, 'SIZE');
  t.equal(s.reasons[0]!.plane, cursor.plane);
});

t.test('msm (QCM2290): QCOM_COMPRESSED with no format; an AFBC encoder conflicts, reasons name both', async (t) => {
  const plane = scanoutConstraint(msm.description);
  t.equal(plane.plane, 35);
  t.same(plane.emptyModifiers, [QCOM_COMPRESSED], 'the empty IN_FORMATS entry is kept');
  t.notOk([...plane.formats!].some((p) => p.modifier === QCOM_COMPRESSED), 'but contributes no pair');
  const m = merge(plane, encoderNV12Afbc);
  t.notOk(m.ok, 'no common pair');
  t.equal(m.reasons.length, 2);
  t.same(
    m.reasons.map((r) => [r.code, r.device, r.usage, r.plane]),
    [
      ['FORMAT_MODIFIER', 'card0', 'scanout', 35],
      ['FORMAT_MODIFIER', 'encoder', 'video-encode', undefined],
    ],
  );
  const s = solve(m, { width: 1920, height: 1080, formats: [XR24, NV12] });
  t.notOk(s.ok);
  t.match(s.message, /plane 35 on card0 accepts only LINEAR \(XRGB8888\), and not NV12/);
  t.match(s.message, /encoder \(video-encode\) accepts NV12 only as ARM_AFBC\(BLOCK_SIZE=16x16\)/);
  t.match(s.message, /QCOM_COMPRESSED is advertised with no format/);
  // Asking the DPU for UBWC itself fails the same honest way.
  const ubwc = declared({ device: 'gpu', usage: 'render', formats: FormatSet.from([[XR24, QCOM_COMPRESSED]]) });
  const u = merge(plane, ubwc);
  t.notOk(u.ok);
  t.match(u.message, /QCOM_COMPRESSED is advertised with no format/);
});

t.test('SpacemiT K1 (RISC-V): LINEAR only; NV12 on the cursor-typed plane; an NV12 encoder fits', async (t) => {
  const dev = k1.description;
  const cursor = scanoutConstraint(dev, { type: 'cursor' });
  t.equal(cursor.plane, 43);
  t.ok(cursor.formats!.has(NV12, DRM_FORMAT_MOD_LINEAR), 'the cursor plane lists NV12');
  const enc = declared({ device: 'encoder', usage: 'video-encode', formats: FormatSet.from([[NV12, DRM_FORMAT_MOD_LINEAR]]), heightAlign: 16, pitchAlign: 64 });
  const s = solve(merge(scanoutConstraint(dev), enc), { width: 1920, height: 1080, formats: [XR24, NV12] });
  t.ok(s.ok);
  t.same(s.options.map((o) => o.format), [NV12], 'only NV12 is common; XRGB8888 is left out with a reason');
  t.ok(s.reasons.some((r) => r.format === XR24 && r.device === 'encoder'), 'why XRGB8888 was dropped');
  const l = s.options[0]!.linear!;
  t.equal(l.allocHeight, 1088, 'height aligned to 16 for the encoder');
  t.equal(l.planes[0]!.pitch, 1920n);
  t.equal(l.planes[1]!.offset, 1920n * 1088n, 'chroma after the aligned luma');
});

t.test('hibmc (server VGA): no modifiers, no PRIME import -> allocate on card0, size limits', async (t) => {
  const plane = scanoutConstraint(hibmc.description);
  t.equal(plane.explicitModifiers, false, 'no IN_FORMATS, no ADDFB2_MODIFIERS');
  t.equal(plane.allocateOn, 'card0', 'PRIME 0: only its own buffers');
  t.ok(plane.formats!.has(XR24, DRM_FORMAT_MOD_LINEAR), 'legacy formats are LINEAR');
  const m = merge(plane, renderNodeConstraint('renderD128', 'vgem'));
  t.ok(m.ok);
  t.same(m.set.implicitOnly, ['card0:scanout:28']);
  const big = solve(m, { width: 2560, height: 1440, formats: [XR24] });
  t.notOk(big.ok);
  t.match(big.message, /plane 28 on card0 needs a width of at most 1920 and a height of at most 1200/);
  // Two devices that each accept only their own buffers cannot share one.
  const other = declared({ device: 'card1', usage: 'scanout', allocateOn: 'card1' });
  const two = merge(plane, other);
  t.notOk(two.ok);
  t.same(two.reasons.map((r) => r.code), ['ALLOCATE_ON', 'ALLOCATE_ON']);
  t.match(two.message, /plane 28 on card0 can only use buffers allocated on card0; card1 \(scanout\) can only use buffers allocated on card1/);
});

t.test('synthetic ARM display controller: contiguous, non-coherent, aligned', async (t) => {
  const dc: KmsDeviceDescription = {
    name: 'card0',
    driver: 'synthetic-arm-dc',
    prime: { import: true, export: true },
    fbSize: { minWidth: 16, maxWidth: 4096, minHeight: 16, maxHeight: 4096 },
    planes: [{ id: 31, type: 'primary', possibleCrtcs: [0], inFormats: true, emptyModifiers: [], formats: FormatSet.from([[XR24, 0n], [NV12, 0n], [XR24, AFBC_16x16]]) }],
    contiguous: true,
    coherent: false,
  };
  const c = { ...scanoutConstraint(dc), pitchAlign: 128, offsetAlign: 4096 };
  const m = merge(c, cpuConstraint('write'));
  t.ok(m.ok);
  t.ok(m.set.contiguous);
  t.ok(m.set.writeCombine, 'a non-coherent member asks for write-combining');
  t.same(m.set.nonCoherent, ['card0:scanout:31']);
  const s = solve(m, { width: 1366, height: 768, formats: [NV12] });
  const l = s.options[0]!.linear!;
  t.equal(l.planes[0]!.pitch % 128n, 0n);
  t.equal(l.planes[0]!.pitch, 1408n, '1366 rounded up to a multiple of 128');
  t.equal(l.planes[1]!.offset % 4096n, 0n, 'chroma plane offset page-aligned');
});

t.test('synthetic encoder that wants NV12 against a scanout plane without NV12 (vkms-like)', async (t) => {
  const vkmsLike = declared({ device: 'card0', usage: 'scanout', plane: 31, formats: FormatSet.from([XR24, AR24].map((f) => [f, 0n] as [number, bigint])) });
  const enc = declared({ device: 'encoder', usage: 'video-encode', formats: FormatSet.from([[NV12, 0n]]) });
  const s = solve(merge(vkmsLike, enc), { width: 640, height: 480, formats: [NV12, XR24] });
  t.notOk(s.ok);
  t.match(s.message, /plane 31 on card0 accepts only LINEAR \(XRGB8888\), and not NV12; encoder \(video-encode\) accepts only LINEAR \(NV12\), and not XRGB8888/);
});

t.test('three devices that agree pairwise but not together: every one is named', async (t) => {
  const mk = (device: string, fs: number[]) => declared({ device, usage: 'texture', formats: FormatSet.from(fs.map((f) => [f, 0n] as [number, bigint])) });
  const m = merge(mk('a', [XR24, AR24]), mk('b', [AR24, NV12]), mk('c', [XR24, NV12]));
  t.notOk(m.ok);
  t.same(m.reasons.map((r) => r.device), ['a', 'b', 'c']);
  t.match(m.message, /no format\/modifier pair is accepted by all of a \(texture\), b \(texture\), c \(texture\)/);
});

t.test('limits: sizes that exclude each other, planes, pitch', async (t) => {
  const wide = declared({ device: 'camera', usage: 'camera', minWidth: 4096 });
  const narrow = declared({ device: 'card0', usage: 'scanout', maxWidth: 1920 });
  const m = merge(wide, narrow);
  t.notOk(m.ok);
  t.match(m.message, /camera \(camera\) needs a width of at least 4096; card0 \(scanout\) takes at most 1920/);
  const onePlane = declared({ device: 'jpeg', usage: 'video-encode', maxPlanes: 1, formats: FormatSet.from([[NV12, 0n]]) });
  const p = merge(onePlane);
  t.notOk(p.ok);
  t.equal(p.reasons[0]!.code, 'PLANES');
  const pitch = solve(merge(declared({ device: 'dc', usage: 'scanout', maxPitch: 4096 })), { width: 2048, height: 16, formats: [XR24] });
  t.notOk(pitch.ok);
  t.match(pitch.message, /dc \(scanout\) takes a pitch of at most 4096 bytes; XRGB8888 at width 2048 needs 8192/);
});

t.test('satisfies(): the late-attach check names what the existing buffer lacks', async (t) => {
  const buf: BufferDescription = {
    width: 1920, height: 1080, allocWidth: 1920, allocHeight: 1080, format: XR24, modifier: 0n,
    planes: [{ offset: 0n, pitch: 7680n }], size: 7680n * 1080n, allocator: 'dma-heap:system', contiguous: false, cpuCache: 'cached',
  };
  t.same(satisfies(cpuConstraint(), buf), [], 'a CPU mapping is fine');
  const enc = declared({ device: 'encoder', usage: 'video-encode', formats: FormatSet.from([[NV12, 0n]]), contiguous: true, pitchAlign: 256 });
  const r = satisfies(enc, buf);
  t.same(r.map((x) => x.code).sort(), ['CONTIGUOUS', 'FORMAT_MODIFIER']);
  const aligned = declared({ device: 'gpu', usage: 'texture', pitchAlign: 512 });
  t.same(satisfies(aligned, buf), [], '7680 is a multiple of 512');
  const aligned2 = declared({ device: 'gpu', usage: 'texture', pitchAlign: 1024 });
  t.match(satisfies(aligned2, buf)[0]!.detail, /needs pitches aligned to 1024 bytes; plane 0 of the buffer has pitch 7680/);
  t.equal(satisfies(scanoutConstraint(hibmc.description), buf)[0]!.code, 'EXPORTER');
});

t.test('declared constraints from JSON; typos are rejected', async (t) => {
  const c = constraintFromJSON({ device: 'encoder', usage: 'video-encode', formats: [{ format: 'NV12', modifiers: ['LINEAR', '0x0800000000000001'] }], heightAlign: 16 });
  t.ok(c.formats!.has(NV12, AFBC_16x16));
  t.equal(c.heightAlign, 16);
  t.throws(() => constraintFromJSON({ device: 'x', usage: 'texture', pitchAlgin: 64 }), /unknown constraint field 'pitchAlgin'/);
  t.throws(() => constraintFromJSON({ device: 'x', usage: 'printer' }), /"usage" must be one of/);
});

t.test('anyPlaneConstraint: the union of a device’s non-cursor planes', async (t) => {
  const any = anyPlaneConstraint(intel.description);
  t.equal(any.plane, undefined);
  t.ok(any.formats!.has(XR24, Y_TILED_CCS));
  t.ok(ConstraintSet.of(any).pairs()!.size >= scanoutConstraint(intel.description).formats!.size);
});

t.test('importDevicesJSON: the drm layer`s `primebuf devices --json` shape; CRTC ids become indices; implicit -> LINEAR', async (t) => {
  const doc: DeviceJSON[] = [
    {
      path: '/dev/dri/card0', name: 'card0', devId: 57344, major: 226, minor: 0, nodeType: 'primary', driver: 'vkms', primaryNode: '/dev/dri/card0',
      renderNode: null, siblings: [], bus: null, coherent: true, coherentSource: 'arch',
      caps: { DUMB_BUFFER: 1, ADDFB2_MODIFIERS: 1, PRIME: 3 }, prime: { import: true, export: true },
      kms: {
        minWidth: 10, maxWidth: 8192, minHeight: 10, maxHeight: 8192, cursorWidth: 512, cursorHeight: 512,
        crtcs: [{ id: 37, index: 0, fbId: 0, active: false, mode: null, gammaSize: 0, properties: {} }],
        connectors: [], encoders: [],
        planes: [
          { id: 31, type: 'primary', possibleCrtcs: [37], crtcId: 0, fbId: 0, hasInFormats: true, formats: [{ format: 'XRGB8888', modifiers: ['0x0000000000000000'] }], properties: {} },
          { id: 40, type: 'overlay', possibleCrtcs: [37], crtcId: 0, fbId: 0, hasInFormats: false, formats: [{ format: 'ARGB8888', modifiers: ['0x00ffffffffffffff'] }], properties: {} },
        ],
      },
    },
    { path: '/dev/dri/renderD128', name: 'renderD128', devId: 57472, major: 226, minor: 128, nodeType: 'render', driver: 'vgem', primaryNode: null, renderNode: '/dev/dri/renderD128', siblings: [], bus: null, coherent: true, coherentSource: 'arch', kms: null },
  ];
  const [d, ...rest] = importDevicesJSON(doc, 'test');
  t.equal(rest.length, 0, 'the render node has no KMS and is skipped');
  t.equal(d!.name, 'card0');
  t.same(d!.planes[0]!.possibleCrtcs, [0], 'CRTC id 37 -> index 0');
  t.ok(d!.planes[1]!.formats.has(AR24, DRM_FORMAT_MOD_LINEAR), 'legacy list: LINEAR');
  t.equal(d!.coherent, true);
  const c = scanoutConstraint(d!, { type: 'overlay' });
  t.equal(c.explicitModifiers, false);
  t.equal(scanoutConstraint(d!).maxWidth, 8192);
  t.equal(scanoutConstraint(d!, { type: 'primary' }).minWidth, 10);
});

t.test('the recorded vkms fixture (primebuf devices --json in the guest): merges and conflicts', async (t) => {
  const doc = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'vkms-devices.json'), 'utf8'));
  const devs = importDevicesJSON(doc, 'vkms-devices.json');
  t.same(devs.map((d) => `${d.name}:${d.driver}`), ['card0:vkms'], 'only vkms has KMS; vgem is skipped');
  const vk = devs[0]!;
  const primary = scanoutConstraint(vk);
  const cursor = scanoutConstraint(vk, { type: 'cursor' });
  const overlays = vk.planes.filter((p) => p.type === 'overlay');
  t.ok(overlays.length >= 1, `${overlays.length} overlay planes`);
  t.equal(cursor.maxWidth, 512, 'cursor limited by DRM_CAP_CURSOR_WIDTH');
  t.equal(primary.minWidth, 10, 'vkms framebuffers are at least 10 pixels wide');
  t.same([...new Set([...primary.formats!].map((p) => p.modifier))], [DRM_FORMAT_MOD_LINEAR], 'LINEAR only');
  // vkms primary + vgem texture + CPU writes: XRGB8888 LINEAR from a dumb buffer on card0.
  const m = merge(primary, renderNodeConstraint('renderD128', 'vgem'), cpuConstraint('write'));
  t.ok(m.ok);
  const s = solve(m, { width: 1024, height: 768, formats: [NV12, XR24] });
  t.ok(s.ok);
  t.same(s.options.map((o) => o.format), [XR24]);
  t.match(s.message, /plane \d+ on card0 accepts none of NV12/);
  // Every plane of vkms takes the same formats: an overlay and the primary agree.
  t.ok(merge(primary, scanoutConstraint(vk, { plane: overlays[0]!.id })).ok);
  // An NV12-only encoder cannot share a buffer with any vkms plane.
  const enc = declared({ device: 'encoder', usage: 'video-encode', formats: FormatSet.from([[NV12, 0n]]) });
  const c = merge(anyPlaneConstraint(vk), enc);
  t.notOk(c.ok);
  t.same(c.reasons.map((r) => r.device).sort(), ['card0', 'encoder']);
  t.match(c.message, /card0 \(scanout\) accepts .*and not NV12; encoder \(video-encode\) accepts only LINEAR \(NV12\)/);
});
