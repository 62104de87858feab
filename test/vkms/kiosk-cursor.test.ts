// The kiosk's default cursor on vkms (enable_cursor=1, cursor size 512x512): its buffer is a dumb
// buffer of the display device the kiosk owns (ARGB8888, 256x256: the device's size capped), the
// arrow in it as the pixels read back through its dma-buf show, its GEM handle named as the import
// (no second PRIME import), the cursor plane's verdict (TEST_ONLY) accepts it at the centre of the
// mode, and closing the kiosk leaves no fd, GEM handle or framebuffer behind. With hideCursor
// nothing is allocated. The image itself: test/unit/kiosk-cursor.test.ts.
import t from 'tap';
import { fourcc } from '../../src/formats/index.js';
import { Mapping } from '../../src/dmabuf/mapping.js';
import { findPlane, scanoutDeviceFromLive, type ScanoutBuffer } from '../../src/scanout/index.js';
import { liveGemHandleCount } from '../../src/kms/gem.js';
import { startKiosk } from '../../compositor-example/kiosk.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';
import { leakFree, type TapTest } from './leak.js';

t.setTimeout(600000);

const vkms = requireVkms(t);
privateRuntimeDir(t, 'primebuf-kiosk-cursor-');

void leakFree(t as unknown as TapTest, 'the default cursor: a dumb buffer the kiosk owns, the arrow in it, accepted by the cursor plane, released at close', async (t) => {
  const kiosk = await startKiosk({ device: vkms.path, socket: 'pb-cursor' });
  try {
    const s = kiosk.cursor.sceneSurface();
    t.ok(s, 'a cursor surface');
    if (!s) return;
    t.equal(s.cursor, true);
    const b = s.content as ScanoutBuffer;
    t.equal(b.kind, 'dmabuf');
    t.equal(b.format, fourcc('ARGB8888'), 'ARGB8888');
    t.equal(b.modifier, 0n, 'LINEAR');
    t.equal(kiosk.output.resources.cursorWidth, 512, 'vkms says 512x512');
    t.same([b.width, b.height], [256, 256], 'the device cursor size, capped at 256');
    t.equal(b.imported?.device, kiosk.device, 'the GEM handle named is on the display device');
    const mode = kiosk.output.mode;
    t.same(kiosk.cursor.position, { x: Math.floor(mode.hdisplay / 2), y: Math.floor(mode.vdisplay / 2) }, 'the hotspot at the centre of the mode');
    // the pixels, read back through the dma-buf
    const plane = b.planes[0]!;
    const map = Mapping.map(plane.fd, 0, plane.stride * b.height, false);
    try {
      const px = (x: number, y: number): number => new DataView(map.buffer).getUint32(y * plane.stride + x * 4, true);
      t.equal(px(0, 0), 0xff000000, 'the tip: opaque black');
      t.equal(px(1, 3), 0xffffffff, 'inside the arrow: opaque white');
      t.equal(px(200, 200), 0, 'beyond the arrow: transparent');
    } finally {
      map.close();
    }
    // the cursor plane takes it where it goes (AddFB2 from the dumb buffer's handle, TEST_ONLY)
    const cursorPlane = findPlane(scanoutDeviceFromLive(kiosk.output.model), 'cursor', kiosk.output.crtcId);
    t.ok(cursorPlane, 'vkms has a cursor plane (enable_cursor=1)');
    const importsBefore = kiosk.device.primeImports;
    const v = kiosk.presenter.checker.checkScanout(b, cursorPlane!.id, { crtc: kiosk.output.crtcId, ...(s.src ? { src: s.src } : {}), dst: s.dst });
    t.ok(v.ok, `the cursor plane accepts it (${v.reasons.map((r) => `${r.code}: ${r.detail}`).join('; ') || 'no reason against'})`);
    t.equal(kiosk.device.primeImports, importsBefore, 'no PRIME import: the framebuffer came from the dumb buffer handle');
  } finally {
    await kiosk.close();
  }
  t.equal(kiosk.cursor.sceneSurface(), undefined, 'closed with the kiosk');
});

/** Resolves with the kiosk's first frame (black: no client), or rejects after 10 s. */
function firstFrame(k: Awaited<ReturnType<typeof startKiosk>>): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no first frame in 10 s')), 10000);
    k.onFrame(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

void leakFree(t as unknown as TapTest, '--hide-cursor: no cursor buffer at all', async (t) => {
  const before = liveGemHandleCount();
  const shown = await startKiosk({ device: vkms.path, socket: 'pb-cursor-shown' });
  await firstFrame(shown);
  const withCursor = liveGemHandleCount() - before;
  await shown.close();
  const kiosk = await startKiosk({ device: vkms.path, socket: 'pb-cursor-hidden', hideCursor: true });
  await firstFrame(kiosk);
  try {
    t.equal(kiosk.cursor.sceneSurface(), undefined, 'no cursor surface');
    t.equal(liveGemHandleCount() - before, withCursor - 1, 'one GEM handle fewer than with the cursor: its dumb buffer was never made');
  } finally {
    await kiosk.close();
  }
});
