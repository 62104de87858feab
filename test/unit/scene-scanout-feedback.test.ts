// A scene surface's scanout tranche follows its outcome in the scene (sceneScanoutTrancheWanted,
// LinuxDmabuf.reportScanout with a SceneSurfaceResult): on a plane it stays offered; composed for
// a reason re-allocation could fix (a plane refused the format, modifier, ...; the scene's
// TEST_ONLY) it is offered; composed for the scene's own reasons (NO_PLANE_LEFT, Z_ORDER, ALPHA,
// SOLID_FILL, NOT_COHERENT) or reasons nothing fixes, it is not. Changes are debounced like
// verdicts, and a real client sees the tranche's scanout flag come and go.
import t from 'tap';
import { DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import { LinuxDmabuf } from '../../src/wayland/linux-dmabuf.js';
import { WaylandConnection, WaylandServer, type ServerResource } from '../../src/wayland/index.js';
import { ClientDmabuf } from '../../src/client/index.js';
import { reason } from '../../src/scanout/reasons.js';
import { ScanoutTrancheDebounce, sceneScanoutTrancheWanted } from '../../src/scanout/debounce.js';
import type { SceneSurfaceResult } from '../../src/scanout/scene-types.js';

const XR24 = fourcc('XRGB8888');
const NV12 = fourcc('NV12');
const PRIMARY = 31;
const OVERLAY = 40;
const CURSOR = 50;

const onPlane: SceneSurfaceResult = { id: 1, path: 'plane', plane: OVERLAY, reasons: [] };
// no plane takes it: the overlay and the primary refuse its format, the cursor its size too
const wrongFormat: SceneSurfaceResult = {
  id: 1,
  path: 'composed',
  plane: PRIMARY,
  reasons: [
    reason('FORMAT', 'plane 31 does not take NV12', { plane: PRIMARY, format: NV12 }),
    reason('FORMAT', 'plane 40 does not take NV12', { plane: OVERLAY, format: NV12 }),
    reason('FORMAT', 'plane 50 does not take NV12', { plane: CURSOR, format: NV12 }),
    reason('SIZE', '640x480 is outside the cursor limits', { plane: CURSOR }),
  ],
};
// a plane would take it, but the surfaces around it hold them all (the planes' refusals follow, for the log)
const noPlaneLeft: SceneSurfaceResult = {
  id: 1,
  path: 'composed',
  plane: PRIMARY,
  reasons: [reason('NO_PLANE_LEFT', 'every plane that takes it is used'), reason('FORMAT', 'plane 50 does not take it', { plane: CURSOR })],
};
const testOnly: SceneSurfaceResult = {
  id: 1,
  path: 'composed',
  plane: PRIMARY,
  reasons: [reason('TEST_ONLY', 'the atomic TEST_ONLY of the scene with it on a plane was refused', { errno: 'EINVAL' }), reason('SIZE', 'cursor limits', { plane: CURSOR })],
};
const sizeEverywhere: SceneSurfaceResult = {
  id: 1,
  path: 'composed',
  reasons: [reason('SIZE', 'outside the limits', { plane: PRIMARY }), reason('FORMAT', 'no', { plane: OVERLAY }), reason('SIZE', 'outside the limits', { plane: OVERLAY })],
};

t.test('the wanted state from a scene outcome', async (t) => {
  t.equal(sceneScanoutTrancheWanted(onPlane), true, 'on a plane: keep the tranche');
  t.equal(sceneScanoutTrancheWanted(wrongFormat), true, 'composed for the format: a plane would take another allocation (the cursor SIZE does not veto the primary)');
  t.equal(sceneScanoutTrancheWanted(testOnly), true, "composed because the scene's TEST_ONLY refused it: fixable");
  t.equal(sceneScanoutTrancheWanted(noPlaneLeft), false, 'composed for lack of a free plane: re-allocation cannot help');
  t.equal(sceneScanoutTrancheWanted(sizeEverywhere), false, 'every plane refuses it for something unfixable');
  for (const code of ['Z_ORDER', 'ALPHA', 'SOLID_FILL', 'NOT_COHERENT'] as const) {
    t.equal(sceneScanoutTrancheWanted({ path: 'composed', reasons: [reason(code, code)] }), false, `${code}: not fixable`);
  }
  t.equal(sceneScanoutTrancheWanted({ path: 'composed', reasons: [] }), false, 'composed without a reason: nothing known to fix');
  t.equal(sceneScanoutTrancheWanted({ path: 'composed', reasons: [reason('MODIFIER', 'm', { plane: PRIMARY })] }), true, 'MODIFIER: fixable');
});

t.test('the debounce takes scene outcomes like verdicts', async (t) => {
  const d = new ScanoutTrancheDebounce({ holdMs: 100, minFrames: 2 });
  t.same(d.frame(noPlaneLeft, 0), { offered: false, changed: true }, 'first frame applies at once');
  t.same(d.frame(wrongFormat, 50), { offered: false, changed: false }, 'a change waits for the hold');
  t.same(d.frame(wrongFormat, 160), { offered: true, changed: true }, 'offered once it held 100 ms and 2 frames');
  t.same(d.frame(onPlane, 170), { offered: true, changed: false }, 'on a plane: still offered');
  t.equal(d.changes, 1);
});

async function setup() {
  const server = new WaylandServer();
  const surfaces: ServerResource<'wl_surface'>[] = [];
  server.createGlobal('wl_compositor', 4, (res) => res.implement({ create_surface: ({ id }) => void surfaces.push(id) }));
  const formats = FormatSet.from([[XR24, DRM_FORMAT_MOD_LINEAR]]);
  const dmabuf = new LinuxDmabuf(server, {
    mainDevice: (226n << 8n) | 128n,
    formats,
    scanout: { device: 226n << 8n, formats, plane: PRIMARY },
    scanoutDebounce: { holdMs: 1000, minFrames: 2 },
  });
  const { fd } = server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  const { registry, globals } = await conn.globals();
  const compositor = conn.bind(registry, globals.find((x) => x.interface === 'wl_compositor')!, 'wl_compositor', 4);
  const client = await ClientDmabuf.bind(conn, { registry, globals });
  const surface = compositor.request('create_surface', {});
  const watch = await client.surfaceFeedback(surface);
  await conn.roundtrip();
  const close = () => {
    watch.close();
    client.close();
    conn.close();
    dmabuf.close();
    server.close();
  };
  return { dmabuf, conn, watch, surface: surfaces[0]!, close };
}

const scanoutOffered = (w: { current: { tranches: readonly { scanout: boolean }[] } }) => w.current.tranches.some((tr) => tr.scanout);

t.test('reportScanout with scene results: the client sees the scanout tranche follow', async (t) => {
  const s = await setup();
  t.teardown(s.close);
  t.notOk(scanoutOffered(s.watch), 'before any frame: no scanout tranche');
  let now = 0;
  const frame = async (r: SceneSurfaceResult, dt: number) => {
    now += dt;
    const offered = s.dmabuf.reportScanout(s.surface, r, now);
    await s.conn.roundtrip();
    return offered;
  };
  t.equal(await frame(wrongFormat, 16), true, 'composed for its format: offered at once (first frame)');
  t.ok(scanoutOffered(s.watch), 'the client sees the scanout tranche');
  t.ok(s.dmabuf.isScanoutEligible(s.surface));
  t.equal(await frame(onPlane, 16), true, 'then on a plane: still offered');
  const dones = s.watch.dones;
  t.equal(await frame(noPlaneLeft, 16), true, 'no plane left: not withdrawn at once');
  t.equal(await frame(noPlaneLeft, 600), true, '600 ms into the hold');
  t.equal(s.watch.dones, dones, 'nothing sent meanwhile');
  t.equal(await frame(noPlaneLeft, 600), false, 'withdrawn after over 1 s and 2 frames');
  t.notOk(scanoutOffered(s.watch), 'the client sees the tranche withdrawn');
  t.ok(s.watch.dones > dones, 'a new feedback was sent');
  t.equal(await frame(testOnly, 16), false, 'fixable again: the hold starts');
  t.equal(await frame(onPlane, 1100), true, 'offered again once it held');
  t.ok(scanoutOffered(s.watch), 'the client sees the tranche back');
});
