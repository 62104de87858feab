// Render-node constraints from EGL's dma-buf import queries (src/constraints/egl.ts): the
// conversion of a query result (injected) into a FormatSet, external-only pairs, and the
// declared fallback when the query cannot answer.
import t from 'tap';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import { cpuConstraint, liveRenderNodeConstraint, merge, type EglDmabufFormatsRaw } from '../../src/constraints/index.js';
import { eglFormatSets, eglRenderNodeConstraint, queryEglDmabufFormats } from '../../src/constraints/egl.js';
import { EglError, NativeUnavailableError, SystemError } from '../../src/errors.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const NV12 = fourcc('NV12');
const Y_TILED = 0x0100000000000002n; // I915_FORMAT_MOD_Y_TILED
const CCS = 0x0100000000000004n; // I915_FORMAT_MOD_Y_TILED_CCS

// Shaped like an Intel iris answer: tiled + LINEAR for RGB, NV12 external-only for one modifier,
// plus a format with no modifier list (implicit only, as kms_swrast answers for every format).
const iris: EglDmabufFormatsRaw = {
  platform: 'device',
  vendor: 'Mesa Project',
  version: '1.5',
  driver: 'iris',
  formats: [
    { format: XR24, modifiers: [{ modifier: DRM_FORMAT_MOD_LINEAR, externalOnly: false }, { modifier: Y_TILED, externalOnly: false }, { modifier: CCS, externalOnly: false }] },
    { format: NV12, modifiers: [{ modifier: DRM_FORMAT_MOD_LINEAR, externalOnly: true }, { modifier: Y_TILED, externalOnly: false }] },
    { format: AR24, modifiers: [] },
  ],
};

t.test('eglFormatSets: every pair, external-only pairs apart, implicit-only formats as LINEAR', async (t) => {
  const s = eglFormatSets(iris);
  t.ok(s.all.equals(FormatSet.from([[XR24, DRM_FORMAT_MOD_LINEAR], [XR24, Y_TILED], [XR24, CCS], [NV12, DRM_FORMAT_MOD_LINEAR], [NV12, Y_TILED], [AR24, DRM_FORMAT_MOD_LINEAR]])), `all: ${s.all}`);
  t.ok(s.externalOnly.equals(FormatSet.of(NV12, DRM_FORMAT_MOD_LINEAR)), `externalOnly: ${s.externalOnly}`);
  t.same(s.implicitOnly, [AR24]);
  const withInvalid = eglFormatSets({ ...iris, formats: [{ format: XR24, modifiers: [{ modifier: DRM_FORMAT_MOD_INVALID, externalOnly: false }] }] });
  t.ok(withInvalid.all.equals(FormatSet.of(XR24, DRM_FORMAT_MOD_LINEAR)), 'DRM_FORMAT_MOD_INVALID (implicit) in the list is LINEAR too');
  t.equal(eglFormatSets({ ...iris, formats: [] }).all.size, 0, 'an empty answer is an empty set');
});

t.test('eglRenderNodeConstraint: texture keeps external-only pairs (recorded), render leaves them out', async (t) => {
  const tex = eglRenderNodeConstraint('renderD128', iris, 'texture', { pitchAlign: 64 });
  t.equal(tex.usage, 'texture');
  t.ok(tex.formats!.has(NV12, DRM_FORMAT_MOD_LINEAR), 'NV12 LINEAR can be sampled');
  t.ok(tex.externalOnly?.equals(FormatSet.of(NV12, DRM_FORMAT_MOD_LINEAR)), 'and is recorded as external-only');
  t.equal(tex.modifiers, undefined, 'no blanket LINEAR-only modifier list');
  t.equal(tex.pitchAlign, 64, 'declared fields the query does not give are kept');
  t.match(tex.source, /^EGL dma-buf import query \(iris, Mesa Project, device platform\)/);
  t.match(tex.source, /1 external-only pairs \(sampling only\)/);
  t.match(tex.source, /1 formats with the implicit modifier only, recorded as LINEAR/);
  const ren = eglRenderNodeConstraint('renderD128', iris, 'render');
  t.notOk(ren.formats!.has(NV12, DRM_FORMAT_MOD_LINEAR), 'NV12 LINEAR is not renderable');
  t.ok(ren.formats!.has(NV12, Y_TILED), 'NV12 Y_TILED is');
  t.equal(ren.externalOnly, undefined);
  t.match(ren.source, /external-only pairs left out/);
  // With a CPU mapping (LINEAR only) the merge keeps the LINEAR pairs EGL imports.
  const m = merge(tex, cpuConstraint('write'));
  t.ok(m.ok, 'texture + cpu merge');
  t.ok(m.set.pairs()!.equals(FormatSet.from([[XR24, DRM_FORMAT_MOD_LINEAR], [NV12, DRM_FORMAT_MOD_LINEAR], [AR24, DRM_FORMAT_MOD_LINEAR]])), `merged: ${m.set.pairs()}`);
});

t.test('liveRenderNodeConstraint: the query answers -> from egl', async (t) => {
  const seen: string[] = [];
  const r = await liveRenderNodeConstraint('renderD129', 'i915', { query: (p) => (seen.push(p), iris) });
  t.same(seen, ['/dev/dri/renderD129'], 'queried the node');
  t.equal(r.from, 'egl');
  t.equal(r.egl, iris);
  t.ok(r.constraint.formats!.has(XR24, CCS));
  t.equal(r.fallbackReason, undefined);
});

t.test('liveRenderNodeConstraint: typed query errors fall back to the declared description', async (t) => {
  const cases: Array<[string, Error, RegExp]> = [
    ['EglError', new EglError('eglInitialize failed for /dev/dri/renderD128 (device platform): 0x3001', 'EGL_NOT_INITIALIZED', '/dev/dri/renderD128', 0x3001), /EGL_NOT_INITIALIZED: eglInitialize failed/],
    ['raw addon error', Object.assign(new Error('lacks EGL_EXT_image_dma_buf_import_modifiers'), { code: 'EGL_NO_DMABUF_MODIFIERS' }), /EGL_NO_DMABUF_MODIFIERS/],
    ['NativeUnavailableError', new NativeUnavailableError('libEGL is not available: libEGL.so.1: cannot open shared object file'), /libEGL is not available/],
    ['SystemError', new SystemError('open: ENOENT', { code: 'ENOENT', errno: 2, syscall: 'open' }), /open: ENOENT/],
  ];
  for (const [name, err, why] of cases) {
    const r = await liveRenderNodeConstraint('renderD128', 'vgem', { query: () => { throw err; } });
    t.equal(r.from, 'declared', `${name}: declared`);
    t.same(r.constraint.modifiers, [DRM_FORMAT_MOD_LINEAR], `${name}: the declared LINEAR-only description`);
    t.equal(r.constraint.formats, undefined, `${name}: any format (vgem)`);
    t.match(r.constraint.source, /^vgem: memory-only driver, any format, LINEAR; EGL query of renderD128 failed \(/, `${name}: source names both`);
    t.match(r.fallbackReason, why, `${name}: reason`);
  }
  const bug = new TypeError('not an EGL failure');
  await t.rejects(liveRenderNodeConstraint('renderD128', 'vgem', { query: () => { throw bug; } }), bug, 'a programming error is not swallowed');
});

t.test('the real query on this host: a missing node is a SystemError, and the policy falls back', async (t) => {
  await t.rejects(queryEglDmabufFormats('/nonexistent/renderD200'), SystemError);
  await t.rejects(queryEglDmabufFormats('/dev/null'), { code: 'ENODEV' }, '/dev/null is not a DRM node');
  const r = await liveRenderNodeConstraint('renderD200', 'panfrost', { path: '/nonexistent/renderD200', usage: 'render' });
  t.equal(r.from, 'declared');
  t.equal(r.constraint.usage, 'render');
  t.match(r.constraint.source, /declared: panfrost render node, LINEAR only \(no EGL query\); EGL query of renderD200 failed/);
});
