// Conformance: a real V4L2 camera (vivid, loaded by the rig: `vivid n_devs=1 node_types=0x101`)
// as a constraint source and a buffer user. Proves: primebuf's format list and TRY/S_FMT answers
// agree with v4l2-ctl (Debian v4l-utils); the camera's constraint joins `primebuf solve` with
// vkms's primary plane; frames go camera -> screen in XR24 with zero bytes copied, from buffers
// allocated once for both devices (DMABUF memory) and from the camera's own buffers exported with
// EXPBUF (MMAP memory), the writeback capture of the last frame equal to what the camera wrote in
// that buffer; fds, GEM handles, framebuffers and V4L2 buffers are back to baseline after
// STREAMOFF; preview then record: vivid's output node (/dev/video1, the stand-in encoder)
// attached mid-stream shares the buffers (no re-allocation) and reads every frame the screen
// shows, while an encoder the buffers cannot serve is refused with EBUSY and its reasons and the
// preview goes on. Fails (never skips) without /dev/video0.
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { openSystemAllocators } from '../../src/alloc/system.js';
import { describeKmsDevice } from '../../src/constraints/live.js';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START } from '../../src/dmabuf/dmabuf.js';
import { Mapping } from '../../src/dmabuf/mapping.js';
import { DRM_FORMAT_MOD_LINEAR, fourcc, formatName } from '../../src/formats/index.js';
import { Framebuffer } from '../../src/kms/framebuffer.js';
import { PropertyBlob } from '../../src/kms/blob.js';
import { preferredMode, readResources } from '../../src/kms/resources.js';
import { addWriteback } from '../../src/kms/writeback.js';
import { native } from '../../src/native.js';
import { Presenter, type PresentResult } from '../../src/scanout/index.js';
import type { ScanoutBuffer } from '../../src/scanout/verdict-buffer.js';
import { BufferBusyError } from '../../src/constraints/errors.js';
import { CameraSource, OutputStream, V4l2Device, type CameraSourceOptions } from '../../src/v4l2/index.js';
import { v4l2FourccString } from '../../src/v4l2/formats.js';
import { openDriver } from './devices-util.js';
import { disableAll, placePlane } from './kms-util.js';
import { haveDebugfs, kernelFramebuffers, leakFree, type TapTest } from './leak.js';
import { until } from '../util/wait.js';

t.setTimeout(600000); // vivid draws its pattern with the CPU of a TCG guest: a few frames a second

const CAMERA = '/dev/video0';
const XR24 = fourcc('XRGB8888');
const W = 640;
const H = 480;
const FRAMES = Number(process.env.PRIMEBUF_CAMERA_FRAMES ?? 100); // issue 13: 100 frames (~20 s at vivid's ~5 fps under TCG)

function v4l2ctl(...args: string[]): string {
  const r = spawnSync('v4l2-ctl', ['-d', CAMERA, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`v4l2-ctl ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** v4l2-ctl --get-fmt-video / --try-fmt-video output as numbers. */
function parseFmt(text: string): { width: number; height: number; pixelformat: string; bytesperline: number; sizeimage: number } {
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  const wh = /Width\/Height\s*:\s*(\d+)\/(\d+)/.exec(text);
  return {
    width: Number(wh?.[1] ?? NaN),
    height: Number(wh?.[2] ?? NaN),
    pixelformat: /Pixel Format\s*:\s*'([^']*)'/.exec(text)?.[1] ?? '',
    bytesperline: num(/Bytes per Line\s*:\s*(\d+)/),
    sizeimage: num(/Size Image\s*:\s*(\d+)/),
  };
}

t.test('the rig has a V4L2 capture node', async (t) => {
  t.ok(spawnSync('test', ['-c', CAMERA]).status === 0, `${CAMERA} exists (vivid loaded by the rig); without it this file fails`);
});

void leakFree(t, 'formats agree with v4l2-ctl --list-formats; each mapped to DRM or listed with why not', async (t: TapTest) => {
  using cam = V4l2Device.open(CAMERA);
  const caps = cam.capabilities;
  t.equal(caps.driver, 'vivid', 'the driver is vivid');
  t.equal(cam.direction, 'capture', 'a capture node');
  t.ok(cam.queueCaps.dmabuf, 'the queue imports dma-bufs (V4L2_BUF_CAP_SUPPORTS_DMABUF)');
  const ours = cam.formats();
  const theirs = [...v4l2ctl('--list-formats').matchAll(/^\s*\[\d+\]: '([^']+)'/gm)].map((m) => m[1]!.trim());
  t.ok(theirs.length > 20, `v4l2-ctl lists ${theirs.length} formats`);
  t.same(ours.map((f) => f.v4l2.trim()), theirs, 'the same formats in the same order as v4l2-ctl --list-formats');
  const mapped = ours.filter((f) => f.drm !== null);
  for (const [v4l2, drm] of [['XR24', 'XRGB8888'], ['AR24', 'ARGB8888'], ['NV12', 'NV12'], ['YUYV', 'YUYV'], ['RGBP', 'RGB565']] as const) {
    const f = ours.find((x) => x.v4l2 === v4l2);
    t.equal(f && f.drm !== null ? formatName(f.drm) : null, drm, `${v4l2} -> ${drm}`);
  }
  t.ok(ours.filter((f) => f.drm === null).every((f) => f.source.length > 0), `${ours.length - mapped.length} unmapped formats each say why`);
  t.equal(v4l2FourccString(ours[0]!.pixelformat), ours[0]!.v4l2, 'fourcc text round-trips');
});

void leakFree(t, 'TRY_FMT, S_FMT and the constraint agree with v4l2-ctl --try-fmt-video / --get-fmt-video', async (t: TapTest) => {
  using cam = V4l2Device.open(CAMERA);
  const px = cam.pixelformatFor(XR24)!;
  t.equal(v4l2FourccString(px), 'XR24', 'XRGB8888 is asked for as XR24');
  const tried = cam.tryFormat({ width: W, height: H, pixelformat: px });
  const ctlTry = parseFmt(v4l2ctl(`--try-fmt-video=width=${W},height=${H},pixelformat=XR24`));
  t.same({ w: tried.width, h: tried.height, bpl: tried.planes[0]!.bytesperline, size: tried.planes[0]!.sizeimage },
    { w: ctlTry.width, h: ctlTry.height, bpl: ctlTry.bytesperline, size: ctlTry.sizeimage }, 'TRY_FMT 640x480 XR24 = v4l2-ctl --try-fmt-video');
  const set = cam.setFormat({ width: W, height: H, pixelformat: px });
  const ctlGet = parseFmt(v4l2ctl('--get-fmt-video'));
  t.same({ w: set.width, h: set.height, fmt: v4l2FourccString(set.pixelformat), bpl: set.planes[0]!.bytesperline, size: set.planes[0]!.sizeimage },
    { w: ctlGet.width, h: ctlGet.height, fmt: ctlGet.pixelformat, bpl: ctlGet.bytesperline, size: ctlGet.sizeimage }, 'S_FMT = v4l2-ctl --get-fmt-video');
  const c = cam.constraintFor({ width: W, height: H }, { format: XR24 });
  t.same([...c.formats!].map((p) => [formatName(p.format), p.modifier]), [['XRGB8888', DRM_FORMAT_MOD_LINEAR]], 'the XR24 constraint: XRGB8888, LINEAR');
  t.equal(c.usage, 'camera', 'usage camera');
  t.same([c.minWidth, c.maxWidth, c.minHeight, c.maxHeight], [W, W, H, H], 'the webcam input offers discrete sizes: the size itself');
  t.equal(c.contiguous, false, 'vivid with the vmalloc allocator needs no contiguous memory');
  t.equal(c.allocateOn, undefined, 'it imports: any allocator');
  t.equal(c.pitchAlign, undefined, 'the driver takes the allocation\'s bytesperline (probed with TRY_FMT)');
  t.throws(() => cam.constraintFor({ width: 1000, height: 700 }, { format: XR24 }), /no format for 1000x700 in XRGB8888.*gave 1280x720/, 'a size the webcam input lacks: refused with what TRY_FMT made of it');
});

t.test('primebuf solve --use /dev/video0:capture --use <vkms>:scanout', async (t) => {
  const vkms = openDriver('vkms');
  const card = vkms.path.split('/').pop()!;
  vkms.close();
  const r = spawnSync(process.execPath, ['dist/src/cli.js', 'solve', '--use', `${CAMERA}:capture`, '--use', `${card}:scanout`, '--size', `${W}x${H}`, '--format', 'XRGB8888', '--json'], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, `solve exits 0 (${r.stderr.trim().split('\n').pop()})`);
  const out = JSON.parse(r.stdout) as { ok: boolean; plan: { chosen?: { format: string; layout?: { planes: Array<{ pitch: string | number }> } } | null }; constraints: { members: Array<{ device: string; usage: string }> } };
  t.ok(out.ok, 'the camera and the primary plane agree');
  t.ok(out.constraints.members.some((m) => m.device === CAMERA && m.usage === 'camera'), 'the camera is a member of the merged set');
  t.match(JSON.stringify(out.plan), /XRGB8888/, 'the plan allocates XRGB8888');
});

interface Screen {
  presenter: Presenter;
  arm(): void;
  /** the writeback capture's pixel at (x, y) */
  pixel(x: number, y: number): number;
  close(): void;
}

/** vkms with Virtual-1 driven by a presenter, Writeback-1 riding along to capture a frame. */
function screen(): { vkms: ReturnType<typeof openDriver>; make(): Screen } {
  const vkms = openDriver('vkms');
  return {
    vkms,
    make() {
      const res = readResources(vkms, { probe: true });
      const crtc = res.crtcs[0]!.id;
      const virt = res.connectors.find((c) => !c.writeback)!;
      const wb = res.connectors.find((c) => c.writeback);
      if (!wb) throw new Error('vkms has no writeback connector (enable_writeback=1)');
      const mode = preferredMode(virt)!;
      const out = DumbBuffer.create(vkms, { width: mode.hdisplay, height: mode.vdisplay, bpp: 32 });
      const outMap = out.map();
      const outFb = Framebuffer.create(vkms, { width: mode.hdisplay, height: mode.vdisplay, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: out.handle, pitch: out.pitch }] });
      const blob = PropertyBlob.fromMode(vkms, mode);
      const primary = res.planes.find((p) => p.type === 'primary')!.id;
      const probe = vkms.atomic().set(crtc, 'MODE_ID', blob).set(crtc, 'ACTIVE', 1).set(virt.id, 'CRTC_ID', crtc);
      placePlane(probe, primary, crtc, outFb, 0, 0, mode.hdisplay, mode.vdisplay);
      const both = addWriteback(probe, wb.id, crtc, outFb).check({ allowModeset: true }).ok;
      blob.close();
      let armed = false;
      const presenter = new Presenter({
        device: vkms, crtcId: crtc, connectorId: both ? virt.id : wb.id, mode,
        extraState: (req) => {
          if (both) req.set(wb.id, 'CRTC_ID', crtc);
          if (!armed) return;
          armed = false;
          addWriteback(req, wb.id, crtc, outFb);
        },
      });
      return {
        presenter,
        arm() {
          armed = true;
          outMap.bytes().fill(0xff);
        },
        pixel(x, y) {
          return new DataView(outMap.buffer).getUint32(y * out.pitch + x * 4, true) & 0xffffff;
        },
        close() {
          presenter.close();
          disableAll(vkms, res);
          outFb.close();
          outMap.close();
          out.close();
        },
      };
    },
  };
}

/**
 * vkms driven by a presenter (writeback riding along), the system allocators and a CameraSource
 * on the camera (`opts` over 640x480 XRGB8888) for `body`; everything closed after, and the
 * camera's queue checked empty (S_FMT is not EBUSY).
 */
async function withCamera(t: TapTest, opts: Partial<CameraSourceOptions>, body: (scr: Screen, src: CameraSource) => Promise<void>): Promise<void> {
  const s = screen();
  const sys = openSystemAllocators(); // after vkms: the presenter's fd is DRM master
  const cam = V4l2Device.open(CAMERA);
  let scr: Screen | undefined;
  let src: CameraSource | undefined;
  try {
    scr = s.make();
    src = CameraSource.open({ camera: cam, display: describeKmsDevice(s.vkms), pool: sys.pool, width: W, height: H, ...opts });
    await body(scr, src);
  } finally {
    scr?.close();
    src?.stop();
    // V4L2 buffers back to baseline: S_FMT answers EBUSY while the queue holds buffers
    t.doesNotThrow(() => cam.setFormat({ width: W, height: H, pixelformat: cam.pixelformatFor(XR24)! }), 'after STREAMOFF the queue holds no buffers (S_FMT is not EBUSY)');
    cam.close();
    sys.close();
    s.vkms.close();
  }
}

/**
 * Once `fence` (the writeback's out-fence) signalled: the capture at `dst` equals the XRGB8888
 * frame the camera wrote in `buf`, read back from the same buffer (still the caller's: not
 * requeued), and outside `dst` the screen is black.
 */
async function checkCapture(t: TapTest, scr: Screen, fence: PresentResult['fences'][number] | undefined, buf: ScanoutBuffer, dst: { x: number; y: number }): Promise<void> {
  t.ok(fence, 'the last frame\'s commit carried the writeback capture');
  await fence!.wait(10_000);
  fence!.close();
  const size = buf.planes[0]!.stride * H;
  const map = Mapping.map(buf.planes[0]!.fd, 0, size, false);
  try {
    native.dmabufSync(buf.planes[0]!.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
    const dv = new DataView(map.buffer);
    let bad = 0;
    let first = '';
    const colours = new Set<number>();
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const want = dv.getUint32(y * buf.planes[0]!.stride + x * 4, true) & 0xffffff;
        colours.add(want);
        const got = scr.pixel(dst.x + x, dst.y + y);
        if (got !== want && bad++ === 0) first = `; first (${x},${y}) got 0x${got.toString(16)} want 0x${want.toString(16)}`;
      }
    }
    native.dmabufSync(buf.planes[0]!.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
    t.ok(colours.size > 4, `the camera wrote a picture (${colours.size} colours), not a blank buffer`);
    t.equal(bad, 0, `all ${W * H} pixels of the writeback capture equal the camera's frame${first}`);
    t.equal(scr.pixel(0, 0), 0, 'outside the camera\'s rectangle the screen is black');
  } finally {
    map.close();
  }
}

async function cameraToScreen(t: TapTest, memory: 'dmabuf' | 'mmap', frames: number): Promise<void> {
  await withCamera(t, { memory }, async (scr, src) => {
    t.equal(src.memory, memory, `the stream uses ${memory.toUpperCase()} memory`);
    if (memory === 'dmabuf') {
      const allocs = src.allocations;
      t.equal(allocs.length, 4, 'four buffers allocated once, each for camera and display');
      t.ok(allocs.every((a) => a?.format === XR24 && a.planes[0]!.pitch === BigInt(W * 4)), 'XRGB8888 at the camera\'s pitch');
      t.comment(`allocator: ${allocs[0]?.allocator}`);
    } else {
      t.equal(src.stream.buffers.length >= 2, true, `${src.stream.buffers.length} MMAP buffers exported with EXPBUF`);
    }
    const mode = scr.presenter;
    const dst = { x: (1024 - W) / 2, y: (768 - H) / 2, width: W, height: H }; // vkms's 1024x768: unscaled, centred
    let prev: Awaited<ReturnType<CameraSource['next']>> | undefined;
    let last: Awaited<ReturnType<CameraSource['next']>> | undefined;
    let fence;
    const paths = new Set<string>();
    let seq = -1;
    let ordered = true;
    for (let i = 0; i < frames; i++) {
      const f = await src.next();
      // Non-decreasing, not strictly increasing: vivid's capture thread numbers a frame from the
      // jiffies since streaming started, and a thread woken before the next jiffy (a loaded TCG
      // guest) stamps two frames with the same sequence. A frame handed over out of order would
      // show as a smaller number.
      if (f.sequence < seq) ordered = false;
      seq = f.sequence;
      if (i === frames - 1) scr.arm();
      const r = await mode.present({ buffer: f.buffer, placement: { dst }, constraints: src.constraints });
      paths.add(r.path);
      prev?.release(); // off the screen now: back to the camera
      prev = f;
      if (i === frames - 1) {
        last = f;
        fence = r.fences[0];
      }
    }
    t.ok(ordered, 'frame sequence numbers never go back');
    t.same([...paths], ['direct'], `all ${frames} frames direct on a plane`);
    const st = mode.stats;
    t.equal(st.bytesCopied, 0, 'zero bytes copied');
    t.equal(st.copiedFrames, 0, 'no frame went through the copy ring');
    t.equal(st.directFrames, frames, `${frames} direct frames`);
    t.ok(st.imports <= 4 && st.addfb2 <= 4, `one import and one AddFB2 per buffer at most (imports ${st.imports}, addfb2 ${st.addfb2})`);
    await checkCapture(t, scr, fence, last!.buffer, dst);
    prev?.release();
  });
}

void leakFree(t, `${FRAMES} frames camera -> screen in XR24, DMABUF memory (allocated for both), zero bytes copied, writeback = the camera's frame`, async (t: TapTest) => {
  await cameraToScreen(t, 'dmabuf', FRAMES);
});

void leakFree(t, '5 frames camera -> screen from the camera\'s own buffers (MMAP + EXPBUF), zero bytes copied, writeback exact', async (t: TapTest) => {
  await cameraToScreen(t, 'mmap', 5);
});

// A frame larger than the mode (vivid's 1280x720 on vkms's 1024x768): cropped on the plane. The
// plane shows the frame's middle 1024 columns unscaled (SRC 128,0 1024x720 -> CRTC 0,24 1024x720),
// so the camera's buffers still go to the screen as they are: no copy, no mode change.
void leakFree(t, 'a 1280x720 camera frame on the 1024x768 mode: cropped on the plane, direct, zero bytes copied, writeback = the middle of the camera\'s frame', async (t: TapTest) => {
  const CW = 1280;
  const CH = 720;
  await withCamera(t, { width: CW, height: CH }, async (scr, src) => {
    const src1 = { x: (CW - 1024) / 2, y: 0, width: 1024, height: CH };
    const dst = { x: 0, y: (768 - CH) / 2, width: 1024, height: CH };
    let prev: Awaited<ReturnType<CameraSource['next']>> | undefined;
    let fence;
    let last: Awaited<ReturnType<CameraSource['next']>> | undefined;
    const paths = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const f = await src.next();
      if (i === 2) scr.arm();
      const r = await scr.presenter.present({ buffer: f.buffer, placement: { src: src1, dst }, constraints: src.constraints });
      paths.add(r.path);
      prev?.release();
      prev = f;
      if (i === 2) {
        last = f;
        fence = r.fences[0];
      }
    }
    t.same([...paths], ['direct'], 'every frame direct: the plane crops');
    t.equal(scr.presenter.stats.bytesCopied, 0, 'zero bytes copied');
    t.ok(fence, 'the last frame carried the writeback capture');
    await fence!.wait(10_000);
    fence!.close();
    const p = last!.buffer.planes[0]!;
    const map = Mapping.map(p.fd, 0, p.stride * CH, false);
    try {
      native.dmabufSync(p.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
      const dv = new DataView(map.buffer);
      let bad = 0;
      let first = '';
      for (let y = 0; y < CH; y++) {
        for (let x = 0; x < 1024; x++) {
          const want = dv.getUint32(p.offset + y * p.stride + (x + src1.x) * 4, true) & 0xffffff;
          const got = scr.pixel(x, y + dst.y);
          if (got !== want && bad++ === 0) first = `; first (${x},${y}) got 0x${got.toString(16)} want 0x${want.toString(16)}`;
        }
      }
      native.dmabufSync(p.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
      t.equal(bad, 0, `all ${1024 * CH} pixels on screen are the middle 1024 columns of the camera's 1280x720 frame${first}`);
      t.equal(scr.pixel(0, 0), 0, 'above the frame the screen is black');
    } finally {
      map.close();
    }
    prev?.release();
  });
});

void leakFree(t, 'preview, then record: the output node shares the buffers; a misfit encoder gets EBUSY with reasons', async (t: TapTest) => {
  const s = screen();
  const sys = openSystemAllocators();
  const cam = V4l2Device.open(CAMERA);
  const enc = V4l2Device.open('/dev/video1');
  let scr: Screen | undefined;
  let src: CameraSource | undefined;
  let out: OutputStream | undefined;
  try {
    scr = s.make();
    src = CameraSource.open({ camera: cam, display: describeKmsDevice(s.vkms), pool: sys.pool, width: W, height: H });
    const before = src.allocations.map((a) => JSON.stringify(a, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
    const dst = { x: (1024 - W) / 2, y: (768 - H) / 2, width: W, height: H };
    const show = async () => {
      const f = await src!.next();
      const r = await scr!.presenter.present({ buffer: f.buffer, placement: { dst }, constraints: src!.constraints });
      return { f, r };
    };
    let prev = (await show()).f; // preview running
    // An encoder that needs 1024-byte aligned pitches: the 2560-byte rows cannot serve it
    const strict = { device: 'encoder', usage: 'video-encode' as const, modifiers: [DRM_FORMAT_MOD_LINEAR], pitchAlign: 1024, source: 'declared: an encoder with 1024-byte pitch alignment' };
    let busy: unknown;
    try {
      src.attach(strict);
    } catch (err) {
      busy = err;
    }
    t.ok(busy instanceof BufferBusyError, 'attaching an encoder the buffers cannot serve throws BufferBusyError');
    t.equal((busy as BufferBusyError).code, 'EBUSY', 'code EBUSY');
    t.match((busy as BufferBusyError).reasons.map((r) => `${r.code} ${r.device}: ${r.detail}`).join('; '), /PITCH encoder/, 'the reasons name the encoder and the pitch');
    t.equal(src.reallocations, 0, 'nothing re-allocated');
    const again = await show();
    t.equal(again.r.path, 'direct', 'the preview goes on, direct');
    prev.release();
    prev = again.f;
    // The output node (XR24 640x480, the camera's pitch): attached while streaming, shared
    const c = enc.constraintFor({ width: W, height: H }, { format: XR24 });
    const att = src.attach(c);
    t.equal(att.attachments.length, 4, 'attached to all four buffers');
    t.ok(att.attachments.every((a) => a.reallocation === undefined), 'no attach re-allocated');
    t.same(src.allocations.map((a) => JSON.stringify(a, (_k, v) => (typeof v === 'bigint' ? String(v) : v))), before, 'the buffers are the ones allocated before');
    out = OutputStream.start(enc, { width: W, height: H, format: XR24, targets: src.targets });
    // vivid's output queue starts streaming with two buffers queued (min_queued_buffers 2): the
    // frame on screen and the one before it are with the output node; a buffer goes back to the
    // camera once it is off the screen AND the output node gave it back.
    const N = 6;
    const seen = new Set<number>();
    const index = (f: { buffer: unknown }): number => src!.stream.buffers.findIndex((b) => b.scanout === f.buffer);
    const inOutput: Array<typeof prev> = [];
    const offScreen = new Set<typeof prev>();
    const outDone = new Set<typeof prev>();
    const maybeRelease = (f: typeof prev) => {
      if (offScreen.has(f) && outDone.has(f)) f.release();
    };
    let order = true;
    for (let i = 0; i < N; i++) {
      const { f, r } = await show();
      t.equal(r.path, 'direct', `frame ${i}: on the screen directly`);
      offScreen.add(prev);
      maybeRelease(prev);
      prev = f;
      out.queue(index(f)); // the "encoder" reads the same buffer
      inOutput.push(f);
      seen.add(index(f));
      while (inOutput.length >= 2) {
        const g = inOutput.shift()!;
        if ((await out.done()) !== index(g)) order = false;
        outDone.add(g);
        maybeRelease(g);
      }
    }
    t.ok(order, 'the output node gave the buffers back in the order they were queued');
    t.equal(out.dequeued, N - 1, `the output node consumed ${N - 1} frames (the last one still queued)`);
    t.equal(out.errors, 0, 'none with V4L2_BUF_FLAG_ERROR');
    t.equal(scr.presenter.stats.bytesCopied, 0, 'zero bytes copied, preview and record');
    t.ok(seen.size >= 2, `the output node imported ${seen.size} distinct buffers`);
    att.detach();
  } finally {
    out?.stop();
    scr?.close();
    src?.stop();
    t.doesNotThrow(() => enc.setFormat({ width: W, height: H, pixelformat: enc.pixelformatFor(XR24)! }), 'the output queue holds no buffers after stop (S_FMT is not EBUSY)');
    enc.close();
    cam.close();
    sys.close();
    s.vkms.close();
  }
});

/** Framebuffers the kernel lists (debugfs), every DRM device together. */
const kernelFbCount = (): number => Object.values(kernelFramebuffers()).reduce((n, ids) => n + ids.length, 0);

/**
 * The kernel's framebuffer count once it is `want` (up to 2 s): a removed framebuffer stays in
 * the kernel's list until the commit that replaced it on its plane frees its old state, which the
 * nonblocking commit's worker may do just after the flip event. A count that never settles is
 * returned as it is.
 */
async function settledFbCount(want: number): Promise<number> {
  await until(() => kernelFbCount() === want, 2000, 10);
  return kernelFbCount();
}

void leakFree(t, 'preview, then record with re-allocation: a misfit encoder moves the stream to new buffers, at most one frame missed, the picture right after', async (t: TapTest) => {
  t.ok(haveDebugfs(), 'debugfs mounted (the kernel framebuffer list is checked)');
  await withCamera(t, { onIncompatibleAttach: 'reallocate' }, async (scr, src) => {
    const dst = { x: (1024 - W) / 2, y: (768 - H) / 2, width: W, height: H };
    t.same(src.allocations.map((a) => Number(a!.planes[0]!.pitch)), [W * 4, W * 4, W * 4, W * 4], `the preview's buffers have ${W * 4}-byte rows`);
    const oldBuffers = new Set(src.stream.buffers.map((b) => b.scanout));
    let prev: Awaited<ReturnType<CameraSource['next']>> | undefined;
    const show = async () => {
      const f = await src!.next();
      const r = await scr!.presenter.present({ buffer: f.buffer, placement: { dst }, constraints: src!.constraints });
      prev?.release();
      prev = f;
      return { f, r };
    };
    const before: bigint[] = [];
    /** the camera buffers shown directly (each has one framebuffer of the presenter's verdicts) */
    const shownOld = new Set<ScanoutBuffer>();
    for (let i = 0; i < 4; i++) {
      const { f, r } = await show(); // the preview runs
      before.push(f.dequeuedNs);
      if (r.path === 'direct') shownOld.add(f.buffer);
    }
    t.ok([...oldBuffers].every((b) => b.life !== undefined && !b.life.ended), 'every camera buffer has a life, not ended while the stream owns it');
    const fbsPreview = kernelFbCount(); // nothing is removed during the preview: every buffer shown keeps its framebuffer
    // framebuffers the presenter makes of its own (the black background, made when first needed), one per allocation
    const allocsPreview = scr.presenter.stats.allocations;
    const own = () => scr.presenter.stats.allocations - allocsPreview;
    t.equal(src.framesMissed, 0, 'no frame missed before the move');
    // An encoder that needs 1024-byte aligned pitches: the 2560-byte rows cannot serve it
    const strict = { device: 'encoder', usage: 'video-encode' as const, modifiers: [DRM_FORMAT_MOD_LINEAR], pitchAlign: 1024, source: 'declared: an encoder with 1024-byte pitch alignment' };
    const att = src.attach(strict);
    t.equal(att.attachments.length, 4, 'attached to all four buffers');
    t.ok(att.attachments.every((a) => a.reallocation !== undefined), 'each buffer was re-allocated');
    t.match(att.attachments[0]!.reallocation!.reasons.map((r) => `${r.code} ${r.device}`).join('; '), /PITCH encoder/, 'because of the encoder\'s pitch');
    t.equal(src.reallocations, 4, 'reallocations: one per buffer');
    t.same(src.allocations.map((a) => Number(a!.planes[0]!.pitch)), [3072, 3072, 3072, 3072], 'the new buffers have 3072-byte rows (2560 aligned to 1024)');
    t.equal(Number(src.stream.format.planes[0]!.bytesperline), 3072, 'the camera writes 3072-byte rows (S_FMT after the move)');
    t.same(new Set(att.retired), oldBuffers, 'the old buffers are retired');
    const m = src.lastMove!;
    // the frames the camera had filled in the old buffers come first (handed over), then the new set's
    let carried = 0;
    let seq = -1;
    let ordered = true;
    for (let i = 0; i < m.framesCarried; i++) {
      const { f, r } = await show();
      if (oldBuffers.has(f.buffer) && r.path === 'direct') carried++;
      // Non-decreasing, not strictly increasing: vivid's capture thread numbers a frame from the
      // jiffies since streaming started, and a thread woken before the next jiffy (a loaded TCG
      // guest) stamps two frames with the same sequence. A frame handed over out of order would
      // show as a smaller number.
      if (f.sequence < seq) ordered = false;
      seq = f.sequence;
    }
    t.equal(carried, m.framesCarried, `the ${m.framesCarried} frames the camera had filled in the old set are shown (directly), not thrown away`);
    t.ok(ordered, 'in camera order');
    // no forget(): the old buffers' lives were ended by the move, each leaves the presenter with its last unlock
    let last: Awaited<ReturnType<typeof show>> | undefined;
    const shownNew = new Set<ScanoutBuffer>();
    const AFTER = 4;
    for (let i = 0; i < AFTER; i++) {
      if (i === AFTER - 1) scr.arm();
      last = await show();
      t.equal(last.r.path, 'direct', `frame ${i} of the new set: direct on a plane`);
      t.notOk(oldBuffers.has(last.f.buffer), `frame ${i} of the new set comes from a new buffer`);
      shownNew.add(last.f.buffer);
    }
    t.ok([...oldBuffers].every((b) => b.life!.ended), 'every old buffer\'s life ended (off the screen, its frames given out and released)');
    t.equal(await settledFbCount(fbsPreview - shownOld.size + shownNew.size + own()), fbsPreview - shownOld.size + shownNew.size + own(), `the kernel lists no framebuffer of the ${shownOld.size} old buffers shown, one of each of the ${shownNew.size} new ones (without forget())`);
    t.ok(src.framesMissed <= 1, `at most one frame missed by the move (framesMissed ${src.framesMissed}: frames the camera skipped meanwhile)`);
    t.ok((src.lastMove?.firstFrameMs ?? 0) > 0, 'the new stream\'s first frame came, and when is measured');
    t.comment(`move: re-allocation ${m.reallocateMs.toFixed(0)} ms, restart ${m.restartMs.toFixed(0)} ms, ${m.framesCarried} filled frames handed over, ${m.framesLost} skipped by the camera, first new frame ${src.lastMove!.firstFrameMs!.toFixed(0)} ms after STREAMON; frame interval before (dequeue to dequeue) ${(Number(before[3]! - before[2]!) / 1e6).toFixed(0)} ms`);
    t.equal(scr.presenter.stats.bytesCopied, 0, 'zero bytes copied before and after');
    await checkCapture(t, scr, last!.r.fences[0], last!.f.buffer, dst);
    prev?.release();
    att.detach();
    // the camera stops while its last frame is on screen: that buffer lives on until replaced
    const onScreen = last!.f.buffer;
    src.stop();
    t.notOk(onScreen.life!.ended, 'the buffer on screen outlives the stop while the presenter holds it');
    t.ok([...shownNew].filter((b) => b !== onScreen).every((b) => b.life!.ended), 'the other buffers ended at the stop');
    await scr.presenter.clear();
    t.ok(onScreen.life!.ended, 'replaced by black: its life ended');
    t.equal(await settledFbCount(fbsPreview - shownOld.size + own()), fbsPreview - shownOld.size + own(), 'the kernel lists no framebuffer of any camera buffer after the stop (without forget())');
  });
});

/** BT.601 limited range, as a reference (floating point, rounded, clamped): [r, g, b]. */
function bt601(y: number, cb: number, cr: number): number[] {
  const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
  const c = 1.164 * (y - 16);
  return [clamp(c + 1.596 * (cr - 128)), clamp(c - 0.391 * (cb - 128) - 0.813 * (cr - 128)), clamp(c + 2.018 * (cb - 128))];
}

/**
 * A YUV format from the camera on vkms (no plane takes YUV): the buffers are made for the camera
 * and the CPU, every frame goes through the copy path converted into XRGB8888, the verdict names
 * the format, and the writeback capture of the last frame is the conversion of the camera's own
 * bytes in that buffer (read back from it), within 1 per channel. `yuvAt(bytes, x, y)` reads
 * the camera's [Y, Cb, Cr] of pixel (x, y) from the buffer's mapping.
 */
async function yuvToScreen(t: TapTest, name: 'YUYV' | 'NV12', yuvAt: (b: Uint8Array, planes: ReadonlyArray<{ offset: number; stride: number }>, x: number, y: number) => number[]): Promise<void> {
  const format = fourcc(name);
  await withCamera(t, { format }, async (scr, src) => {
    t.match(src.directReasons.join('; '), new RegExp(name), `the buffers were not made for the display, and why: ${src.directReasons[0] ?? ''}`);
    const dst = { x: (1024 - W) / 2, y: (768 - H) / 2, width: W, height: H };
    let prev: Awaited<ReturnType<CameraSource['next']>> | undefined;
    let last: Awaited<ReturnType<CameraSource['next']>> | undefined;
    let fence: PresentResult['fences'][number] | undefined;
    const FR = 4;
    for (let i = 0; i < FR; i++) {
      const f = await src.next();
      if (i === FR - 1) scr.arm();
      const r: PresentResult = await scr.presenter.present({ buffer: f.buffer, placement: { dst }, constraints: src.constraints });
      t.equal(r.path, 'copy', `frame ${i}: the copy path`);
      prev?.release();
      prev = f;
      if (i === FR - 1) {
        last = f;
        fence = r.fences[0];
      }
    }
    const why = scr.presenter.explain(last!.buffer, { dst }).join('; ');
    t.match(why, new RegExp(name), `the verdict names the format: ${why.slice(0, 160)}`);
    t.equal(scr.presenter.stats.bytesCopied, FR * W * H * 4, 'every frame converted in full into the XRGB8888 ring');
    await fence!.wait(10_000);
    fence!.close();
    const buf = last!.buffer;
    t.equal(buf.planes.length, name === 'NV12' ? 2 : 1, `${name} has ${buf.planes.length} plane(s) in the camera's buffer`);
    // vivid says colorspace sRGB, ycbcr_enc and quantization DEFAULT: BT.601 limited by the V4L2 rules
    t.same(buf.yuv, { matrix: 'bt601', range: 'limited' }, "the frame carries the camera's YUV encoding from G_FMT (vivid: sRGB, defaults: BT.601 limited)");
    const planes = buf.planes.map((p) => ({ offset: p.offset, stride: p.stride }));
    const end = Math.max(...planes.map((p, i) => p.offset + p.stride * (i === 0 ? H : H / 2)));
    const map = Mapping.map(buf.planes[0]!.fd, 0, end, false);
    try {
      native.dmabufSync(buf.planes[0]!.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
      const b = map.bytes();
      let worst = 0;
      let where = '';
      const colours = new Set<number>();
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const [Y, cb, cr] = yuvAt(b, planes, x, y);
          const want = bt601(Y!, cb!, cr!);
          colours.add((want[0]! << 16) | (want[1]! << 8) | want[2]!);
          const got = scr.pixel(dst.x + x, dst.y + y);
          const g = [(got >> 16) & 0xff, (got >> 8) & 0xff, got & 0xff];
          const d = Math.max(...g.map((v, i) => Math.abs(v - want[i]!)));
          if (d > worst) {
            worst = d;
            where = ` at (${x},${y}): got ${g.join(',')} want ${want.join(',')}`;
          }
        }
      }
      native.dmabufSync(buf.planes[0]!.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
      t.ok(colours.size > 4, `the camera wrote a picture (${colours.size} colours), not a blank buffer`);
      t.ok(worst <= 1, `the writeback capture is the camera's ${name} frame in BT.601 (worst channel difference ${worst}${where})`);
    } finally {
      map.close();
    }
  });
}

void leakFree(t, 'YUYV from the camera on vkms: copied with conversion, the verdict names the format, the picture right', async (t: TapTest) => {
  await yuvToScreen(t, 'YUYV', (b, [p], x, y) => {
    const o = p!.offset + y * p!.stride + (x & ~1) * 2; // Y0 Cb Y1 Cr
    return [b[o + (x & 1) * 2]!, b[o + 1]!, b[o + 3]!];
  });
});

void leakFree(t, 'NV12 from the camera on vkms: two planes in one dma-buf, copied with conversion, the verdict names the format, the picture right', async (t: TapTest) => {
  await yuvToScreen(t, 'NV12', (b, [yp, cp], x, y) => {
    const c = cp!.offset + (y >> 1) * cp!.stride + (x & ~1); // Cb Cr per 2x2 block
    return [b[yp!.offset + y * yp!.stride + x]!, b[c]!, b[c + 1]!];
  });
});
