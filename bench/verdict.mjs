#!/usr/bin/env node
// Benchmark: ScanoutChecker.checkScanout per call, cached (the steady-state frame: the same
// buffer, plane and placement) against uncached (the verdict computed again: static checks,
// and with a kernel PRIME import + AddFB2 + TEST_ONLY, plus the RmFB of forgetting the buffer).
// On a machine with vkms (the VM rig: `node scripts/vkms-vm.mjs run -- node bench/verdict.mjs`)
// the uncached case asks the real kernel; elsewhere it runs the static checks on the recorded
// vkms fixture. Prints one JSON line per case. Run after `npm run build` (imports dist/).
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(join(root, 'dist', 'src', p));
const { ScanoutChecker, KmsScanoutKernel, scanoutDevicesFromDevicesJSON, scanoutDeviceFromLive, findPlane } = await dist('scanout/index.js');
const { fourcc, DRM_FORMAT_MOD_LINEAR } = await dist('formats/index.js');

function perCall(n, fn) {
  for (let i = 0; i < Math.min(n, 50); i++) fn(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

async function live() {
  const { listDevices } = await dist('kms/discovery.js');
  const { Device } = await dist('kms/device.js');
  const { readResources, preferredMode } = await dist('kms/resources.js');
  const { DumbBuffer } = await dist('alloc/backends/dumb.js');
  const { Framebuffer } = await dist('kms/framebuffer.js');
  for (const info of listDevices()) {
    if (info.nodeType !== 'primary') continue;
    const dev = Device.open(info.path);
    if (dev.version.name !== 'vkms') {
      dev.close();
      continue;
    }
    const model = scanoutDeviceFromLive(dev);
    const res = readResources(dev, { probe: true });
    const con = res.connectors.find((c) => !c.writeback);
    const mode = preferredMode(con);
    const crtc = res.crtcs[0].id;
    const primary = findPlane(model, 'primary', crtc);
    const overlay = findPlane(model, 'overlay', crtc);
    const bg = DumbBuffer.create(dev, { width: mode.hdisplay, height: mode.vdisplay, bpp: 32 });
    const bgFb = Framebuffer.create(dev, { width: mode.hdisplay, height: mode.vdisplay, format: fourcc('XRGB8888'), modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: bg.handle, pitch: bg.pitch }] });
    const kernel = new KmsScanoutKernel(dev, { crtcId: crtc, connectorId: con.id, mode, background: { planeId: primary.id, fb: bgFb } });
    const src = DumbBuffer.create(dev, { width: 256, height: 256, bpp: 32 });
    const dmabuf = src.exportDmabuf();
    const buffer = { kind: 'dmabuf', width: 256, height: 256, format: fourcc('XRGB8888'), modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: dmabuf.fd, offset: 0, stride: src.pitch }] };
    return {
      kernel: 'vkms',
      checker: new ScanoutChecker(model, { kernel, mode: { width: mode.hdisplay, height: mode.vdisplay } }),
      buffer,
      plane: overlay.id,
      placement: { crtc, dst: { x: 64, y: 64, width: 256, height: 256 } },
      close: () => {
        for (const r of [dmabuf, src, bgFb, bg, dev]) r.close();
      },
    };
  }
  return undefined;
}

function fixture() {
  const doc = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'vkms-devices.json'), 'utf8'));
  const model = scanoutDevicesFromDevicesJSON(doc).find((d) => d.driver === 'vkms');
  const crtc = model.crtcs[0].id;
  return {
    kernel: 'none (recorded vkms fixture, static checks)',
    checker: new ScanoutChecker(model, { mode: { width: 1024, height: 768 } }),
    buffer: { kind: 'dmabuf', width: 256, height: 256, format: fourcc('XRGB8888'), modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ fd: -1, offset: 0, stride: 1024 }] },
    plane: findPlane(model, 'overlay', crtc).id,
    placement: { crtc, dst: { x: 64, y: 64, width: 256, height: 256 } },
    close: () => {},
  };
}

const haveDri = existsSync('/dev/dri');
const s = (haveDri && (await live().catch(() => undefined))) || fixture();
const { checker, buffer, plane, placement } = s;
const first = checker.checkScanout(buffer, plane, placement);
if (!first.ok) throw new Error(`the bench buffer is refused: ${JSON.stringify(first.reasons.map((r) => r.detail))}`);
const nUncached = s.kernel === 'vkms' ? 300 : 20000;
const uncached = perCall(nUncached, () => {
  checker.forget(buffer);
  checker.checkScanout(buffer, plane, placement);
});
const counts = checker.kernelCounts;
const cached = perCall(200000, () => checker.checkScanout(buffer, plane, placement));
const after = checker.kernelCounts;
if (after.testOnly !== counts.testOnly || after.addfb2 !== counts.addfb2) throw new Error('cached calls reached the kernel');
checker.close();
s.close();
console.log(JSON.stringify({ bench: 'checkScanout', case: 'cached', us_per_call: +cached.toFixed(3), baseline: 'uncached', baseline_us: +uncached.toFixed(3), kernel: s.kernel }));
console.log(JSON.stringify({ bench: 'checkScanout', case: 'uncached', us_per_call: +uncached.toFixed(3), kernel: s.kernel, kernel_calls_per_uncached: s.kernel === 'vkms' ? 'import + AddFB2 + TEST_ONLY + RmFB' : 'none' }));
