// V4L2 policy on the host (no device): the V4L2 -> DRM format table (every mapping names a real
// DRM format with the same bytes per pixel and plane count, the 32-bit RGB codes are DRM's own,
// unmappable formats say why), and v4l2Constraint(): what a camera's TRY_FMT answers become as a
// DeviceConstraint, merged with the recorded vkms device and solved like any other device.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { AllocatorPool } from '../../src/alloc/index.js';
import { describedAllocator, dumbCaps, heapCaps } from '../../src/alloc/catalog.js';
import { importDevicesJSON, merge, scanoutConstraint, solve } from '../../src/constraints/index.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { DRM_FORMAT_MOD_LINEAR, formatInfo, formatName, fourcc, fourccCode } from '../../src/formats/index.js';
import { packageRoot } from '../../src/native.js';
import {
  V4L2_FORMAT_TABLE,
  v4l2Constraint,
  v4l2FormatFor,
  v4l2FormatInfo,
  type V4l2FormatAtSize,
  type V4l2Probe,
} from '../../src/v4l2/index.js';
import { v4l2FourccString } from '../../src/v4l2/formats.js';

/** bytes per pixel of each V4L2 format in the table, from videodev2.h's depth column (per plane for planar). */
const V4L2_DEPTH: Record<string, number> = {
  XR24: 32, AR24: 32, XB24: 32, AB24: 32, BX24: 32, BA24: 32, RX24: 32, RA24: 32, RGB3: 24, BGR3: 24,
  RGBP: 16, XR15: 16, AR15: 16, XR12: 16, AR12: 16, GREY: 8, 'Y16 ': 16, YUYV: 16, YVYU: 16, UYVY: 16, VYUY: 16,
};

t.test('the format table: real DRM formats with the same layout', async (t) => {
  const seen = new Set<string>();
  for (const m of V4L2_FORMAT_TABLE) {
    t.notOk(seen.has(m.v4l2), `${m.v4l2} appears once`);
    seen.add(m.v4l2);
    const drm = fourcc(m.drm);
    const info = formatInfo(drm);
    t.ok(m.source.length > 20, `${m.v4l2}: the mapping says where it comes from`);
    if (info && V4L2_DEPTH[m.v4l2] !== undefined) t.equal(info.cpp[0]! * 8, V4L2_DEPTH[m.v4l2], `${m.v4l2} -> ${m.drm}: same bits per pixel`);
    if (info && m.drm.startsWith('NV')) t.equal(info.planes, 2, `${m.v4l2} -> ${m.drm}: two planes`);
    const back = v4l2FormatInfo(fourccCode(m.v4l2));
    t.equal(back.drm, drm, `${m.v4l2} looks up as ${m.drm}`);
    t.equal(back.separatePlanes, m.separatePlanes === true, `${m.v4l2}: separate planes ${m.separatePlanes === true}`);
  }
  // Since Linux 5.2 the 32-bit RGB V4L2 codes were chosen equal to DRM's for the same bytes.
  for (const code of ['XR24', 'AR24', 'XB24', 'AB24', 'BX24', 'BA24', 'RX24', 'RA24']) {
    t.equal(v4l2FormatInfo(fourccCode(code)).drm, fourccCode(code), `${code}: V4L2 and DRM codes are equal`);
  }
  t.equal(formatName(v4l2FormatInfo(fourccCode('RGB3')).drm!), 'BGR888', 'V4L2 RGB24 (bytes R,G,B) is DRM BGR888 (little-endian B:G:R)');
  t.equal(v4l2FormatFor(fourcc('XRGB8888')), fourccCode('XR24'), 'XRGB8888 is asked for as XR24');
  t.equal(v4l2FormatFor(fourcc('NV12')), fourccCode('NV12'), 'NV12 as the single-buffer NV12');
  t.equal(v4l2FormatFor(fourcc('NV12'), { separatePlanes: true }), fourccCode('NM12'), 'NV12 with separate planes as NM12');
  t.equal(v4l2FormatFor(fourcc('XRGB2101010')), null, 'no V4L2 format for XRGB2101010 in the table');
});

t.test('unmappable formats are listed with why, not dropped', async (t) => {
  const be = v4l2FormatInfo((fourccCode('XR15') | 0x80000000) >>> 0);
  t.equal(be.drm, null, 'XR15-BE is not mapped');
  t.equal(be.v4l2, 'XR15-BE', 'named with -BE like v4l2-ctl');
  t.match(be.source, /big-endian/, 'why: big-endian');
  t.match(v4l2FormatInfo(fourccCode('RGBR')).source, /big-endian/, 'RGB565X: big-endian');
  t.match(v4l2FormatInfo(fourccCode('AYUV')).source, /bytes A, Y, Cb, Cr/, 'AYUV: the byte orders differ');
  t.match(v4l2FormatInfo(fourccCode('BA81')).source, /no DRM format with the same memory layout/, 'a Bayer format: generic reason');
  t.equal(v4l2FourccString(fourccCode('Y16 ')), 'Y16', 'trailing spaces trimmed');
  t.equal(v4l2FourccString((fourccCode('Y16 ') | 0x80000000) >>> 0), 'Y16 -BE', 'a big-endian code: four characters then -BE, as v4l2-ctl prints it');
});

const XR24 = fourcc('XRGB8888');
const NV12 = fourcc('NV12');

function at(v4l2: string, bytesperline: number, sizeimage: number, flexiblePitch: boolean, reason?: string): V4l2FormatAtSize {
  const info = v4l2FormatInfo(fourccCode(v4l2));
  const f = { ...info, description: v4l2, flags: 0, compressed: false, emulated: false };
  return reason === undefined ? { format: f, drm: info.drm, bytesperline, sizeimage, flexiblePitch } : { format: f, drm: null, bytesperline, sizeimage, flexiblePitch, reason };
}

function probe(over: Partial<V4l2Probe> = {}): V4l2Probe {
  return {
    path: '/dev/video0',
    driver: 'vivid',
    card: 'vivid',
    direction: 'capture',
    formats: [at('XR24', 2560, 1228800, true), at('NV12', 640, 460800, true), at('BA81', 0, 0, false, 'BA81: no DRM format')],
    frameSizes: { kind: 'discrete', sizes: [{ width: 640, height: 480 }, { width: 1280, height: 720 }] },
    importsDmabuf: true,
    contiguity: { contiguous: false, source: 'vivid allocators[0]=0' },
    ...over,
  };
}

const vkms = importDevicesJSON(JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'vkms-devices.json'), 'utf8')))[0]!;
const pool = () => new AllocatorPool([describedAllocator(dumbCaps(vkms.name)), describedAllocator(heapCaps('system'))]);

t.test('a vivid-like camera (any pitch, imports): merges with vkms\'s primary plane, XRGB8888 LINEAR', async (t) => {
  const cam = v4l2Constraint(probe(), { width: 640, height: 480 });
  t.equal(cam.usage, 'camera', 'a capture node is a camera');
  t.same([...cam.formats!].map((p) => formatName(p.format)).sort(), ['NV12', 'XRGB8888'], 'the mapped formats that fit; the unmapped Bayer one is not in the set');
  t.equal(cam.pitchAlign, undefined, 'no pitch rule: the driver takes the allocation\'s');
  t.same([cam.minWidth, cam.maxWidth, cam.minHeight, cam.maxHeight], [640, 640, 480, 480], 'discrete sizes: the size itself');
  t.equal(cam.contiguous, false, 'vmalloc: no contiguity');
  t.equal(cam.allocateOn, undefined, 'imports: no allocateOn');
  t.equal(cam.maxPlanes, 2, 'NV12 has two planes');
  const m = merge(cam, scanoutConstraint(vkms, { type: 'primary' }));
  t.ok(m.ok, 'camera and plane merge');
  const s = solve(m, { width: 640, height: 480, formats: [NV12, XR24] });
  t.same(s.options.map((o) => formatName(o.format)), ['XRGB8888'], 'only XRGB8888 is shared (vkms shows no NV12)');
  const plan = pool().plan(m.set, { width: 640, height: 480, formats: [XR24] });
  t.ok(plan.ok, 'an allocator fits both');
  t.equal(plan.chosen?.layout.planes[0]?.pitch, 2560n, 'pitch 2560 = the camera\'s bytesperline');
});

t.test('a camera that takes only its own pitch: pitch pinned, and a conflicting alignment is a conflict', async (t) => {
  const p = probe({ formats: [at('XR24', 2816, 2816 * 480, false)] });
  const cam = v4l2Constraint(p, { width: 640, height: 480 }, { format: XR24 });
  t.equal(cam.pitchAlign, 2816, 'pitchAlign = bytesperline');
  t.equal(cam.maxPitch, 2816, 'maxPitch = bytesperline: exactly that pitch');
  const plan = pool().plan(merge(cam, scanoutConstraint(vkms, { type: 'primary' })).set, { width: 640, height: 480, formats: [XR24] });
  t.equal(plan.chosen?.layout.planes[0]?.pitch, 2816n, 'the allocation has the camera\'s pitch');
  const enc = { device: 'encoder', usage: 'video-encode' as const, pitchAlign: 1024 };
  const m = merge(cam, enc);
  t.notOk(m.ok && solve(m, { width: 640, height: 480, formats: [XR24] }).ok, 'a 1024-byte alignment cannot meet a pinned 2816 pitch');
  t.throws(() => v4l2Constraint(probe({ formats: [at('XR24', 2816, 0, false), at('NV12', 768, 0, false)] }), { width: 640, height: 480 }), InvalidArgumentError, 'two pinned pitches: one format at a time');
});

t.test('a camera without DMABUF: its own buffers (allocateOn); dma-contig: contiguous; an output node is an encoder', async (t) => {
  const cam = v4l2Constraint(probe({ importsDmabuf: false, contiguity: { contiguous: true, source: 'vivid allocators[0]=1' } }), { width: 640, height: 480 });
  t.equal(cam.allocateOn, '/dev/video0', 'allocate on the camera');
  t.equal(cam.contiguous, true, 'contiguous');
  t.match(cam.source!, /EXPBUF/, 'the source says why');
  const m = merge(cam, scanoutConstraint(vkms, { type: 'primary' }));
  t.ok(m.set.allocateOn.includes('/dev/video0'), 'the merged set must allocate on the camera');
  const out = v4l2Constraint(probe({ direction: 'output' }), { width: 640, height: 480 });
  t.equal(out.usage, 'video-encode', 'an output node stands for an encoder');
  const step = v4l2Constraint(probe({ frameSizes: { kind: 'stepwise', minWidth: 16, maxWidth: 4096, stepWidth: 2, minHeight: 16, maxHeight: 2160, stepHeight: 2 } }), { width: 640, height: 480 });
  t.same([step.minWidth, step.maxWidth, step.minHeight, step.maxHeight], [16, 4096, 16, 2160], 'stepwise sizes become limits');
});

t.test('no format fits: InvalidArgumentError with TRY_FMT\'s reasons', async (t) => {
  const p = probe({ formats: [at('XR24', 5120, 0, true, 'XR24: TRY_FMT 1000x700 gave 1280x720')] });
  t.throws(() => v4l2Constraint(p, { width: 1000, height: 700 }, { format: XR24 }), { message: /no format for 1000x700 in XRGB8888 \(XR24: TRY_FMT 1000x700 gave 1280x720\)/ });
  t.equal(v4l2Constraint(probe(), { width: 640, height: 480 }, { format: XR24 }).formats!.has(XR24, DRM_FORMAT_MOD_LINEAR), true, 'with a format: that format');
});
