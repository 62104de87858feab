/**
 * The kiosk, wired from the public API in this order: the Wayland server (wl_compositor,
 * wl_shm from libwayland, wl_output, xdg_wm_base, wp_presentation), linux-dmabuf (PRIME imports
 * into the KMS device; the scanout tranche of the fullscreen surface driven by the verdicts),
 * the presenter (direct or copy, one atomic commit per frame, page flips), the shell (the most
 * recently mapped toplevel is shown; none: black).
 *
 * Frames: a commit of the shown surface schedules a frame; while one is in flight, later commits
 * only update the surface's state and the newest is presented after the flip (no queue). After
 * the flip: wl_buffer.release of buffers that are no longer any surface's current buffer and that
 * the presenter let go of (left the screen, or copied), frame callbacks, presentation feedback.
 */
import { existsSync } from 'node:fs';
import {
  LinuxDmabuf,
  Presenter,
  PrimebufError,
  WaylandServer,
  fourcc,
  formatName,
  modifierName,
  ShmBuffer,
  formatInfo,
  installShm,
  CameraSource,
  V4l2Device,
  type CameraFrame,
  type Device,
  type LinuxDmabufBuffer,
  type PresentResult,
  type ScanoutBuffer,
  type ServerResource,
  type SurfacePlacement,
} from 'primebuf';
import { DumbBuffer, UdmabufAllocator, openSystemAllocators, type SystemAllocators } from 'primebuf/alloc';
import { describeKmsDevice, merge, scanoutConstraint } from 'primebuf/constraints';
import type { Mapping } from 'primebuf/dmabuf';
import { Framebuffer, PropertyBlob, addWriteback, type AtomicRequest } from 'primebuf/kms';
import { CONVERTIBLE_FORMATS, ROTATE_0, bufferFromAttributes, describeBuffer, findPlane, scanoutDeviceFromLive } from 'primebuf/scanout';
import { displayHonoursPlaneOffsets, kmsFormats } from 'primebuf/wayland';
import { clipDamage, installCompositor, type Surface } from './compositor.js';
import { OutputGlobal, logicalSize, openOutput, type KmsOutput, type OutputTransform } from './output.js';
import { installPresentation } from './presentation.js';
import { Shell } from './shell.js';
import { installXdgShell, type Toplevel } from './xdg-shell.js';

export interface KioskOptions {
  /** DRM device (default: the first primary node with KMS planes). */
  readonly device?: string;
  /** Connector name, e.g. 'Virtual-1' (default: the first connected one). */
  readonly connector?: string;
  /** Socket name in $XDG_RUNTIME_DIR (default: the first free wayland-N). */
  readonly socket?: string;
  /** Output transform, degrees counter-clockwise (wl_output.transform 0-3). */
  readonly transform?: OutputTransform;
  /** One line per event worth telling (a buffer's path and why, clients, errors). */
  readonly log?: (line: string) => void;
  /** Copy every frame, even what could go on a plane (tests, benchmarks). */
  readonly forceCopy?: boolean;
  /**
   * wl_shm buffers of sealed memfd pools go to the display through udmabuf, without a copy
   * (default true where /dev/udmabuf exists; false: every wl_shm buffer is copied, the
   * benchmark's baseline).
   */
  readonly shmZeroCopy?: boolean;
  /**
   * A V4L2 capture node (e.g. '/dev/video0') shown fullscreen through CameraSource: captured at
   * the largest size it offers that fits the (logical) mode, centred, unscaled; zero copy when
   * the verdict allows. A mapped client toplevel is shown instead of the camera while it is
   * there (the camera's frames are given straight back meanwhile).
   */
  readonly camera?: string;
  /** DRM format the camera captures in (default XRGB8888). */
  readonly cameraFormat?: number;
}

export interface KioskCameraStats {
  device: string;
  width: number;
  height: number;
  format: string;
  memory: 'dmabuf' | 'mmap';
  /** camera frames presented */
  frames: number;
  direct: number;
  copied: number;
  bytesCopied: number;
  /** frames given back unshown (a newer one came first, or a toplevel covered the camera) */
  dropped: number;
  /** why the frames are copied (the presenter's reasons, CameraSource.directReasons); empty when direct */
  reasons: string[];
}

export interface KioskBufferStats {
  name: string;
  /** the client's pid */
  client: number;
  kind: 'dmabuf' | 'shm';
  /** wl_shm: scanned out through a udmabuf of its pool (the presenter sees a dma-buf) */
  udmabuf?: boolean;
  width: number;
  height: number;
  format: string;
  modifier: string;
  path: 'direct' | 'copy';
  reasons: string[];
}

export interface KioskStats {
  frames: number;
  direct: number;
  copied: number;
  bytesCopied: number;
  commits: number;
  imports: number;
  addfb2: number;
  allocations: number;
  cpu: { userUs: number; systemUs: number };
  buffers: KioskBufferStats[];
  camera?: KioskCameraStats;
}

export interface KioskFrameInfo {
  readonly path: 'direct' | 'copy' | 'black';
  /** what was shown: a client's buffer, the camera, or nothing */
  readonly source: 'client' | 'camera' | 'none';
  /** The buffer shown (describeBuffer), none for black. */
  readonly buffer?: string;
  readonly bytesCopied: number;
  /** wp_presentation flags of the flip. */
  readonly flags: number;
  readonly sequence: number;
  readonly timestampNs: bigint;
}

export interface KioskCapture {
  readonly width: number;
  readonly height: number;
  /** DRM fourcc (XRGB8888). */
  readonly format: number;
  readonly stride: number;
  readonly pixels: Uint8Array;
}

export interface Kiosk {
  readonly socket: string;
  readonly device: Device;
  readonly presenter: Presenter;
  readonly output: KmsOutput;
  /** The camera's source (--camera): its stream's buffers are what the camera frames are shown from. */
  readonly camera: CameraSource | undefined;
  stats(): KioskStats;
  /** What is on screen now, through the writeback connector. */
  capture(): Promise<KioskCapture>;
  onFrame(fn: (info: KioskFrameInfo) => void): void;
  close(): Promise<void>;
}

/** capture() cannot capture on this device or in this state (no writeback, rotated plane). */
export class CaptureUnavailableError extends PrimebufError {
  override name = 'CaptureUnavailableError';
  readonly code: 'NO_WRITEBACK' | 'NOT_CLONABLE' | 'ROTATED_PLANE';
  constructor(code: CaptureUnavailableError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/** A wl_output transform as (flip, counter-clockwise rotation): flip first, then rotate. */
interface Orientation {
  readonly flip: boolean;
  readonly rot: number;
}

const fromWl = (t: number): Orientation => ({ flip: t >= 4, rot: (t % 4) * 90 });
const inverse = (o: Orientation): Orientation => (o.flip ? o : { flip: false, rot: (360 - o.rot) % 360 });
// a after b: R_a F_a R_b F_b; F R = R^-1 F
const compose = (a: Orientation, b: Orientation): Orientation =>
  a.flip ? { flip: !b.flip, rot: (a.rot - b.rot + 360) % 360 } : { flip: b.flip, rot: (a.rot + b.rot) % 360 };

/** Where a surface's buffer goes on the mode: centered, turned by the output and buffer transforms. */
export function placementFor(b: { width: number; height: number }, bufferTransform: number, scale: number, output: OutputTransform, mode: { width: number; height: number }): SurfacePlacement {
  const o = compose({ flip: false, rot: output }, inverse(fromWl(bufferTransform)));
  const swap = o.rot === 90 || o.rot === 270;
  const width = Math.max(1, Math.round((swap ? b.height : b.width) / scale));
  const height = Math.max(1, Math.round((swap ? b.width : b.height) / scale));
  const dst = { x: Math.floor((mode.width - width) / 2), y: Math.floor((mode.height - height) / 2), width, height };
  return { dst, rotation: o.rot as 0 | 90 | 180 | 270, ...(o.flip ? { reflectX: true } : {}) };
}

interface Entry {
  readonly resource: ServerResource;
  readonly scanout: ScanoutBuffer;
  readonly dmabuf: LinuxDmabufBuffer | null;
  readonly shm: ShmBuffer | null;
  /** what keeps the buffer's memory while the presenter has it (LinuxDmabufBuffer or ShmBuffer) */
  readonly life: LinuxDmabufBuffer | ShmBuffer;
  /** surfaces whose current buffer this is */
  current: number;
  /** committed by the client and not released since */
  owed: boolean;
  /** handed to the presenter, not given back by onRelease yet */
  presenterHas: boolean;
  stat: KioskBufferStats | undefined;
  /** its placement for the surface transform and scale it was last shown with (one object while they hold) */
  placed?: { readonly bufferTransform: number; readonly scale: number; readonly placement: SurfacePlacement };
  /** the scanout verdict last reported for it, with the plane and placement it was checked for */
  checked?: { readonly plane: number; readonly placement: SurfacePlacement; readonly verdict: ReturnType<Presenter['checker']['checkScanout']> };
}

const XRGB8888 = fourcc('XRGB8888');

export async function startKiosk(opts: KioskOptions = {}): Promise<Kiosk> {
  const log = opts.log ?? (() => undefined);
  const transform: OutputTransform = opts.transform ?? 0;
  if (![0, 90, 180, 270].includes(transform)) throw new RangeError(`transform must be 0, 90, 180 or 270 (got ${String(transform)})`);
  const cpuStart = process.cpuUsage();
  const out = openOutput(opts);
  // What start-up opened, undone in reverse order when a later step fails (a socket name in
  // use, a CRTC without a primary plane, a camera that cannot stream): nothing is left open.
  const undo: Array<() => void> = [() => out.device.close()];
  try {
    const { device, mode, crtcId } = out;
    const modeSize = { width: mode.hdisplay, height: mode.vdisplay };

    // Writeback: a capture buffer of the mode, and whether the writeback connector may share the
    // CRTC with the output's connector (stock vkms refuses the clone): then it rides along in
    // every commit from the modeset on, and a capture only adds its framebuffer.
    let capture: { dumb: DumbBuffer; map: Mapping; fb: Framebuffer; clonable: boolean } | undefined;
    if (out.writebackId !== undefined) {
      const dumb = DumbBuffer.create(device, { width: modeSize.width, height: modeSize.height, bpp: 32 });
      const map = dumb.map();
      const fb = Framebuffer.create(device, { width: modeSize.width, height: modeSize.height, format: XRGB8888, modifier: 0n, planes: [{ handle: dumb.handle, pitch: dumb.pitch }] });
      const primary = out.resources.planes.find((p) => p.type === 'primary' && p.possibleCrtcs.includes(crtcId));
      const blob = PropertyBlob.fromMode(device, mode);
      const probe = device.atomic().set(crtcId, 'MODE_ID', blob).set(crtcId, 'ACTIVE', 1).set(out.connectorId, 'CRTC_ID', crtcId);
      if (primary) {
        const full = (v: number): bigint => BigInt(v) << 16n;
        probe.setAll(primary.id, { FB_ID: fb, CRTC_ID: crtcId, SRC_X: 0n, SRC_Y: 0n, SRC_W: full(modeSize.width), SRC_H: full(modeSize.height), CRTC_X: 0n, CRTC_Y: 0n, CRTC_W: modeSize.width, CRTC_H: modeSize.height });
        // a rotation left on the plane by an earlier KMS client would fail the probe for nothing
        if (primary.properties.has('rotation')) probe.set(primary.id, 'rotation', ROTATE_0);
      }
      let clonable = false;
      try {
        clonable = addWriteback(probe, out.writebackId, crtcId, fb).check({ allowModeset: true }).ok;
      } finally {
        blob.close();
      }
      capture = { dumb, map, fb, clonable };
      undo.push(() => {
        fb.close();
        map.close();
        dumb.close();
      });
    }
    let armed = false;
    const extraState = (req: AtomicRequest): void => {
      if (!capture?.clonable || out.writebackId === undefined) return;
      req.set(out.writebackId, 'CRTC_ID', crtcId);
      if (!armed) return;
      armed = false;
      addWriteback(req, out.writebackId, crtcId, capture.fb);
    };

    const entries = new Map<ServerResource, Entry>();
    /** camera frames the presenter has (given back on onRelease) */
    const cameraHeld = new Map<ScanoutBuffer, CameraFrame>();
    const byScanout = new Map<ScanoutBuffer, Entry>();
    const maybeRelease = (e: Entry): void => {
      if (!e.owed || e.presenterHas || e.current > 0) return;
      e.owed = false;
      if (!e.resource.destroyed) e.life.release();
      if (e.resource.destroyed) byScanout.delete(e.scanout);
    };
    const presenter = new Presenter({
      device,
      crtcId,
      connectorId: out.connectorId,
      mode,
      extraState,
      ...(opts.forceCopy ? { forceCopy: true } : {}),
      onRelease: (b) => {
        const cf = cameraHeld.get(b);
        if (cf) {
          cameraHeld.delete(b); // off the screen (or copied): back to the camera
          if (!closed) cf.release();
          return;
        }
        const e = byScanout.get(b);
        if (!e || !e.presenterHas) return;
        e.presenterHas = false;
        e.life.unlock();
        maybeRelease(e);
        if (e.resource.destroyed && !e.presenterHas) byScanout.delete(b);
      },
    });
    undo.push(() => presenter.close());
    const primaryPlane = findPlane(scanoutDeviceFromLive(device), 'primary', crtcId)?.id;

    const server = new WaylandServer({ onHandlerError: (err, res) => log(`error in ${res.interface}@${res.id} of client ${res.client.pid}: ${err instanceof Error ? err.message : String(err)}`) });
    // primebuf's wl_shm: the formats the primary plane shows directly and those the copy converts
    // from; zero copy through udmabuf where /dev/udmabuf exists, unless turned off.
    const shmFormats = [...kmsFormats(device).primary.formats(), ...CONVERTIBLE_FORMATS].filter((f) => {
      const info = formatInfo(f);
      return info !== undefined && info.planes === 1 && (info.cpp[0] ?? 0) > 0;
    });
    undo.push(() => server.close());
    let udmabuf: UdmabufAllocator | undefined;
    if (opts.shmZeroCopy !== false && existsSync('/dev/udmabuf')) {
      try {
        udmabuf = UdmabufAllocator.open();
      } catch (err) {
        log(`wl_shm: /dev/udmabuf cannot be opened (${err instanceof Error ? err.message : String(err)}): zero copy off`);
      }
    }
    undo.push(() => udmabuf?.close());
    const display = describeKmsDevice(device);
    const shm = installShm(server, {
      formats: [...new Set(shmFormats)],
      ...(udmabuf
        ? {
            zeroCopy: {
              udmabuf,
              // cached client memory on a display that is not cache-coherent: copied instead (shm.ts)
              coherent: !merge(scanoutConstraint(display, { type: 'primary' })).set.writeCombine,
              planeOffsets: displayHonoursPlaneOffsets(device.version.name),
            },
          }
        : {}),
    });
    undo.push(() => shm.close());
    log(`wl_shm: ${udmabuf ? 'zero copy through udmabuf for sealed memfd pools' : opts.shmZeroCopy === false ? 'every buffer copied (zero copy off)' : 'every buffer copied (no /dev/udmabuf)'}`);
    let dmabufImports = 0;
    const dmabuf = LinuxDmabuf.forKmsDevice(server, device, {
      onVerdict: (v) => {
        if (v.outcome === 'created') dmabufImports++;
        else log(`client ${v.client.pid}: linux-dmabuf ${v.request} ${v.outcome}: ${v.detail}`);
      },
    });
    undo.push(() => dmabuf.close());
    const outputs = new OutputGlobal(server, out, transform);
    const surfaceOf = (r: ServerResource<'wl_surface'>): Surface | undefined => surfaces.get(r);
    const currentOf = new Map<Surface, Entry | null>();

    const entryOf = (resource: ServerResource): Entry | null => {
      const known = entries.get(resource);
      if (known) return known;
      if (resource.destroyed) return null;
      const name = `wl_buffer@${resource.id} of client ${resource.client.pid}`;
      const d = LinuxDmabuf.bufferOf(resource);
      const sb = d ? null : ShmBuffer.from(resource);
      let scanout: ScanoutBuffer;
      if (d) scanout = bufferFromAttributes(d.attributes, { allocatedOn: device.devId, name });
      else if (sb && !sb.freed) scanout = sb.scanoutBuffer(); // a udmabuf of its pool, or its copy source
      else return null;
      const life = (d ?? sb)!;
      const e: Entry = { resource, scanout, dmabuf: d, shm: sb, life, current: 0, owed: false, presenterHas: false, stat: undefined };
      entries.set(resource, e);
      byScanout.set(scanout, e);
      resource.onDestroy(() => {
        entries.delete(resource);
        if (!presenter.closed) presenter.forget(scanout);
        if (!e.presenterHas) byScanout.delete(scanout);
      });
      return e;
    };

    let closed = false;
    const shell = new Shell(() => schedule());
    const surfaces = installCompositor(server, (s) => {
      currentOf.set(s, null);
      s.onCommit(() => {
        const prev = currentOf.get(s) ?? null;
        const next = s.buffer ? entryOf(s.buffer) : null;
        if (next) next.owed = true;
        if (next !== prev) {
          currentOf.set(s, next);
          if (next) next.current++;
          if (prev) {
            prev.current--;
            maybeRelease(prev);
          }
        }
        if (shell.top?.surface === s) schedule();
      });
      s.resource.onDestroy(() => {
        const prev = currentOf.get(s);
        currentOf.delete(s);
        if (prev) {
          prev.current--;
          maybeRelease(prev);
        }
      });
    });
    installXdgShell(server, surfaceOf, () => logicalSize(mode, transform), {
      mapped: (t: Toplevel) => {
        log(`client ${t.client.pid}: toplevel${t.appId ? ` ${t.appId}` : ''} mapped`);
        for (const o of outputs.of(t.client)) t.surface.resource.send('enter', { output: o }); // fullscreen on the one output
        shell.mapped(t);
      },
      unmapped: (t: Toplevel) => {
        log(`client ${t.client.pid}: toplevel unmapped`);
        t.surface.discardFeedback();
        shell.unmapped(t);
      },
    });
    installPresentation(server, surfaceOf, outputs);
    server.onClient((c) => {
      log(`client ${c.pid} connected`);
      c.onDestroy(() => log(`client ${c.pid} disconnected`));
    });

    // ---- frames ----
    const frameListeners: Array<(info: KioskFrameInfo) => void> = [];
    const counts = { frames: 0, direct: 0, copied: 0, bytesCopied: 0 };
    const bufferStats: KioskBufferStats[] = [];
    let showing: Surface | 'camera' | null | undefined; // undefined: nothing committed yet; null: black
    let rotatedPlane = false;
    let dirty = false;
    let running: Promise<void> | null = null;
    let captureFence: ((r: PresentResult) => void) | null = null;

    const take = (r: PresentResult): void => {
      const fence = r.fences[0];
      if (!fence) return;
      if (captureFence) captureFence(r);
      else fence.close();
    };
    const emit = (info: KioskFrameInfo): void => {
      for (const fn of frameListeners) {
        try {
          fn(info);
        } catch (err) {
          log(`onFrame listener failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    };

    // While a writeback capture is in flight no new frame is presented: vkms composes the
    // capture after its commit (late, under load), and a frame meanwhile would release the buffer
    // it reads, for its client to draw into (a torn screenshot). Commits wait; the newest is shown.
    let captureGate = false;

    function schedule(): void {
      dirty = true;
      if (!running && !closed && !captureGate) {
        running = loop().finally(() => {
          running = null;
        });
      }
    }

    async function loop(): Promise<void> {
      while (dirty && !closed && !captureGate) {
        dirty = false;
        try {
          await frame();
        } catch (err) {
          log(`frame failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }

    async function frame(): Promise<void> {
      const s = shell.top?.surface;
      const e = s?.buffer ? entryOf(s.buffer) : null;
      if (!s || !e) {
        if (camera?.latest) return showCamera(camera);
        if (showing === null || showing === 'camera') return;
        const r = await presenter.clear();
        showing = null;
        rotatedPlane = false;
        take(r);
        emit({ path: 'black', source: 'none', bytesCopied: 0, flags: r.presentation?.flags ?? 0, sequence: r.presentation?.sequence ?? 0, timestampNs: r.presentation?.timestampNs ?? 0n });
        return;
      }
      if (showing !== s) s.damageAll();
      const { damage, frames, feedbacks } = s.takeFrame();
      const b = e.scanout;
      let placed = e.placed;
      if (!placed || placed.bufferTransform !== s.transform || placed.scale !== s.scale) {
        placed = e.placed = { bufferTransform: s.transform, scale: s.scale, placement: placementFor(b, s.transform, s.scale, transform, modeSize) };
      }
      const { placement } = placed;
      const had = e.presenterHas;
      if (!had) {
        e.presenterHas = true;
        e.life.lock();
      }
      // the presenter did not take a buffer it was given (an error, or nothing to show)
      const notTaken = (): void => {
        if (had || !e.presenterHas) return;
        e.presenterHas = false;
        e.life.unlock();
        maybeRelease(e);
      };
      let r: PresentResult;
      try {
        r = await presenter.present({ buffer: b, damage: clipDamage(damage, b.width, b.height), placement });
      } catch (err) {
        notTaken();
        for (const fb of feedbacks) fb.discarded();
        sendDone(frames);
        throw err;
      }
      showing = s;
      take(r);
      const p = r.presentation;
      if (r.path === 'unchanged' || !p) {
        notTaken();
        for (const fb of feedbacks) fb.discarded();
        sendDone(frames);
        return;
      }
      rotatedPlane = r.path === 'direct' && (placement.rotation !== 0 || placement.reflectX === true);
      counts.frames++;
      if (r.path === 'direct') counts.direct++;
      else counts.copied++;
      counts.bytesCopied += r.bytesCopied;
      const nowMs = Number(p.timestampNs / 1_000_000n);
      if (primaryPlane !== undefined && e.dmabuf && !s.destroyed) {
        const plane = r.path === 'direct' && r.plane !== undefined ? r.plane : primaryPlane;
        let c = e.checked;
        if (!c || c.plane !== plane || c.placement !== placement) {
          c = e.checked = { plane, placement, verdict: presenter.checker.checkScanout(b, plane, { ...placement, crtc: crtcId }) };
        }
        dmabuf.reportScanout(s.resource, c.verdict, nowMs);
      }
      const path = r.path === 'direct' ? 'direct' : 'copy';
      if (!e.stat || e.stat.path !== path) {
        const reasons = [...presenter.explain(b, placement)];
        const zc = e.shm?.zeroCopy;
        if (zc && !zc.ok) reasons.unshift(`no zero copy: ${zc.reason}`);
        const first = !e.stat;
        e.stat = {
          name: b.name ?? '',
          client: e.resource.client.pid,
          kind: e.shm ? 'shm' : 'dmabuf',
          ...(e.shm ? { udmabuf: e.shm.zeroCopy.ok } : {}),
          width: b.width,
          height: b.height,
          format: formatName(b.format),
          modifier: b.kind === 'shm' ? 'none (wl_shm)' : modifierName(b.modifier) + (e.shm ? ' (udmabuf of the wl_shm pool)' : ''),
          path,
          reasons,
        };
        bufferStats.push(e.stat);
        log(`${describeBuffer(b)}: ${path}${r.path === 'direct' ? ` on plane ${r.plane}` : ''}${first ? '' : ' (changed)'}${reasons.length ? ` (${reasons.join('; ')})` : ''}`);
      }
      const info = { tvSec: p.tvSec, tvNsec: p.tvUsec * 1000, refreshNs: p.refreshNs, sequence: p.sequence, flags: p.flags };
      for (const fb of feedbacks) fb.presented(info);
      sendDone(frames, nowMs);
      if (frameListeners.length > 0) emit({ path, source: 'client', buffer: describeBuffer(b), bytesCopied: r.bytesCopied, flags: p.flags, sequence: p.sequence, timestampNs: p.timestampNs });
    }

    // ---- the camera (--camera) ----
    interface Camera {
      readonly dev: V4l2Device;
      readonly sys: SystemAllocators;
      readonly src: CameraSource;
      readonly stats: KioskCameraStats;
      /** the newest frame not shown yet */
      latest: CameraFrame | null;
      pump: Promise<void>;
      /** where its frames go (one object: every frame has the capture size, so the presenter's key is made once) */
      placement?: SurfacePlacement;
    }
    let camera: Camera | undefined;

    /** The camera's frames as they come: the newest waits for the next frame of the kiosk. */
    async function pumpCamera(c: Camera): Promise<void> {
      for (;;) {
        let f: CameraFrame;
        try {
          f = await c.src.next();
        } catch (err) {
          if (!closed) log(`camera ${c.dev.path}: ${err instanceof Error ? err.message : String(err)}`);
          return;
        }
        if (closed) return;
        if (c.latest) {
          c.latest.release(); // replaced before it was shown
          c.stats.dropped++;
        }
        if (shell.top) {
          f.release(); // a toplevel covers the camera
          c.stats.dropped++;
          c.latest = null;
          continue;
        }
        c.latest = f;
        schedule();
      }
    }

    async function showCamera(c: Camera): Promise<void> {
      const f = c.latest!;
      c.latest = null;
      const b = f.buffer;
      const placement = (c.placement ??= placementFor(b, 0, 1, transform, modeSize));
      cameraHeld.set(b, f);
      let r: PresentResult;
      try {
        r = await presenter.present({ buffer: b, placement, constraints: c.src.constraints });
      } catch (err) {
        if (cameraHeld.delete(b)) f.release();
        throw err;
      }
      showing = 'camera';
      rotatedPlane = r.path === 'direct' && placement.rotation !== 0;
      take(r);
      const p = r.presentation;
      if (r.path === 'unchanged' || !p) return;
      const path = r.path === 'direct' ? 'direct' : 'copy';
      counts.frames++;
      counts[path === 'direct' ? 'direct' : 'copied']++;
      counts.bytesCopied += r.bytesCopied;
      const st = c.stats;
      st.frames++;
      st[path === 'direct' ? 'direct' : 'copied']++;
      st.bytesCopied += r.bytesCopied;
      if (st.frames === 1 || (path === 'copy') !== st.reasons.length > 0) {
        st.reasons = path === 'copy' ? [...c.src.directReasons, ...presenter.explain(b, placement, !c.src.constraints.writeCombine)] : [];
        log(`camera ${c.dev.path}: ${path}${r.path === 'direct' ? ` on plane ${r.plane}` : ''}${st.reasons.length ? ` (${st.reasons.join('; ')})` : ''}`);
      }
      if (frameListeners.length > 0) emit({ path, source: 'camera', buffer: describeBuffer(b), bytesCopied: r.bytesCopied, flags: p.flags, sequence: p.sequence, timestampNs: p.timestampNs });
    }

    function sendDone(frames: ServerResource<'wl_callback'>[], ms = Number(process.hrtime.bigint() / 1_000_000n)): void {
      for (const cb of frames) {
        if (cb.destroyed) continue;
        cb.send('done', { callback_data: ms >>> 0 });
        cb.destroy();
      }
    }

    if (opts.camera !== undefined) {
      camera = openCamera(opts.camera, opts.cameraFormat ?? XRGB8888, device, logicalSize(mode, transform));
      const c = camera;
      undo.push(() => {
        c.src.stop();
        c.dev.close();
        c.sys.close();
      });
      log(`camera ${c.dev.path}: ${c.stats.width}x${c.stats.height} ${c.stats.format}, ${c.stats.memory} buffers${c.src.directReasons.length ? `, for the copy path (${c.src.directReasons.join('; ')})` : ', allocated for camera and display'}`);
      c.pump = pumpCamera(c);
    }

    const socket = server.addSocket(opts.socket);
    log(`listening on WAYLAND_DISPLAY=${socket}: ${device.path} ${out.connectorName} ${modeSize.width}x${modeSize.height}${transform ? `, transform ${transform}` : ''}${opts.forceCopy ? ', every frame copied' : ''}`);
    // The screen starts black (and the modeset is done) before any client shows something.
    schedule();

    let captures: Promise<unknown> = Promise.resolve();
    const captureOnce = async (): Promise<KioskCapture> => {
      if (!capture || out.writebackId === undefined) throw new CaptureUnavailableError('NO_WRITEBACK', `${device.path} has no writeback connector`);
      if (!capture.clonable) throw new CaptureUnavailableError('NOT_CLONABLE', `${device.path}: the writeback connector cannot share the CRTC with ${out.connectorName}`);
      if (closed) throw new PrimebufError('the kiosk is closed');
      captureGate = true;
      try {
        if (running) await running; // the frame in flight first: then the capture shows the newest state
        return await captureGated();
      } finally {
        captureGate = false;
        if (dirty && !closed) schedule();
      }
    };
    const captureGated = async (): Promise<KioskCapture> => {
      if (!capture) throw new CaptureUnavailableError('NO_WRITEBACK', `${device.path} has no writeback connector`);
      if (rotatedPlane) {
        // vkms 6.12 panics the kernel when writeback reads a rotated plane (README, the vkms rig)
        throw new CaptureUnavailableError('ROTATED_PLANE', 'a client buffer is on a rotated plane: writeback is not asked to read it (vkms panics)');
      }
      const { map, dumb } = capture;
      map.bytes().fill(0xff);
      const got = new Promise<PresentResult>((resolve) => (captureFence = resolve));
      armed = true;
      try {
        const r = await presenter.refresh();
        take(r);
        const withFence = await got;
        const fence = withFence.fences[0]!;
        try {
          await fence.wait(10_000);
        } finally {
          fence.close();
        }
      } finally {
        captureFence = null;
        armed = false;
      }
      const stride = modeSize.width * 4;
      const pixels = new Uint8Array(stride * modeSize.height);
      const src = map.bytes();
      for (let y = 0; y < modeSize.height; y++) pixels.set(src.subarray(y * dumb.pitch, y * dumb.pitch + stride), y * stride);
      return { width: modeSize.width, height: modeSize.height, format: XRGB8888, stride, pixels };
    };

    const kiosk: Kiosk = {
      socket,
      device,
      presenter,
      output: out,
      camera: camera?.src,
      stats(): KioskStats {
        const ps = presenter.stats;
        const cpu = process.cpuUsage(cpuStart);
        return {
          ...counts,
          commits: ps.commits,
          imports: dmabufImports + ps.imports,
          addfb2: ps.addfb2,
          allocations: ps.allocations,
          cpu: { userUs: cpu.user, systemUs: cpu.system },
          buffers: bufferStats.map((s) => ({ ...s, reasons: [...s.reasons] })),
          ...(camera ? { camera: { ...camera.stats, reasons: [...camera.stats.reasons] } } : {}),
        };
      },
      capture(): Promise<KioskCapture> {
        const run = captures.then(captureOnce);
        captures = run.catch(() => undefined);
        return run;
      },
      onFrame(fn) {
        frameListeners.push(fn);
      },
      async close(): Promise<void> {
        if (closed) return;
        closed = true;
        await captures;
        // the frame in flight ends with its flip; a flip that never comes (a hung device) must
        // not hang the exit: closing the device below rejects it
        if (running) await Promise.race([running, new Promise((r) => setTimeout(r, 2000).unref())]);
        dmabuf.close();
        shm.close();
        server.close(); // every client's resources are destroyed: buffers forgotten, surfaces gone
        // Everything off in one blocking commit (the writeback connector too), then the
        // presenter removes its framebuffers.
        try {
          const req = device.atomic();
          for (const p of out.resources.planes) {
            if (!p.possibleCrtcs.includes(crtcId)) continue;
            req.set(p.id, 'FB_ID', 0).set(p.id, 'CRTC_ID', 0);
            if (p.properties.has('rotation')) req.set(p.id, 'rotation', ROTATE_0); // leave no rotated plane behind
          }
          req.set(out.connectorId, 'CRTC_ID', 0);
          if (capture?.clonable && out.writebackId !== undefined) req.set(out.writebackId, 'CRTC_ID', 0);
          req.set(crtcId, 'ACTIVE', 0).set(crtcId, 'MODE_ID', 0).commitBlocking({ allowModeset: true });
        } catch (err) {
          log(`turning the output off failed: ${err instanceof Error ? err.message : String(err)}`);
        }
        presenter.close();
        if (camera) {
          // the presenter let go of the camera's buffers: STREAMOFF, the buffers freed
          cameraHeld.clear();
          camera.latest = null;
          camera.src.stop();
          await camera.pump;
          camera.dev.close();
          camera.sys.close();
        }
        // what was still on screen: the presenter let go of it without onRelease
        for (const e of byScanout.values()) {
          if (!e.presenterHas) continue;
          e.presenterHas = false;
          e.life.unlock();
        }
        byScanout.clear();
        if (capture) {
          capture.fb.close();
          capture.map.close();
          capture.dumb.close();
        }
        udmabuf?.close();
        device.close();
        log('closed: presenter, framebuffers and device released');
      },
    };
    return kiosk;
  } catch (err) {
    for (const fn of undo.reverse()) {
      try {
        fn();
      } catch {
        // the next one still runs
      }
    }
    throw err;
  }
}

/** The largest size the camera offers for `pixelformat` that fits `fit` (discrete sizes, or a stepwise range). */
function cameraSize(dev: V4l2Device, pixelformat: number, fit: { width: number; height: number }): { width: number; height: number } {
  const fs = dev.frameSizes(pixelformat);
  if (!fs) throw new RangeError(`camera ${dev.path}: no frame sizes for its format`);
  if (fs.kind === 'discrete') {
    const ok = fs.sizes.filter((z) => z.width <= fit.width && z.height <= fit.height);
    if (ok.length === 0) throw new RangeError(`camera ${dev.path}: none of its sizes (${fs.sizes.map((z) => `${z.width}x${z.height}`).join(', ')}) fits ${fit.width}x${fit.height}`);
    return ok.reduce((a, z) => (z.width * z.height > a.width * a.height ? z : a));
  }
  const step = (v: number, min: number, max: number, st: number): number => Math.min(max, min + Math.floor((v - min) / Math.max(1, st)) * Math.max(1, st));
  if (fs.minWidth > fit.width || fs.minHeight > fit.height) throw new RangeError(`camera ${dev.path}: its smallest size ${fs.minWidth}x${fs.minHeight} does not fit ${fit.width}x${fit.height}`);
  return { width: step(fit.width, fs.minWidth, fs.maxWidth, fs.stepWidth), height: step(fit.height, fs.minHeight, fs.maxHeight, fs.stepHeight) };
}

function openCamera(path: string, format: number, device: Device, fit: { width: number; height: number }) {
  const dev = V4l2Device.open(path);
  let sys: SystemAllocators | undefined;
  try {
    const pf = dev.pixelformatFor(format);
    if (pf === null) throw new RangeError(`camera ${path} does not capture ${formatName(format)}`);
    const size = cameraSize(dev, pf, fit);
    sys = openSystemAllocators(); // after the kiosk's device: its fd is the DRM master
    const src = CameraSource.open({ camera: dev, display: describeKmsDevice(device), pool: sys.pool, ...size, format });
    const stats: KioskCameraStats = { device: path, ...size, format: formatName(format), memory: src.memory, frames: 0, direct: 0, copied: 0, bytesCopied: 0, dropped: 0, reasons: [] };
    return { dev, sys, src, stats, latest: null as CameraFrame | null, pump: Promise.resolve() };
  } catch (err) {
    sys?.close();
    dev.close();
    throw err;
  }
}
