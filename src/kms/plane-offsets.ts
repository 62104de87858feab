/**
 * Does the display read a framebuffer's plane offsets right? Asked of the display itself where
 * it has a writeback connector: a framebuffer whose plane 0 starts `k` rows into its buffer is
 * put on the primary plane, the CRTC's output is captured through writeback, and the capture is
 * compared with what the framebuffer holds. Stock vkms of Linux 6.12 shows rows 2k on (it adds
 * the offset twice: the shadow plane's `data` pointers already include it, and
 * vkms_formats.c adds `fb->offsets[0]` again); a display that honours offsets shows rows k on.
 *
 * Without a writeback connector, or when the probe cannot run (a commit refused, no mode), the
 * model keeps PLANE_OFFSETS_ASSUMED: honoured, as KMS promises (no table of drivers by name).
 * A capture that matches neither picture counts as not honoured: buffers with plane offsets are
 * then copied, which is right on any display.
 *
 * The probe is a modeset of the CRTC with the writeback connector alone on it (a display whose
 * writeback encoder cannot be cloned with the output's, as stock vkms, accepts only that): the
 * CRTC's other connectors are detached, and the CRTC is left off afterwards. Run it at start-up,
 * before the compositor's first commit.
 */
import { DumbBuffer } from '../alloc/backends/dumb.js';
import type { RawMode } from '../native/drm.js';
import type { SyncFile } from '../dmabuf/sync-file.js';
import { PropertyBlob } from './blob.js';
import { Framebuffer } from './framebuffer.js';
import { preferredMode } from './resources.js';
import { addWriteback } from './writeback.js';
import type { KmsDeviceModel, PlaneOffsetsFact } from './model.js';

const XRGB8888 = 0x34325258;

export interface PlaneOffsetsProbeOptions {
  /** The CRTC to probe on (default: the first the writeback connector can use). */
  readonly crtcId?: number;
  /** The mode (default: the CRTC's current mode, else a connector's preferred mode). */
  readonly mode?: RawMode;
  /** Rows the framebuffer starts into its buffer (default 8). */
  readonly rows?: number;
  /** How long to wait for the capture (default 10 s). */
  readonly timeoutMs?: number;
}

/** The colour of buffer row `r` in the probe's picture (distinct for every row below 2^16). */
export function probeRowColour(r: number): number {
  return ((r & 0xff) << 16) | (((r >> 8) & 0xff) << 8) | 0x5a;
}

/**
 * Which buffer row each captured row came from, as far as `rows` of the capture tell: the
 * capture's row y (every pixel of it) compared with probeRowColour. Exported for tests.
 */
export function classifyCapture(capture: (x: number, y: number) => number, width: number, height: number, rows: number): { verdict: 'honoured' | 'twice' | 'neither'; detail: string } {
  let once = 0;
  let twice = 0;
  let first = '';
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = capture(x, y) & 0xffffff;
      if (v === probeRowColour(y + rows)) once++;
      else if (v === probeRowColour(y + 2 * rows)) twice++;
      else if (first === '') first = ` (first other pixel at (${x},${y}): 0x${v.toString(16)}, the framebuffer has 0x${probeRowColour(y + rows).toString(16)} there)`;
    }
  }
  const all = width * height;
  if (once === all) return { verdict: 'honoured', detail: `the writeback capture shows the framebuffer's rows: plane offsets are read once` };
  if (twice === all) return { verdict: 'twice', detail: `the writeback capture shows the rows ${rows} further on: the display applies a plane offset twice` };
  return { verdict: 'neither', detail: `the writeback capture matches neither the framebuffer nor its rows shifted by the offset (${once} and ${twice} of ${all} pixels)${first}` };
}

/**
 * Probes the display of `model` (opened: model.device) and records the result in the model
 * (model.setPlaneOffsets). Returns the fact. Never throws for a display that cannot be probed: the
 * fact then stays assumed, with the reason in its detail.
 */
export async function probePlaneOffsets(model: KmsDeviceModel, opts: PlaneOffsetsProbeOptions = {}): Promise<PlaneOffsetsFact> {
  const device = model.device;
  const keep = (why: string): PlaneOffsetsFact => {
    const fact: PlaneOffsetsFact = { honoured: true, source: 'assumed', detail: `not probed: ${why}; assumed honoured, as AddFB2 promises` };
    model.setPlaneOffsets(fact);
    return model.planeOffsets;
  };
  if (!device) return keep('no open device (a recorded model)');
  const res = model.resources;
  const wb = res.connectors.find((c) => c.writeback);
  if (!wb) return keep(`${model.name} has no writeback connector`);
  if (wb.writebackFormats && !wb.writebackFormats.includes(XRGB8888)) return keep(`${wb.name} does not write XRGB8888`);
  const wbCrtcs = new Set(res.encoders.filter((e) => wb.encoders.includes(e.id)).flatMap((e) => e.possibleCrtcs));
  const crtc = res.crtcs.find((c) => (opts.crtcId !== undefined ? c.id === opts.crtcId : wbCrtcs.size === 0 || wbCrtcs.has(c.id)));
  if (!crtc) return keep(opts.crtcId !== undefined ? `no CRTC ${opts.crtcId} on ${model.name}` : `no CRTC for ${wb.name}`);
  const primary = res.planes.find((p) => p.type === 'primary' && p.possibleCrtcs.includes(crtc.id) && p.formats.has(XRGB8888, 0n));
  if (!primary) return keep(`CRTC ${crtc.id} has no primary plane that takes XRGB8888 LINEAR`);
  const mode = opts.mode ?? crtc.mode ?? [wb, ...res.connectors.filter((c) => !c.writeback)].map(preferredMode).find((m) => m !== undefined);
  if (!mode) return keep(`no mode for CRTC ${crtc.id} (connectors not probed)`);
  const W = mode.hdisplay;
  const H = mode.vdisplay;
  const rows = opts.rows ?? 8;

  const owned: Array<{ close(): void }> = [];
  let fence: SyncFile | null = null;
  try {
    // the buffer holds H + 2*rows rows: a display that adds the offset twice still reads inside it
    const src = DumbBuffer.create(device, { width: W, height: H + 2 * rows, bpp: 32 });
    owned.push(src);
    const srcMap = src.map();
    owned.push(srcMap);
    const sv = new DataView(srcMap.buffer);
    for (let r = 0; r < H + 2 * rows; r++) {
      const c = probeRowColour(r);
      for (let x = 0; x < W; x++) sv.setUint32(r * src.pitch + x * 4, c, true);
    }
    const fb = Framebuffer.create(device, { width: W, height: H, format: XRGB8888, modifier: 0n, planes: [{ handle: src.handle, pitch: src.pitch, offset: rows * src.pitch }] });
    owned.push(fb);
    const out = DumbBuffer.create(device, { width: W, height: H, bpp: 32 });
    owned.push(out);
    const outMap = out.map();
    owned.push(outMap);
    new Uint8Array(outMap.buffer).fill(0);
    const outFb = Framebuffer.create(device, { width: W, height: H, format: XRGB8888, modifier: 0n, planes: [{ handle: out.handle, pitch: out.pitch }] });
    owned.push(outFb);
    const blob = PropertyBlob.fromMode(device, mode);
    owned.push(blob);

    const req = device.atomic().set(crtc.id, 'MODE_ID', blob).set(crtc.id, 'ACTIVE', 1);
    for (const c of res.connectors) if (!c.writeback && c.crtcId === crtc.id) req.set(c.id, 'CRTC_ID', 0);
    for (const p of res.planes) if (p.id !== primary.id && p.crtcId === crtc.id) req.setAll(p.id, { FB_ID: 0, CRTC_ID: 0 });
    const full = (v: number): bigint => BigInt(v) << 16n;
    req.setAll(primary.id, { FB_ID: fb, CRTC_ID: crtc.id, SRC_X: 0n, SRC_Y: 0n, SRC_W: full(W), SRC_H: full(H), CRTC_X: 0n, CRTC_Y: 0n, CRTC_W: W, CRTC_H: H });
    if (primary.properties.has('rotation')) req.set(primary.id, 'rotation', 1);
    addWriteback(req, wb.id, crtc.id, outFb);
    try {
      fence = req.commitBlocking({ allowModeset: true }).fences[0] ?? null;
    } catch (err) {
      return keep(`the probe's commit was refused (${err instanceof Error ? err.message : String(err)})`);
    }
    try {
      if (!fence) return keep('the probe commit returned no writeback fence');
      await fence.wait(opts.timeoutMs ?? 10_000);
    } finally {
      // the CRTC off again: the compositor's first commit sets the mode it wants
      const off = device.atomic().set(wb.id, 'CRTC_ID', 0).set(wb.id, 'WRITEBACK_FB_ID', 0).setAll(primary.id, { FB_ID: 0, CRTC_ID: 0 }).set(crtc.id, 'ACTIVE', 0).set(crtc.id, 'MODE_ID', 0);
      try {
        off.commitBlocking({ allowModeset: true });
      } catch {
        // left as the probe set it: the compositor's modeset replaces it
      }
    }
    const ov = new DataView(outMap.buffer);
    const c = classifyCapture((x, y) => ov.getUint32(y * out.pitch + x * 4, true), W, H, rows);
    const fact: PlaneOffsetsFact = {
      honoured: c.verdict === 'honoured',
      source: 'probe',
      detail: `${model.name} (${model.driver}), ${wb.name} on CRTC ${crtc.id}, plane ${primary.id}, plane offset ${rows * src.pitch} bytes (${rows} rows): ${c.detail}`,
    };
    model.setPlaneOffsets(fact);
    return model.planeOffsets;
  } catch (err) {
    return keep(`the probe failed (${err instanceof Error ? err.message : String(err)})`);
  } finally {
    fence?.close();
    for (const o of owned.reverse()) o.close();
  }
}
