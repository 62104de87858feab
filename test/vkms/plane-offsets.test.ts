// Conformance: the plane-offset quirk, found by probing the display through its writeback
// connector, not by the driver's name, on both vkms behaviours of the rig: `stock` (Linux 6.12 as
// shipped: a framebuffer's plane offset is applied twice) and `offsets` (scripts/vm/
// vkms-offsets.patch: applied once). The test swaps the loaded vkms build (scripts/vm/
// vkms-variant.sh) and puts the boot's build back at the end. On each: the probe's finding; then
// a dma-buf client buffer (vgem, as a client allocates) whose plane starts 8 rows into its
// dma-buf goes through the presenter with the model's verdict device: on stock vkms it is refused
// direct scanout with the quirk's reason (PLANE_OFFSET) and copied, on the fixed build it goes
// direct; both times the writeback capture shows exactly the buffer's rows from its offset on.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc } from '../../src/formats/index.js';
import { KmsDeviceModel } from '../../src/kms/model.js';
import { probePlaneOffsets } from '../../src/kms/plane-offsets.js';
import { packageRoot } from '../../src/native.js';
import { Presenter, type ScanoutBuffer } from '../../src/scanout/index.js';
import { scanoutDeviceFromLive } from '../../src/scanout/verdict-device.js';
import { openDriver } from './devices-util.js';
import { disableAll } from './kms-util.js';
import { leakFree } from './leak.js';
import { writebackCapture } from './writeback-util.js';

t.setTimeout(600000);

const XR24 = fourcc('XRGB8888');
const MODULES = '/run/primebuf/modules';
const ROWS = 8;

function loaded(): string {
  return readFileSync(join(MODULES, 'vkms.variant'), 'utf8').trim();
}

function swap(variant: string): void {
  const r = spawnSync('sh', [join(packageRoot, 'scripts', 'vm', 'vkms-variant.sh'), variant], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`vkms-variant.sh ${variant} failed (${r.status}): ${r.stderr}`);
}

/** A per-pixel picture of buffer row y (a shifted or mis-strided read cannot match). */
const picture = (x: number, y: number): number => 0xff000000 | ((y & 0xff) << 16) | (((x * 3) ^ (y >> 8)) & 0xff) << 8 | ((x + y * 5) & 0xff);

const boot = loaded();
t.teardown(() => {
  if (loaded() !== boot) swap(boot);
});

for (const [variant, honoured] of [
  ['stock', false],
  ['offsets', true],
] as const) {
  void leakFree(t, `${variant} vkms: the probe finds plane offsets ${honoured ? 'honoured' : 'applied twice'}; a dma-buf with a plane offset goes ${honoured ? 'direct' : 'through the copy with PLANE_OFFSET'}, the capture exact`, async (t) => {
    swap(variant);
    t.equal(loaded(), variant, `the ${variant} build is loaded`);
    const vkms = openDriver('vkms');
    const owned: Array<{ close(): void }> = [];
    try {
      const model = KmsDeviceModel.read(vkms, { probe: true });
      t.same([model.planeOffsets.honoured, model.planeOffsets.source], [true, 'assumed'], 'before the probe: assumed honoured');
      const fact = await probePlaneOffsets(model);
      t.same([fact.honoured, fact.source], [honoured, 'probe'], `probed: ${fact.detail}`);
      t.match(fact.detail, honoured ? /read once/ : /applies a plane offset twice/, 'the finding, said');
      t.equal(model.planeOffsets, fact, 'the model holds the finding');

      const res = model.resources;
      const wb = writebackCapture(t, vkms, res);
      owned.push(wb);
      const info = scanoutDeviceFromLive(model);
      t.equal(info.planeOffsets?.honoured, honoured, "the verdicts' device carries it");
      const p = new Presenter({ device: vkms, crtcId: wb.crtc, connectorId: wb.connector, mode: wb.mode, model: info, extraState: (req) => wb.extraState(req) });
      // the client's buffer: a vgem dumb buffer with 2 * ROWS more rows, exported as a dma-buf;
      // the plane starts ROWS rows in (a display that adds the offset twice still reads inside it)
      const vgem = openDriver('vgem');
      owned.push(vgem);
      const dumb = DumbBuffer.create(vgem, { width: wb.W, height: wb.H + 2 * ROWS, bpp: 32 });
      owned.push(dumb);
      const dmabuf = dumb.exportDmabuf();
      owned.push(dmabuf);
      const map = dmabuf.map();
      owned.push(map);
      const dv = new DataView(map.buffer);
      dmabuf.beginCpuAccess('write');
      for (let y = 0; y < wb.H + 2 * ROWS; y++) for (let x = 0; x < wb.W; x++) dv.setUint32(y * dumb.pitch + x * 4, picture(x, y), true);
      dmabuf.endCpuAccess('write');
      const offset = ROWS * dumb.pitch;
      const buffer: ScanoutBuffer = {
        kind: 'dmabuf',
        width: wb.W,
        height: wb.H,
        format: XR24,
        modifier: DRM_FORMAT_MOD_LINEAR,
        planes: [{ fd: dmabuf.fd, offset, stride: dumb.pitch }],
        allocatedOn: vgem.devId,
        name: `vgem buffer at plane offset ${offset}`,
      };
      const v = p.checker.checkScanout(buffer, wb.primary, { crtc: wb.crtc });
      if (honoured) t.same([v.ok, v.reasons.map((r) => r.code)], [true, []], 'the verdict: direct');
      else t.same([v.ok, v.stage, v.reasons.map((r) => r.code)], [false, 'static', ['PLANE_OFFSET']], "the verdict: refused with the quirk's reason");
      wb.capture();
      const r = await p.present({ buffer });
      t.equal(r.path, honoured ? 'direct' : 'copy', `presented ${honoured ? 'direct' : 'through the copy'} (${p.explain(buffer).join('; ')})`);
      if (!honoured) t.match(p.explain(buffer).join('; '), /PLANE_OFFSET/, "the presenter's reasons name the quirk");
      await wb.check(t, r, (x, y) => picture(x, y + ROWS), `the capture shows the buffer's rows from its plane offset (${variant})`);
      p.close();
      disableAll(vkms, res);
    } finally {
      for (const o of owned.reverse()) o.close();
      vkms.close();
    }
  });
}
