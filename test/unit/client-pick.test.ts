// pick() on synthetic feedback: the scanout tranche wins over the main device's, the main
// device's over other tranches, the client's format and modifier order inside a tranche, what
// the client cannot allocate is skipped, and every choice or refusal says why.
import t from 'tap';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import { pickFormat as pick, trancheOrder } from '../../src/client/pick.js';
import type { DmabufFeedback, FeedbackTranche } from '../../src/client/feedback.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const NV12 = fourcc('NV12');
const X_TILED = 0x0100000000000001n;
const RENDER = (226n << 8n) | 128n;
const KMS = 226n << 8n;
const OTHER = (226n << 8n) | 129n;

function tranche(device: bigint, scanout: boolean, pairs: Array<[number, bigint]>): FeedbackTranche {
  return { device, flags: scanout ? 1 : 0, scanout, formats: FormatSet.from(pairs) };
}
function fb(tranches: FeedbackTranche[], mainDevice: bigint | null = RENDER): DmabufFeedback {
  return { source: 'feedback', mainDevice, tranches, badIndices: 0, problems: [] };
}

const renderAll = tranche(RENDER, false, [
  [XR24, DRM_FORMAT_MOD_LINEAR],
  [XR24, X_TILED],
  [AR24, DRM_FORMAT_MOD_LINEAR],
  [NV12, DRM_FORMAT_MOD_LINEAR],
]);

t.test('the scanout tranche comes first even when the server lists it later', async (t) => {
  const f = fb([renderAll, tranche(OTHER, false, [[XR24, DRM_FORMAT_MOD_LINEAR]]), tranche(KMS, true, [[AR24, DRM_FORMAT_MOD_LINEAR]])]);
  t.same(trancheOrder(f), [2, 0, 1], 'scanout, main device, others');
  const p = pick(f, { width: 640, height: 480, formats: [XR24, AR24] });
  t.ok(p.ok);
  if (!p.ok) return;
  t.equal(p.format, AR24, 'ARGB8888: the only format the plane takes');
  t.equal(p.modifier, DRM_FORMAT_MOD_LINEAR);
  t.equal(p.tranche, 2);
  t.equal(p.device, KMS, 'allocated for the KMS device');
  t.equal(p.scanout, true);
  t.same(p.reasons.map((r) => r.code), ['NOT_OFFERED', 'CHOSEN'], 'XRGB8888 not on the plane, then ARGB8888 chosen');
  t.match(p.reasons[0]!.detail, /scanout tranche 2 .*does not offer XRGB8888/);
  t.match(p.reasons[1]!.detail, /ARGB8888 as LINEAR from the scanout tranche 2/);
});

t.test('without a scanout tranche the main device is preferred over other devices', async (t) => {
  const f = fb([tranche(OTHER, false, [[AR24, DRM_FORMAT_MOD_LINEAR]]), renderAll]);
  const p = pick(f, { width: 64, height: 64, formats: [AR24, XR24] });
  t.ok(p.ok && p.tranche === 1 && p.device === RENDER && p.format === AR24 && !p.scanout, 'main-device tranche, client order ARGB first');
});

t.test("the client's format order wins inside a tranche", async (t) => {
  const f = fb([renderAll]);
  const a = pick(f, { width: 64, height: 64, formats: [XR24, AR24] });
  const b = pick(f, { width: 64, height: 64, formats: [AR24, XR24] });
  t.equal(a.ok && a.format, XR24);
  t.equal(b.ok && b.format, AR24);
});

t.test('modifiers: LINEAR by default, the client list in order, an unmakeable one skipped', async (t) => {
  const scan = tranche(KMS, true, [[XR24, X_TILED]]);
  const f = fb([scan, renderAll]);
  const lin = pick(f, { width: 64, height: 64, formats: [XR24] });
  t.ok(lin.ok && lin.tranche === 1 && lin.modifier === DRM_FORMAT_MOD_LINEAR, 'scanout only X-tiled: a LINEAR-only client falls back to the main tranche');
  t.equal(lin.reasons[0]!.code, 'NO_MODIFIER');
  t.match(lin.reasons[0]!.detail, /offers XRGB8888 only as .*the client makes LINEAR/);
  const tiled = pick(f, { width: 64, height: 64, formats: [XR24], modifiers: [X_TILED, DRM_FORMAT_MOD_LINEAR] });
  t.ok(tiled.ok && tiled.tranche === 0 && tiled.modifier === X_TILED, 'a client that makes X-tiled gets the scanout tranche');
  const noAlloc = pick(f, {
    width: 64,
    height: 64,
    formats: [XR24],
    modifiers: [X_TILED, DRM_FORMAT_MOD_LINEAR],
    canAllocate: (_f, m) => m === DRM_FORMAT_MOD_LINEAR,
  });
  t.ok(noAlloc.ok && noAlloc.tranche === 1 && noAlloc.modifier === DRM_FORMAT_MOD_LINEAR, 'no allocator for X-tiled: LINEAR from the main tranche');
  t.same(noAlloc.reasons.map((r) => [r.code, r.tranche]), [['NO_ALLOCATOR', 0], ['NO_ALLOCATOR', 1], ['CHOSEN', 1]], 'X-tiled refused in both tranches, then LINEAR');
  const implicit = pick(fb([tranche(RENDER, false, [[XR24, DRM_FORMAT_MOD_INVALID]])]), { width: 8, height: 8, formats: [XR24], modifiers: [DRM_FORMAT_MOD_INVALID] });
  t.ok(implicit.ok && implicit.modifier === DRM_FORMAT_MOD_INVALID, 'the implicit modifier when the client asks for it');
});

t.test('nothing fits: not ok, with every reason', async (t) => {
  const f = fb([tranche(KMS, true, [[AR24, X_TILED]]), tranche(RENDER, false, [[NV12, DRM_FORMAT_MOD_LINEAR]])]);
  const p = pick(f, { width: 64, height: 64, formats: [XR24, AR24] });
  t.equal(p.ok, false);
  t.same(
    p.reasons.map((r) => [r.code, r.tranche, r.format]),
    [
      ['NOT_OFFERED', 0, XR24],
      ['NO_MODIFIER', 0, AR24],
      ['NOT_OFFERED', 1, XR24],
      ['NOT_OFFERED', 1, AR24],
    ],
  );
  const empty = pick(fb([]), { width: 64, height: 64, formats: [XR24] });
  t.equal(empty.ok, false);
  t.match(empty.reasons.at(-1)!.detail, /no tranche/);
});

t.test('bad sizes and unknown formats are reasons, not exceptions', async (t) => {
  const f = fb([renderAll]);
  for (const [w, h] of [[0, 10], [10, -1], [1.5, 2], [Number.NaN, 3]] as const) {
    const p = pick(f, { width: w, height: h, formats: [XR24] });
    t.same([p.ok, p.reasons[0]!.code], [false, 'BAD_SIZE'], `${w}x${h}`);
  }
  const p = pick(f, { width: 64, height: 64, formats: [0x12345678, XR24] });
  t.ok(p.ok && p.format === XR24, 'an unknown fourcc is skipped');
  t.equal(p.reasons[0]!.code, 'UNKNOWN_FORMAT');
});

t.test('version 3 fallback: no device known, one tranche', async (t) => {
  const f: DmabufFeedback = { source: 'modifiers', mainDevice: null, tranches: [{ device: null, flags: 0, scanout: false, formats: FormatSet.from([[XR24, DRM_FORMAT_MOD_LINEAR]]) }], badIndices: 0, problems: [] };
  const p = pick(f, { width: 32, height: 32, formats: [AR24, XR24] });
  t.ok(p.ok && p.format === XR24 && p.device === null && p.tranche === 0);
});
