// A camera unplugged mid-stream (issue 18, fault 1), for real: vivid's platform device is unbound
// from its driver while it streams (`echo vivid.0 > /sys/bus/platform/drivers/vivid/unbind`), so
// its node answers ENODEV, and bound again afterwards. CameraSource: giving a frame back
// (VIDIOC_QBUF) to the gone camera does not throw; next() rejects with a V4l2StreamError naming
// the refused ioctl; stop() does not throw. The kiosk with --camera: no uncaught exception or
// unhandled rejection, the camera is stopped with a log line saying why, the screen goes black,
// and a client that connects afterwards is shown.
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { openSystemAllocators } from '../../src/alloc/system.js';
import { describeKmsDevice } from '../../src/constraints/live.js';
import { fourcc } from '../../src/formats/index.js';
import { CameraSource, V4l2Device, V4l2StreamError, type CameraFrame } from '../../src/v4l2/index.js';
import { WaylandConnection } from '../../src/wayland/index.js';
import { startKiosk, type KioskFrameInfo } from '../../compositor-example/kiosk.js';
import { openDriver, privateRuntimeDir, requireVkms } from './devices-util.js';
import { poolFile } from '../util/own-shm.js';
import { until } from '../util/wait.js';
import type { TapTest } from './leak.js';

t.setTimeout(600000); // vivid draws with the CPU of a TCG guest: a few frames a second

const CAMERA = '/dev/video0';
const DRIVER = '/sys/bus/platform/drivers/vivid';
const vkms = requireVkms(t);
privateRuntimeDir(t, 'primebuf-camera-unplug-');

// Whatever the test does, an uncaught exception or unhandled rejection is a failure of its own.
const escaped: string[] = [];
process.on('uncaughtException', (err) => void escaped.push(`uncaught: ${err.stack ?? String(err)}`));
process.on('unhandledRejection', (err) => void escaped.push(`unhandled rejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));

function unplug(): void {
  writeFileSync(`${DRIVER}/unbind`, 'vivid.0');
}

/** Binds vivid again and waits for its capture node to open. */
async function replug(t: TapTest): Promise<void> {
  if (!existsSync(`${DRIVER}/vivid.0`)) writeFileSync(`${DRIVER}/bind`, 'vivid.0');
  const back = await until(() => {
    try {
      V4l2Device.open(CAMERA).close();
      return true;
    } catch {
      return false;
    }
  }, 30_000, 50);
  t.ok(back, 'vivid bound again: /dev/video0 opens');
}

t.ok(existsSync(`${DRIVER}/vivid.0`), 'vivid.0 is bound to the vivid driver');

t.test('fault 1: CameraSource: a frame given back to an unplugged camera does not throw; next() rejects saying why', async (t) => {
  const dev = openDriver('vkms');
  const sys = openSystemAllocators();
  const cam = V4l2Device.open(CAMERA);
  let src: CameraSource | undefined;
  try {
    src = CameraSource.open({ camera: cam, display: describeKmsDevice(dev), pool: sys.pool, width: 640, height: 480, format: fourcc('XRGB8888') });
    const a: CameraFrame = await src.next();
    const b: CameraFrame = await src.next();
    t.pass(`two frames (${a.sequence}, ${b.sequence})`);
    a.release();
    unplug();
    // at once, before the event loop hears of it: VIDIOC_QBUF on the unregistered node
    t.doesNotThrow(() => b.release(), 'giving a frame back to the unplugged camera does not throw');
    const err = await src.next().then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof V4l2StreamError, `next() rejects with a V4l2StreamError (${String(err)})`);
    t.match(String((err as Error | null)?.message), /VIDIOC_QBUF|VIDIOC_DQBUF|poll/, 'naming what the camera refused');
    t.ok(['ENODEV', 'EIO', undefined].includes((err as V4l2StreamError | null)?.errno), `errno ${(err as V4l2StreamError | null)?.errno}`);
    t.match(String((err as Error | null)?.message), /VIDIOC_QBUF/, 'the refused QBUF is what failed the stream');
    t.doesNotThrow(() => src!.stop(), 'stop() does not throw on the gone camera');
  } finally {
    try {
      src?.stop();
    } catch {
      // reported above
    }
    cam.close();
    sys.close();
    dev.close();
    await replug(t);
  }
  t.same(escaped, [], 'no uncaught exception or unhandled rejection');
});

t.test('fault 1: the kiosk with --camera survives the camera unplugged mid-stream: black, then a client', async (t) => {
  const log: string[] = [];
  const k = await startKiosk({ device: vkms.path, socket: 'camera-unplug', camera: CAMERA, log: (l) => log.push(l) });
  const frames: KioskFrameInfo[] = [];
  k.onFrame((f) => void frames.push(f));
  try {
    t.ok(await until(() => frames.filter((f) => f.source === 'camera').length >= 3, 120_000, 20), 'camera frames shown');
    unplug();
    t.ok(await until(() => log.some((l) => /camera \/dev\/video0: stopped \(/.test(l)), 30_000, 20), `the kiosk logs that the camera stopped and why: ${log.filter((l) => /stopped/.test(l)).join(' | ')}`);
    t.ok(await until(() => frames.at(-1)?.path === 'black', 30_000, 20), 'the screen goes black');
    t.ok(k.stats().camera?.stopped, `stats say why: ${k.stats().camera?.stopped}`);
    // a client is shown afterwards
    const conn = WaylandConnection.connect(k.socket);
    try {
      const { registry, globals } = await conn.globals();
      const g = (i: string) => globals.find((x) => x.interface === i)!;
      const comp = conn.bind(registry, g('wl_compositor'), 'wl_compositor', 5);
      const wm = conn.bind(registry, g('xdg_wm_base'), 'xdg_wm_base', 5);
      wm.on('ping', ({ serial }) => wm.request('pong', { serial }));
      const shm = conn.bind(registry, g('wl_shm'), 'wl_shm', 1);
      const surf = comp.request('create_surface', {});
      const xs = wm.request('get_xdg_surface', { surface: surf });
      xs.request('get_toplevel', {});
      let serial = -1;
      xs.on('configure', ({ serial: s }) => (serial = s));
      surf.request('commit', {});
      await conn.roundtrip();
      xs.request('ack_configure', { serial });
      const px = new Uint8Array(64 * 64 * 4);
      new Uint32Array(px.buffer).fill(0x30a050);
      const mem = poolFile('unsealed', px.length, px);
      const pool = shm.request('create_pool', { fd: mem, size: px.length });
      mem.close();
      surf.request('attach', { buffer: pool.request('create_buffer', { offset: 0, width: 64, height: 64, stride: 256, format: 1 }), x: 0, y: 0 });
      surf.request('commit', {});
      conn.flush();
      t.ok(await until(() => frames.at(-1)?.source === 'client', 30_000, 20), 'a client connecting afterwards is shown');
      const cap = await k.capture();
      const dv = new DataView(cap.pixels.buffer, cap.pixels.byteOffset);
      const mid = dv.getUint32(Math.floor(cap.height / 2) * cap.stride + Math.floor(cap.width / 2) * 4, true) & 0xffffff;
      t.equal(mid.toString(16), '30a050', 'its pixels are on screen');
    } finally {
      conn.close();
    }
  } finally {
    if (!t.passing()) t.comment(`kiosk log (last lines):\n${log.slice(-20).join('\n')}`);
    await k.close();
    await replug(t);
  }
  t.same(escaped, [], 'no uncaught exception or unhandled rejection');
});
