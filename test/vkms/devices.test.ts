// Conformance: `primebuf devices --json` agrees with `drm_info -j` in the same guest on the
// vkms device's planes (ids, types, possible CRTCs, formats x modifiers), CRTCs, connectors
// (incl. writeback and its formats), encoders and size limits; discovery pairs vgem's nodes.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { packageRoot } from '../../src/native.js';
import { formatName } from '../../src/formats/index.js';
import type { DeviceJSON } from '../../src/kms/describe.js';
import { haveDebugfs, leakFree } from './leak.js';

interface DrmInfoProp {
  value: number | null;
  raw_value: number;
  data: unknown;
}
interface DrmInfoNode {
  driver: { name: string; caps: Record<string, number> };
  fb_size: { min_width: number; max_width: number; min_height: number; max_height: number };
  crtcs: Array<{ id: number; fb_id: number; mode: unknown; gamma_size: number; properties: Record<string, DrmInfoProp> }>;
  connectors: Array<{ id: number; type: number; status: number; encoders: number[]; modes: unknown[]; properties: Record<string, DrmInfoProp> }>;
  encoders: Array<{ id: number; type: number; crtc_id: number; possible_crtcs: number; possible_clones: number }>;
  planes: Array<{ id: number; possible_crtcs: number; crtc_id: number; fb_id: number; formats: number[]; properties: Record<string, DrmInfoProp> }>;
}

// drm_info first: it does not probe connectors, and neither does `primebuf devices` by default.
const drmInfo = JSON.parse(execFileSync('drm_info', ['-j'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as Record<string, DrmInfoNode>;
const ours = (JSON.parse(execFileSync(process.execPath, [join(packageRoot, 'dist', 'src', 'cli.js'), 'devices', '--json'], { encoding: 'utf8' })) as {
  devices: DeviceJSON[];
}).devices;

const vkms = ours.find((d) => d.version?.name === 'vkms' && d.nodeType === 'primary');

t.test('both tools see the vkms device', async (t) => {
  t.ok(vkms, `primebuf lists a vkms primary node (${ours.map((d) => d.path).join(', ')})`);
  t.ok(drmInfo[vkms!.path], `drm_info lists ${vkms!.path}`);
  t.ok(vkms!.kms, 'with KMS resources');
});

const theirs = drmInfo[vkms!.path]!;
const k = vkms!.kms!;
const crtcIndex = new Map(theirs.crtcs.map((c, i) => [c.id, i]));
const mask = (ids: number[]): number => ids.reduce((m, id) => m | (1 << crtcIndex.get(id)!), 0);

t.test('caps and size limits agree', async (t) => {
  for (const [name, v] of Object.entries(theirs.driver.caps)) {
    if (name in vkms!.caps!) t.equal(vkms!.caps![name], v, `cap ${name}`);
  }
  t.same(
    { minW: k.minWidth, maxW: k.maxWidth, minH: k.minHeight, maxH: k.maxHeight },
    { minW: theirs.fb_size.min_width, maxW: theirs.fb_size.max_width, minH: theirs.fb_size.min_height, maxH: theirs.fb_size.max_height },
  );
  t.equal(k.cursorWidth, theirs.driver.caps.CURSOR_WIDTH);
  t.equal(k.cursorHeight, theirs.driver.caps.CURSOR_HEIGHT);
});

t.test('planes agree: ids, types, possible CRTCs, formats x modifiers', async (t) => {
  t.same(k.planes.map((p) => p.id), theirs.planes.map((p) => p.id), 'same plane ids in the same order');
  const typeNames = ['overlay', 'primary', 'cursor'];
  for (const tp of theirs.planes) {
    const p = k.planes.find((x) => x.id === tp.id)!;
    t.equal(p.type, typeNames[tp.properties.type!.raw_value], `plane ${tp.id} type`);
    t.equal(mask(p.possibleCrtcs), tp.possible_crtcs, `plane ${tp.id} possible CRTCs`);
    t.equal(p.crtcId, tp.crtc_id);
    t.equal(p.fbId, tp.fb_id);
    const inf = tp.properties.IN_FORMATS;
    t.ok(inf && Array.isArray(inf.data), `drm_info decoded IN_FORMATS of plane ${tp.id}`);
    t.ok(p.hasInFormats, `primebuf decoded IN_FORMATS of plane ${tp.id}`);
    const want = new Set<string>();
    for (const entry of inf!.data as Array<{ modifier: number; formats: number[] }>) {
      for (const f of entry.formats) want.add(`${formatName(f)}/${BigInt(entry.modifier).toString(16)}`);
    }
    const got = new Set<string>();
    for (const f of p.formats) for (const m of f.modifiers) got.add(`${f.format}/${BigInt(m).toString(16)}`);
    t.same([...got].sort(), [...want].sort(), `plane ${tp.id} formats x modifiers`);
    t.same(Object.keys(p.properties).sort(), Object.keys(tp.properties).sort(), `plane ${tp.id} property names`);
  }
  t.ok(k.planes.some((p) => p.type === 'overlay'), 'vkms has overlay planes (enable_overlay=1)');
});

t.test('CRTCs agree', async (t) => {
  t.same(k.crtcs.map((c) => c.id), theirs.crtcs.map((c) => c.id));
  for (const tc of theirs.crtcs) {
    const c = k.crtcs.find((x) => x.id === tc.id)!;
    t.equal(c.fbId, tc.fb_id);
    t.equal(c.gammaSize, tc.gamma_size);
    t.equal(c.mode === null, tc.mode === null, `crtc ${tc.id} mode presence`);
    t.same(Object.keys(c.properties).sort(), Object.keys(tc.properties).sort(), `crtc ${tc.id} property names`);
    t.equal(c.properties.ACTIVE!.value, tc.properties.ACTIVE!.raw_value, 'ACTIVE');
  }
});

t.test('connectors agree (writeback included)', async (t) => {
  t.same(k.connectors.map((c) => c.id), theirs.connectors.map((c) => c.id));
  const status = ['', 'connected', 'disconnected', 'unknown'];
  for (const tc of theirs.connectors) {
    const c = k.connectors.find((x) => x.id === tc.id)!;
    t.equal(c.writeback, tc.type === 18, `connector ${tc.id} writeback`);
    t.equal(c.connection, status[tc.status], `connector ${tc.id} status`);
    t.same(c.encoders, tc.encoders);
    t.equal(c.modes.length, tc.modes.length, `connector ${tc.id} mode count`);
    t.same(Object.keys(c.properties).sort(), Object.keys(tc.properties).sort(), `connector ${tc.id} property names`);
    if (c.writeback) {
      const wf = tc.properties.WRITEBACK_PIXEL_FORMATS!.data as number[];
      t.same(c.writebackFormats, wf.map((f) => String.fromCharCode(f & 0xff, (f >> 8) & 0xff, (f >> 16) & 0xff, f >>> 24)), 'writeback formats');
    }
  }
  t.ok(k.connectors.some((c) => c.writeback), 'vkms has a writeback connector');
});

t.test('encoders agree', async (t) => {
  t.same(
    k.encoders.map((e) => ({ id: e.id, type: e.type, crtc: e.crtcId, possible: mask(e.possibleCrtcs), clones: e.possibleClones })),
    theirs.encoders.map((e) => ({ id: e.id, type: e.type, crtc: e.crtc_id, possible: e.possible_crtcs, clones: e.possible_clones })),
  );
});

t.test('discovery: dev_t matches the node, vgem card and render node are paired', async (t) => {
  const { statSync } = await import('node:fs');
  for (const d of ours) t.equal(BigInt(d.devId), statSync(d.path, { bigint: true }).rdev, `${d.path} devId`);
  const vgem = ours.filter((d) => d.version?.name === 'vgem');
  t.equal(vgem.length, 2, 'vgem: card + renderD');
  const render = vgem.find((d) => d.nodeType === 'render')!;
  const card = vgem.find((d) => d.nodeType === 'primary')!;
  t.equal(render.primaryNode, card.path);
  t.equal(card.renderNode, render.path);
  t.equal(vkms!.renderNode, null, 'vkms has no render node');
  t.equal(card.kms, null, 'vgem has no KMS');
});

leakFree(t, 'describing every device in-process leaves nothing open', async (t) => {
  t.ok(haveDebugfs(), 'debugfs mounted');
  const { describeDevices } = await import('../../src/kms/describe.js');
  const again = describeDevices();
  t.equal(again.length, ours.length);
});
