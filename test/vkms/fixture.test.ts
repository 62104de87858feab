// test/fixtures/vkms-devices.json stands for vkms in the host unit tests (kms-fixture, constraints,
// constraints-cli, scanout-verdict, v4l2) and in src's device-file paths: here it is compared
// field by field with `primebuf devices --json` on the live guest, so a fixture that drifted from
// the kernel (or a `devices --json` that changed shape) fails instead of feeding stale facts.
// Object and property ids are compared too: the same kernel with the same module options numbers
// them the same. What legitimately differs, and only that, is taken from the live side:
// - the current state, which depends on what ran before in this boot: the values of mutable
//   properties (MODE_ID, ACTIVE, FB_ID, CRTC_ID, SRC_*/CRTC_* sizes, DPMS, ...), a CRTC's active,
//   mode and fbId, a plane's crtcId and fbId, an encoder's or connector's crtcId, and a connector's
//   connection and modes (`unknown` and none until someone probes it; the fixture was recorded
//   before any probe). Immutable properties (IN_FORMATS, type, GAMMA_LUT_SIZE...) are compared.
// - the encoders' possible_clones under `--vkms stock` (the rig's default build marks Virtual-1
//   and Writeback-1 clonable, scripts/vm/vkms-clone.patch; the fixture is of that build).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native.js';
import { requireVkms } from './devices-util.js';

t.setTimeout(600000); // TCG guest on a shared 2-core host: slow, not stuck

requireVkms(t);

interface DeviceJson {
  path: string;
  kms?: { encoders: Array<{ id: number; possibleClones: number }>; [k: string]: unknown };
  [k: string]: unknown;
}

const fixture = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'vkms-devices.json'), 'utf8')) as { devices: DeviceJson[] };
const variant = process.env.PRIMEBUF_VM_VKMS ?? 'clone';

type Obj = Record<string, unknown>;

/** Fields of KMS objects that are current state, not description (see the top of this file). */
const STATE: Record<string, string[]> = {
  crtcs: ['active', 'mode', 'fbId'],
  planes: ['crtcId', 'fbId'],
  encoders: ['crtcId'],
  connectors: ['crtcId', 'connection', 'modes'],
};

/** The fixture as this boot's vkms build should show it, with the live current state (only that) taken over. */
function expected(live: DeviceJson[]): DeviceJson[] {
  const devices = structuredClone(fixture.devices);
  if (variant === 'stock') {
    for (const d of devices) d.kms?.encoders.forEach((e, i) => (e.possibleClones = 1 << i));
  }
  for (const d of devices) {
    const l = live.find((x) => x.path === d.path);
    if (!d.kms || !l?.kms) continue;
    for (const [list, fields] of Object.entries(STATE)) {
      const now = byId(l.kms[list]);
      for (const o of d.kms[list] as Obj[]) {
        const n = now.get(o.id as number) as Obj | undefined;
        if (!n) continue;
        for (const f of fields) if (f in n) o[f] = n[f];
        const props = o.properties as Record<string, Obj> | undefined;
        const nprops = n.properties as Record<string, Obj> | undefined;
        for (const [name, p] of Object.entries(props ?? {})) {
          const np = nprops?.[name];
          if (p.immutable === false && np) {
            p.value = np.value;
            if ('enumValue' in np) p.enumValue = np.enumValue;
          }
        }
      }
    }
  }
  return devices;
}

/** Objects of a KMS list by id (crtcs, connectors, encoders, planes). */
function byId(list: unknown): Map<number, unknown> {
  return new Map((list as Array<{ id: number }>).map((o) => [o.id, o]));
}

t.test('the vkms fixture is what `primebuf devices --json` says on the live guest, field by field', async (t) => {
  // No DRM node is open here: `devices` is DRM master on vkms, as when the fixture was recorded.
  const r = spawnSync(process.execPath, [join(packageRoot, 'dist', 'src', 'cli.js'), 'devices', '--json'], { encoding: 'utf8', timeout: 120000 });
  t.equal(r.status, 0, `primebuf devices --json exits 0 ${r.stderr}`);
  const live = (JSON.parse(r.stdout) as { devices: DeviceJson[] }).devices;
  const want = expected(live);
  t.same(live.map((d) => d.path), want.map((d) => d.path), 'the same DRM nodes, in the same order');
  for (const w of want) {
    const l = live.find((d) => d.path === w.path);
    if (!l) continue; // reported above
    const keys = [...new Set([...Object.keys(w), ...Object.keys(l)])].filter((k) => k !== 'kms');
    for (const k of keys) t.same(l[k], w[k], `${w.path} ${k}`);
    t.equal(l.kms === undefined, w.kms === undefined, `${w.path}: KMS ${w.kms ? 'present' : 'absent'}`);
    if (!w.kms || !l.kms) continue;
    for (const k of new Set([...Object.keys(w.kms), ...Object.keys(l.kms)])) {
      const wv = w.kms[k];
      const lv = l.kms[k];
      if (!Array.isArray(wv)) {
        t.same(lv, wv, `${w.path} kms.${k}`);
        continue;
      }
      const wm = byId(wv);
      const lm = byId(lv);
      t.same([...lm.keys()], [...wm.keys()], `${w.path} kms.${k}: the same object ids`);
      for (const [id, o] of wm) t.same(lm.get(id), o, `${w.path} kms.${k} id ${id}`);
    }
  }
});
