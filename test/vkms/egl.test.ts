// Conformance: EGL's dma-buf import queries (native/egl.cc, libEGL loaded at run time) on the
// guest's nodes, and the render-node constraint derived from them (src/constraints/egl.ts).
// What Mesa answers in the guest: vkms (primary node only) has no EGLDevice, so its display comes
// from the GBM platform; vgem's render node is an EGLDevice with no Mesa driver of its own, and
// Mesa falls back to kms_swrast. kms_swrast lists its formats with no explicit modifier
// (implicit only), which the policy records as LINEAR. Nothing here is assumed: each answer is
// checked against the other sources (the vkms plane formats, the solve).
import t from 'tap';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import {
  describeKmsDevice,
  liveRenderNodeConstraint,
  merge,
  scanoutConstraint,
  solve,
  type EglDmabufFormatsRaw,
} from '../../src/constraints/index.js';
import { queryEglDmabufFormats } from '../../src/constraints/egl.js';
import { native } from '../../src/native.js';
import { openDriver } from './devices-util.js';
import type { NodeType } from '../../src/kms/discovery.js';

/** The path of a driver's node (found through DRM_IOCTL_VERSION: sysfs does not name vgem). */
function nodePath(driver: string, type: NodeType): string {
  const d = openDriver(driver, type);
  try {
    return d.path;
  } finally {
    d.close();
  }
}
import { leakFree } from './leak.js';

const XR24 = fourcc('XRGB8888');

function xr24Modifiers(r: EglDmabufFormatsRaw): bigint[] | undefined {
  return r.formats.find((f) => f.format === XR24)?.modifiers.map((m) => m.modifier);
}

t.test('libEGL loads at run time in the guest', async (t) => {
  t.equal(native.eglAvailable(), true);
});

leakFree(t, 'vkms card0: EGL answers through the GBM platform with kms_swrast, XRGB8888 importable', async (t) => {
  const vkms = { path: nodePath('vkms', 'primary') };
  const t0 = Date.now();
  const r = await queryEglDmabufFormats(vkms!.path);
  t.comment(`${vkms!.path}: platform ${r.platform}, ${r.vendor} ${r.version}, driver ${r.driver}, ${r.formats.length} formats, ${Date.now() - t0} ms`);
  t.equal(r.platform, 'gbm', 'vkms has no render node, so no EGLDevice: the GBM platform made the display');
  t.equal(r.driver, 'kms_swrast', "Mesa's kms_swrast drives vkms");
  const mods = xr24Modifiers(r);
  t.ok(mods, 'XRGB8888 is listed');
  t.ok(mods!.length === 0 || mods!.includes(DRM_FORMAT_MOD_LINEAR) || mods!.includes(DRM_FORMAT_MOD_INVALID), `XRGB8888 modifiers: [${mods!.map((m) => '0x' + m.toString(16)).join(', ')}] (empty = implicit only)`);
  // The constraint derived from it, and its merge with vkms's primary plane.
  const c = await liveRenderNodeConstraint('card0', 'vkms', { path: vkms!.path });
  t.equal(c.from, 'egl');
  t.ok(c.constraint.formats!.has(XR24, DRM_FORMAT_MOD_LINEAR), 'texture constraint has XRGB8888/LINEAR');
  t.match(c.constraint.source, /^EGL dma-buf import query \(kms_swrast, Mesa Project, gbm platform\)/);
  const dev = openDriver('vkms');
  try {
    const plane = scanoutConstraint(describeKmsDevice(dev), { type: 'primary' });
    const m = merge(plane, c.constraint);
    t.ok(m.ok, 'the primary plane and the texture constraint merge');
    const s = solve(m.set, { width: 640, height: 480, formats: [XR24] });
    t.ok(s.ok, 'and solve for XRGB8888');
    t.same(s.options[0]?.modifiers, [DRM_FORMAT_MOD_LINEAR], 'as LINEAR');
  } finally {
    dev.close();
  }
});

leakFree(t, "vgem renderD128: an EGLDevice; Mesa falls back to kms_swrast and answers", async (t) => {
  const vgem = { path: nodePath('vgem', 'render') };
  const c = await liveRenderNodeConstraint('renderD128', 'vgem', { path: vgem!.path });
  t.comment(`${vgem!.path}: from ${c.from}${c.egl ? `, platform ${c.egl.platform}, driver ${c.egl.driver}, ${c.egl.formats.length} formats` : `, ${c.fallbackReason}`}`);
  t.equal(c.from, 'egl', 'the query answered (no declared fallback needed)');
  t.equal(c.egl!.platform, 'device', 'through EGL_EXT_device_enumeration, matched by the render node file');
  t.equal(c.egl!.driver, 'kms_swrast');
  t.ok(xr24Modifiers(c.egl!), 'XRGB8888 is listed');
  t.ok(c.constraint.formats!.has(XR24, DRM_FORMAT_MOD_LINEAR), 'texture constraint has XRGB8888/LINEAR');
  // The same node through its primary node (card1) is the same EGLDevice: the same answer.
  const primary = { path: nodePath('vgem', 'primary') };
  {
    const again = await queryEglDmabufFormats(primary.path);
    t.equal(again.platform, 'device', `${primary.path}: matched by EGL_DRM_DEVICE_FILE_EXT`);
    t.same(again.formats.map((f) => f.format), c.egl!.formats.map((f) => f.format), 'same formats as the render node');
  }
});

leakFree(t, 'a node that is not DRM is refused before EGL sees it; repeated queries leak nothing', async (t) => {
  await t.rejects(queryEglDmabufFormats('/dev/null'), { code: 'ENODEV' });
  const vkms = { path: nodePath('vkms', 'primary') };
  for (let i = 0; i < 3; i++) await queryEglDmabufFormats(vkms.path);
  t.pass('three more queries on vkms');
});

t.test('primebuf solve on live devices says the texture constraint came from EGL', async (t) => {
  const { run } = await import('../../src/cli/solve.js');
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  let code: number;
  try {
    code = await run(['--use', 'card0:scanout', '--use', 'renderD128:texture', '--size', '640x480', '--format', 'XRGB8888', '--json']);
  } finally {
    console.log = log;
  }
  t.equal(code, 0, 'solved');
  const doc = JSON.parse(out.join('\n')) as { constraints: { members: Array<{ device: string; usage: string; source: string }> } };
  const tex = doc.constraints.members.find((m) => m.device === 'renderD128' && m.usage === 'texture');
  t.match(tex?.source, /^EGL dma-buf import query \(kms_swrast/, `source: ${tex?.source}`);
});
