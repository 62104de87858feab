// The README's example ("A buffer on the screen, with the public API only") is run as written, in
// a child process, against vkms: it must exit 0, and the screen it leaves (its framebuffer closed
// with CLOSEFB stays on the primary plane) must show its colour in a writeback capture. The only
// change made to the text is where 'primebuf' and its subpaths resolve: the files this checkout's
// package.json "exports" names for them.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DRM_FORMAT_MOD_LINEAR, fourcc, preferredMode, readResources } from '../../src/index.js';
import { DumbBuffer } from '../../src/alloc/index.js';
import { Framebuffer, PropertyBlob, addWriteback } from '../../src/kms/index.js';
import { packageRoot } from '../../src/native.js';
import { findDriver, openDriver } from './devices-util.js';
import { disableAll } from './kms-util.js';
import { kernelFramebuffers, leakFree } from './leak.js';

const EXAMPLE_COLOUR = 0x2060c0; // what the README's example fills the screen with (RGB)

/** `from 'primebuf'` and `from 'primebuf/<area>'` pointed at the files package.json exports for them. */
function resolvePackageImports(source: string): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { exports: Record<string, { default?: string }> };
  return source.replace(/from 'primebuf(\/[\w-]+)?';/g, (whole, sub: string | undefined) => {
    const target = pkg.exports[`.${sub ?? ''}`]?.default;
    if (!target) throw new Error(`${whole}: package.json exports no such path`);
    return `from '${pathToFileURL(join(packageRoot, target)).href}';`;
  });
}

function readmeExample(): string {
  const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
  const marker = readme.indexOf('<!-- readme-example: scanout -->');
  if (marker < 0) throw new Error('README.md has no <!-- readme-example: scanout --> block');
  const start = readme.indexOf('```js\n', marker);
  const end = readme.indexOf('\n```', start + 6);
  return readme.slice(start + 6, end + 1);
}

leakFree(t, 'the README example puts a dumb buffer on the primary plane with one atomic commit', async (t) => {
  const source = readmeExample();
  t.match(source, /from 'primebuf';/, 'the example imports the package root');
  t.notMatch(source.replace(/from 'primebuf(\/[\w-]+)?';/g, ''), /from '/, 'and its subpath exports, nothing else');
  t.notMatch(source, /from '\.|src\//, 'and nothing private');
  const info = findDriver('vkms');
  t.ok(info, 'vkms is present');
  const dir = mkdtempSync(join(tmpdir(), 'primebuf-readme-'));
  const file = join(dir, 'example.mjs');
  writeFileSync(file, resolvePackageImports(source));
  const before = kernelFramebuffers();
  const run = spawnSync(process.execPath, [file], { env: { ...process.env, CARD: info!.path }, encoding: 'utf8', timeout: 120_000 });
  rmSync(dir, { recursive: true, force: true });
  t.equal(run.status, 0, `the example exits 0 (stderr: ${run.stderr.trim().slice(0, 400)})`);
  t.match(run.stdout, /^\d+x\d+ on plane \d+ at vblank \d+\n$/, 'and prints where its buffer went');
  const after = kernelFramebuffers();
  const kept = Object.values(after).flat().length - Object.values(before).flat().length;
  t.equal(kept, 1, 'one framebuffer outlives the example (closed with CLOSEFB, still on the plane)');

  // What is on the screen now: capture the CRTC's output through Writeback-1.
  const vkms = openDriver('vkms');
  try {
    const res = readResources(vkms, { probe: true });
    const crtc = res.crtcs[0]!;
    const wb = res.connectors.find((c) => c.writeback)!;
    const virt = res.connectors.find((c) => !c.writeback)!;
    const mode = preferredMode(virt)!;
    const [W, H] = [mode.hdisplay, mode.vdisplay];
    const out = DumbBuffer.create(vkms, { width: W, height: H, bpp: 32 });
    const outMap = out.map();
    const outFb = Framebuffer.create(vkms, { width: W, height: H, format: fourcc('XRGB8888'), modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: out.handle, pitch: out.pitch }] });
    const modeBlob = PropertyBlob.fromMode(vkms, mode);
    outMap.bytes().fill(0);
    // Only the writeback connector joins the CRTC: the planes keep what the example left.
    let req = addWriteback(vkms.atomic().set(crtc.id, 'MODE_ID', modeBlob).set(crtc.id, 'ACTIVE', 1), wb.id, crtc.id, outFb);
    if (!req.check({ allowModeset: true }).ok) {
      t.comment('Writeback-1 beside Virtual-1 refused (stock vkms): capturing with Writeback-1 alone');
      req = addWriteback(vkms.atomic().set(virt.id, 'CRTC_ID', 0).set(crtc.id, 'MODE_ID', modeBlob).set(crtc.id, 'ACTIVE', 1), wb.id, crtc.id, outFb);
    }
    const { fences } = req.commitBlocking({ allowModeset: true });
    await fences[0]!.wait(20_000);
    fences[0]!.close();
    const px = new DataView(outMap.buffer);
    let wrong = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if ((px.getUint32(y * out.pitch + x * 4, true) & 0xffffff) !== EXAMPLE_COLOUR) wrong++;
    t.equal(wrong, 0, `all ${W * H} captured pixels are the example's colour`);
    disableAll(vkms, res); // the plane lets go of the example's framebuffer; the kernel frees it
    outMap.close();
    outFb.close();
    out.close();
    modeBlob.close();
  } finally {
    vkms.close();
  }
});
