// The surface's scanout tranche follows its scanout verdicts (LinuxDmabuf.reportScanout): offered
// while the buffer is scanned out or re-allocation could get it there, withdrawn when it could
// not, each change only after the debounce held; and the pairs a KnownBadTable learned are pruned
// from the tranche (refreshFeedback re-sends only what changed). Seen from a real client.
import t from 'tap';
import { DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import { LinuxDmabuf } from '../../src/wayland/linux-dmabuf.js';
import { WaylandConnection, WaylandServer, type ServerResource } from '../../src/wayland/index.js';
import { ClientDmabuf } from '../../src/client/index.js';
import { KnownBadTable } from '../../src/scanout/known-bad.js';
import type { Verdict } from '../../src/scanout/reasons.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const MAIN_DEV = (226n << 8n) | 128n;
const KMS_DEV = 226n << 8n;
const PLANE = 31;
const formats = FormatSet.from([[XR24, DRM_FORMAT_MOD_LINEAR], [AR24, DRM_FORMAT_MOD_LINEAR]]);

const direct: Verdict = { ok: true, reasons: [], notes: [] };
const wrongFormat: Verdict = { ok: false, reasons: [{ code: 'FORMAT', fixable: true, detail: 'not in IN_FORMATS' }], notes: [] };
const needsScaling: Verdict = { ok: false, reasons: [{ code: 'SCALING', fixable: false, detail: 'the plane cannot scale' }], notes: [] };

async function setup(knownBad?: KnownBadTable) {
  const server = new WaylandServer();
  const surfaces: ServerResource<'wl_surface'>[] = [];
  server.createGlobal('wl_compositor', 4, (res) => res.implement({ create_surface: ({ id }) => void surfaces.push(id) }));
  const dmabuf = new LinuxDmabuf(server, {
    mainDevice: MAIN_DEV,
    formats,
    scanout: { device: KMS_DEV, formats, plane: PLANE, ...(knownBad ? { knownBad } : {}) },
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
  return { server, dmabuf, conn, watch, surface: surfaces[0]!, close };
}

const scanoutOffered = (w: { current: { tranches: readonly { scanout: boolean }[] } }) => w.current.tranches.some((tr) => tr.scanout);

t.test('verdicts move the scanout tranche, debounced', async (t) => {
  const s = await setup();
  let now = 0;
  const frame = async (v: Verdict | undefined, dt = 16) => {
    now += dt;
    const offered = s.dmabuf.reportScanout(s.surface, v, now);
    await s.conn.roundtrip();
    return offered;
  };
  t.equal(await frame(wrongFormat), true, 'first frame: a fixable refusal offers the tranche at once');
  t.ok(scanoutOffered(s.watch), 'the client sees the scanout tranche');
  const dones = s.watch.dones;
  t.equal(await frame(direct), true, 'scanned out: still offered');
  // The hold counts from the first frame that wants the change.
  t.equal(await frame(needsScaling, 16), true, 'scaling (re-allocation cannot help): not withdrawn at once');
  t.equal(await frame(needsScaling, 500), true, '500 ms into the hold');
  t.equal(await frame(needsScaling, 400), true, '900 ms: still within 1 s');
  t.equal(s.watch.dones, dones, 'nothing was sent meanwhile');
  t.equal(await frame(needsScaling, 200), false, 'withdrawn once it held for over 1 s and 2 frames');
  t.notOk(scanoutOffered(s.watch), 'the client sees the tranche withdrawn');
  t.equal(await frame(direct, 16), false, 'one good frame does not bring it back');
  t.equal(await frame(needsScaling, 2000), false, 'a flap back resets the hold');
  t.equal(await frame(undefined, 2000), false, 'not a candidate (e.g. not fullscreen): not offered');
  t.equal(await frame(direct, 600), false, 'direct again: the hold starts');
  t.equal(await frame(direct, 600), false, '600 ms in');
  t.equal(await frame(direct, 600), true, 'offered again after over a second of direct scanout');
  t.ok(scanoutOffered(s.watch));
  s.close();
});

t.test('the known-bad table prunes the scanout tranche', async (t) => {
  const knownBad = new KnownBadTable();
  const s = await setup(knownBad);
  s.dmabuf.setScanoutEligible(s.surface, true);
  await s.conn.roundtrip();
  const scan = () => s.watch.current.tranches.find((tr) => tr.scanout)!;
  t.ok(scan().formats.equals(formats), 'both pairs offered for scanout');
  const dones = s.watch.dones;
  s.dmabuf.refreshFeedback();
  await s.conn.roundtrip();
  t.equal(s.watch.dones, dones, 'refresh with nothing learned sends nothing');
  knownBad.add({ format: AR24, modifier: DRM_FORMAT_MOD_LINEAR, plane: PLANE, reason: { code: 'TEST_ONLY', fixable: true, errno: 'EINVAL', detail: 'TEST_ONLY: EINVAL' }, taughtBy: 'a client buffer' });
  s.dmabuf.refreshFeedback();
  await s.conn.roundtrip();
  t.equal(s.watch.dones, dones + 1, 'the feedback was re-sent once');
  t.ok(scan().formats.equals(FormatSet.from([[XR24, DRM_FORMAT_MOD_LINEAR]])), 'ARGB8888 is no longer offered for scanout');
  const main = s.watch.current.tranches.find((tr) => !tr.scanout)!;
  t.ok(main.formats.has(AR24, DRM_FORMAT_MOD_LINEAR), 'it stays in the main device tranche (the GPU can still texture it)');
  s.close();
});
