// One model of a KMS device's facts (src/kms/model.ts), and what derives from it without another
// read: the constraint description, the verdicts' device, linux-dmabuf's formats and its scanout
// tranche (plane and known-bad table), wl_shm's defaults; the plane-offset quirk as a verdict
// reason for every buffer with a plane offset; the probe's reading of a writeback capture.
// Host only: the model is the recorded vkms (test/fixtures/vkms-devices.json).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native.js';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { modelFromDeviceJSON } from '../../src/kms/describe.js';
import type { DeviceJSON } from '../../src/kms/describe.js';
import { KmsDeviceModel } from '../../src/kms/model.js';
import type { Device } from '../../src/kms/device.js';
import { classifyCapture, probePlaneOffsets, probeRowColour } from '../../src/kms/plane-offsets.js';
import { describeKmsDevice, importDevicesJSON } from '../../src/constraints/live.js';
import { scanoutDeviceFromLive, scanoutDevicesFromDevicesJSON } from '../../src/scanout/verdict-device.js';
import { ScanoutChecker, staticScanoutChecks } from '../../src/scanout/verdict.js';
import type { ScanoutKernel } from '../../src/scanout/verdict-kms.js';
import type { ScanoutBuffer } from '../../src/scanout/verdict-buffer.js';
import { SystemError } from '../../src/errors.js';
import { kmsFormats, shmDefaults } from '../../src/wayland/kms-formats.js';
import { LinuxDmabuf } from '../../src/wayland/linux-dmabuf.js';
import { installShm } from '../../src/wayland/shm.js';
import { WaylandConnection, WaylandServer, type ServerResource } from '../../src/wayland/index.js';
import { ClientDmabuf } from '../../src/client/index.js';
import { acceptAllImporter } from '../../src/dmabuf/import.js';
import type { UdmabufAllocator } from '../../src/alloc/backends/udmabuf.js';

const doc = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'vkms-devices.json'), 'utf8')) as { devices: DeviceJSON[] };
const vkmsJSON = doc.devices.find((d) => d.kms)!;
const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const RG16 = fourcc('RGB565');
const model = () => modelFromDeviceJSON(vkmsJSON);

const dmabuf = (offset: number, name = 'client buffer'): ScanoutBuffer => ({
  kind: 'dmabuf',
  width: 1024,
  height: 768,
  format: XR24,
  modifier: DRM_FORMAT_MOD_LINEAR,
  planes: [{ fd: -1, offset, stride: 4096 }],
  name,
});

t.test('a recorded model derives what the separate readers derived', async (t) => {
  const m = model();
  t.equal(m.driver, 'vkms');
  t.equal(m.device, undefined, 'a recorded model has no open device');
  const fromJSON = importDevicesJSON(doc)[0]!;
  const desc = describeKmsDevice(m);
  t.same(desc.planes, fromJSON.planes, 'the constraint description: the same planes as the importer of `primebuf devices --json`');
  t.same(desc.fbSize, fromJSON.fbSize, 'the same framebuffer limits');
  const scan = scanoutDeviceFromLive(m);
  const scanJSON = scanoutDevicesFromDevicesJSON(doc)[0]!;
  t.same(scan.planes.map((p) => [p.id, p.type, p.rotations, p.scaling]), scanJSON.planes.map((p) => [p.id, p.type, p.rotations, p.scaling]), 'the verdict device: planes, rotation offers, scaling');
  t.same(scan.crtcs, scanJSON.crtcs, 'the same CRTCs');
  t.equal(scanoutDeviceFromLive(m), scan, 'derived once per model while its facts hold (cached)');
  const f = kmsFormats(m);
  t.ok(f.primary.has(XR24, DRM_FORMAT_MOD_LINEAR), "linux-dmabuf's scanout set: the primary plane's XRGB8888 LINEAR");
  t.ok(f.all.has(XR24, DRM_FORMAT_MOD_INVALID), 'the render set adds the implicit modifier for LINEAR formats');
  t.equal(kmsFormats(m), f, 'formats derived once per model');
});

t.test('plane offsets: assumed honoured until probed; the quirk refuses every buffer with a plane offset', async (t) => {
  const m = model();
  t.same([m.planeOffsets.honoured, m.planeOffsets.source], [true, 'assumed'], 'not probed: assumed honoured');
  const P = scanoutDeviceFromLive(m).planes.find((p) => p.type === 'primary')!.id;
  const crtc = m.resources.crtcs[0]!.id;
  const MODE = { width: 1024, height: 768 };
  const codes = (b: ScanoutBuffer) => staticScanoutChecks(scanoutDeviceFromLive(m), b, P, { crtc }, MODE).reasons.map((r) => r.code);
  t.same(codes(dmabuf(256)), [], 'honoured: a dma-buf with plane offset 256 passes the static checks');

  const before = scanoutDeviceFromLive(m);
  m.setPlaneOffsets({ honoured: false, source: 'probe', detail: 'the capture showed the rows again further on' });
  const after = scanoutDeviceFromLive(m);
  t.not(after, before, 'a new fact: the verdict device is derived again');
  t.equal(after.planeOffsets?.honoured, false, 'the verdict device carries the fact');
  t.same(codes(dmabuf(256)), ['PLANE_OFFSET'], 'not honoured: a dma-buf client buffer with a plane offset is refused');
  t.same(codes(dmabuf(4096 * 8)), ['PLANE_OFFSET'], 'a whole-row offset too');
  t.same(codes(dmabuf(0)), [], 'a buffer at offset 0 is not');
  const r = staticScanoutChecks(after, dmabuf(256), P, { crtc }, MODE).reasons[0]!;
  t.equal(r.fixable, true, 'PLANE_OFFSET is fixable: a buffer allocated at offset 0 would do');
  t.match(r.detail, /plane offset 256.*does not read plane offsets right.*further on/, 'the reason says which offset and why');

  // the checker (no kernel) refuses it at the static stage, with the quirk's reason
  const checker = new ScanoutChecker(after, { mode: MODE });
  const v = checker.checkScanout(dmabuf(256), P, { crtc });
  t.same([v.ok, v.stage, v.reasons.map((x) => x.code)], [false, 'static', ['PLANE_OFFSET']], "the checker's verdict");
});

t.test('the probe reads a writeback capture: once, twice, neither', async (t) => {
  const W = 16;
  const H = 12;
  const k = 8;
  t.equal(classifyCapture((_x, y) => probeRowColour(y + k), W, H, k).verdict, 'honoured', 'rows k on: offsets read once');
  t.equal(classifyCapture((_x, y) => probeRowColour(y + 2 * k), W, H, k).verdict, 'twice', 'rows 2k on: applied twice (stock vkms)');
  const neither = classifyCapture((x, y) => (x === 3 && y === 5 ? 0 : probeRowColour(y + k)), W, H, k);
  t.equal(neither.verdict, 'neither', 'one pixel off: neither');
  t.match(neither.detail, /\(3,5\)/, 'the detail names the first pixel that differs');
  t.not(probeRowColour(1), probeRowColour(257), 'row colours are distinct beyond 256 rows');

  const m = model();
  const fact = await probePlaneOffsets(m);
  t.same([fact.honoured, fact.source], [true, 'assumed'], 'a recorded model cannot be probed: assumed, as documented');
  t.match(fact.detail, /not probed: no open device/, 'and says why');
  // an "open" device (never touched: the probe looks for a writeback connector first)
  const noWb = new KmsDeviceModel({ path: '/dev/dri/card9', driver: 'x', resources: { ...m.resources, connectors: m.resources.connectors.filter((c) => !c.writeback) } }, {} as Device);
  const f2 = await probePlaneOffsets(noWb);
  t.same([f2.honoured, f2.source], [true, 'assumed'], 'no writeback connector: assumed honoured');
  t.match(f2.detail, /no writeback connector/, 'and says so');
});

t.test("wl_shm's defaults come from the model", async (t) => {
  const m = model();
  const d = shmDefaults(m);
  t.ok(d.formats.includes(XR24) && d.formats.includes(AR24) && d.formats.includes(RG16), "the primary plane's formats");
  t.ok(d.formats.includes(fourcc('XBGR8888')), "and the copy's CONVERTIBLE_FORMATS");
  t.equal(d.coherent, true, 'the recorded vkms is coherent');
  t.equal(d.planeOffsets, true, 'plane offsets: as the model says (assumed honoured)');

  const server = new WaylandServer();
  const udmabuf = {} as UdmabufAllocator; // only held by the options here
  m.setPlaneOffsets({ honoured: false, source: 'probe', detail: 'twice' });
  const shm = installShm(server, { model: m, zeroCopy: { udmabuf } });
  t.equal(shm.options.zeroCopy?.planeOffsets, false, 'installShm({ model }): plane offsets from the probed model');
  t.equal(shm.options.zeroCopy?.coherent, true, 'coherence from the model');
  t.ok(shm.formats.includes(RG16) && shm.formats.includes(fourcc('XBGR8888')), 'formats from the model');
  shm.close();
  const over = installShm(server, { model: m, formats: [], zeroCopy: { udmabuf, planeOffsets: true, coherent: false } });
  t.same([over.options.zeroCopy?.planeOffsets, over.options.zeroCopy?.coherent], [true, false], 'what the caller passes overrides the model');
  t.same(over.formats, [AR24, XR24], 'formats: [] overrides too');
  over.close();
  server.close();
});

t.test('a pair the kernel refused leaves the next scanout tranche sent to the client', async (t) => {
  const m = model();
  const info = scanoutDeviceFromLive(m);
  const crtcId = m.resources.crtcs[0]!.id;
  const primary = info.planes.find((p) => p.type === 'primary')!.id;
  // a kernel that refuses AddFB2 of XRGB8888 (as a driver might for a pair IN_FORMATS lists)
  const kernel: ScanoutKernel = {
    counts: { imports: 0, addfb2: 0, testOnly: 0 },
    framebuffer: (_k, b) => (b.format === XR24 ? { ok: false, stage: 'ADDFB2', error: new SystemError('AddFB2 refused', { code: 'EINVAL', errno: 22, syscall: 'DRM_IOCTL_MODE_ADDFB2' }) } : { ok: true }),
    testOnly: () => ({ ok: true }),
    forget: () => undefined,
    close: () => undefined,
  };
  const checker = new ScanoutChecker(info, { kernel, mode: { width: 1024, height: 768 } });
  const presenter = { crtcId, checker };

  const server = new WaylandServer();
  const surfaces: ServerResource<'wl_surface'>[] = [];
  server.createGlobal('wl_compositor', 4, (res) => res.implement({ create_surface: ({ id }) => void surfaces.push(id) }));
  const dmabufGlobal = LinuxDmabuf.forKmsDevice(server, m, { presenter, importer: acceptAllImporter });
  const spec = dmabufGlobal.surfaceFeedback(true);
  t.equal(spec.tranches[0]!.device, m.devId, 'the scanout tranche targets the KMS device');
  const { fd } = server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  const { registry, globals } = await conn.globals();
  const compositor = conn.bind(registry, globals.find((x) => x.interface === 'wl_compositor')!, 'wl_compositor', 4);
  const client = await ClientDmabuf.bind(conn, { registry, globals });
  const surface = compositor.request('create_surface', {});
  const watch = await client.surfaceFeedback(surface);
  await conn.roundtrip();
  dmabufGlobal.setScanoutEligible(surfaces[0]!, true);
  await conn.roundtrip();
  const scanoutPairs = () => watch.current.tranches.filter((tr) => tr.scanout).flatMap((tr) => [...tr.formats].map((p) => `${p.format}/${p.modifier}`));
  t.ok(scanoutPairs().includes(`${XR24}/${DRM_FORMAT_MOD_LINEAR}`), 'before: XRGB8888 LINEAR is in the scanout tranche');

  const v = checker.checkScanout(dmabuf(0), primary, { crtc: crtcId });
  t.same([v.ok, v.reasons[0]?.code], [false, 'ADDFB2'], 'the kernel refused the pair (AddFB2)');
  t.ok(checker.knownBad.has(XR24, DRM_FORMAT_MOD_LINEAR, primary), "the presenter's known-bad table learned it");
  await conn.roundtrip();
  t.notOk(scanoutPairs().includes(`${XR24}/${DRM_FORMAT_MOD_LINEAR}`), 'after: the pair is gone from the scanout tranche the client got (sent when the table learned it)');
  t.ok(scanoutPairs().includes(`${AR24}/${DRM_FORMAT_MOD_LINEAR}`), 'the other pairs stay');

  watch.close();
  client.close();
  conn.close();
  dmabufGlobal.close();
  server.close();
});
