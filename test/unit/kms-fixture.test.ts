// Host tests on the device description recorded in the vkms guest (test/fixtures/
// vkms-devices.json, written by `primebuf devices --json` there): its shape is what the CLI
// promises, the plane format sets parse back into FormatSets, and the facts the rest of
// primebuf relies on about vkms hold in it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import type { DeviceJSON } from '../../src/kms/describe.js';
import { decodeInFormats, encodeInFormats } from '../../src/kms/in-formats.js';
import { makeDev } from '../../src/kms/discovery.js';
import { packageRoot } from '../../src/native.js';

const fixture = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'vkms-devices.json'), 'utf8')) as { devices: DeviceJSON[] };
const vkms = fixture.devices.find((d) => d.version?.name === 'vkms')!;

t.test('the recording has vkms (KMS) and vgem (card + render, no KMS)', async (t) => {
  t.ok(vkms, 'vkms present');
  t.equal(vkms.nodeType, 'primary');
  t.equal(vkms.renderNode, null);
  t.equal(vkms.devId, Number(makeDev(vkms.major, vkms.minor)), 'devId is the dev_t of major:minor');
  const vgem = fixture.devices.filter((d) => d.version?.name === 'vgem');
  t.same(vgem.map((d) => d.nodeType).sort(), ['primary', 'render']);
  t.ok(vgem.every((d) => d.kms === null || d.kms === undefined), 'vgem has no KMS');
  t.same(vkms.clientCaps, ['ATOMIC', 'UNIVERSAL_PLANES', 'WRITEBACK_CONNECTORS']);
  t.same(vkms.prime, { import: true, export: true });
});

t.test('planes: types, IN_FORMATS as FormatSet JSON that parses back', async (t) => {
  const k = vkms.kms!;
  const types = k.planes.map((p) => p.type);
  t.equal(types.filter((x) => x === 'primary').length, 1);
  t.equal(types.filter((x) => x === 'cursor').length, 1);
  t.ok(types.filter((x) => x === 'overlay').length >= 3, 'overlays enabled');
  for (const p of k.planes) {
    const set = FormatSet.fromJSON(p.formats);
    t.ok(p.hasInFormats, `plane ${p.id} had IN_FORMATS`);
    t.ok(set.has(fourcc('XRGB8888'), DRM_FORMAT_MOD_LINEAR), `plane ${p.id} takes XRGB8888/LINEAR`);
    t.same(set.toJSON(), p.formats, 'JSON round trip is exact');
    // the blob codec reproduces the same set from the pairs
    t.ok(FormatSet.from(decodeInFormats(encodeInFormats(set))).equals(set), 'IN_FORMATS codec round trip');
    t.same(p.possibleCrtcs, k.crtcs.map((c) => c.id), 'every plane can use the one CRTC');
    t.equal(p.properties.type!.enumValue, p.type[0]!.toUpperCase() + p.type.slice(1));
  }
});

t.test('connectors, writeback and limits as recorded', async (t) => {
  const k = vkms.kms!;
  t.same(k.connectors.map((c) => c.writeback), [false, true]);
  const wb = k.connectors.find((c) => c.writeback)!;
  t.ok(wb.writebackFormats!.includes('XR24'));
  t.ok('WRITEBACK_OUT_FENCE_PTR' in wb.properties && 'WRITEBACK_FB_ID' in wb.properties);
  t.same([k.minWidth, k.maxWidth, k.minHeight, k.maxHeight], [10, 8192, 10, 8192]);
  t.same([k.cursorWidth, k.cursorHeight], [512, 512]);
  t.ok('OUT_FENCE_PTR' in k.crtcs[0]!.properties && 'MODE_ID' in k.crtcs[0]!.properties);
});
