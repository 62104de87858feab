/**
 * The kiosk, wired from the public API in this order: the Wayland server (wl_compositor,
 * wl_shm from libwayland, wl_output, xdg_wm_base, wp_presentation), linux-dmabuf (PRIME imports
 * into the KMS device; the scanout tranche of the fullscreen surface driven by the verdicts),
 * the presenter (direct or copy, one atomic commit per frame, page flips), the shell (the most
 * recently mapped toplevel is shown; none: black). The camera (--camera) is in camera.ts, the
 * writeback screenshots in capture.ts, the placement math in the library (placementFor).
 *
 * Frames: a commit of the shown surface schedules a frame; while one is in flight, later commits
 * only update the surface's state and the newest is presented after the flip (no queue). After
 * the flip: frame callbacks, presentation feedback. Buffers: the library's buffer object of each
 * committed wl_buffer (BufferLifetime.of), surface-locked while it is the surface's current
 * content and locked by the presenter while it reads it; the library sends wl_buffer.release with
 * the last unlock, and a destroyed buffer's caches leave with it. The kiosk keeps no map of them.
 * A commit that puts nothing new on screen waits for the next vblank instead (pacer.ts).
 *
 * Scenes: when the shown toplevel is more than one plain surface (subsurfaces, popups, a
 * viewport, a single-pixel buffer: scene.ts builds the SceneFrame), the frame goes through
 * presenter.presentScene with the default cursor on top (cursor.ts): planes assigned across the
 * surfaces, the rest composed. Every surface of the scene gets its frame callbacks and feedback
 * (ZERO_COPY for those on a plane of their own), the log says per surface plane or composed and
 * why, stats.scene counts planes used, surfaces composed and bytes composed. A single plain
 * surface keeps the single-surface present() (its per-buffer stats and copy path), without the
 * cursor. Either way each dma-buf surface's linux-dmabuf feedback follows its scanout outcome
 * (reportScanout: on a plane, or composed for reasons re-allocation could fix).
 *
 * The direct lane (primebuf/wayland DirectLane): after a single-surface frame that put the
 * surface's buffer on a plane, or copied a plain wl_shm buffer, with nothing else waiting, the
 * surface's next frames run in the addon (commit, flip, callbacks, releases) until anything else
 * happens; then laneReturned applies the state it left and the frame loop goes on here. Any
 * schedule() hands it back first. Off with directLane: false, and while onFrame listeners exist.
 */
import { existsSync } from 'node:fs';
import {
  LinuxDmabuf,
  Presenter,
  WaylandServer,
  fourcc,
  formatName,
  PRESENTATION_ZERO_COPY,
  modifierName,
  ShmBuffer,
  installShm,
  type CameraSource,
  type Device,
  type PresentResult,
  type SceneResult,
  type SceneSurface,
  type ScanoutBuffer,
  type ServerResource,
  type SurfacePlacement,
} from 'primebuf';
import { UdmabufAllocator } from 'primebuf/alloc';
import type { InputContext, KeymapNames } from 'primebuf/input';
import { probePlaneOffsets } from 'primebuf/kms';
import { describeBuffer, findPlane, placementFor, scanoutDeviceFromLive } from 'primebuf/scanout';
import { BufferLifetime, DirectLane, LinuxDmabufBuffer, type DirectLaneHandback } from 'primebuf/wayland';
import { KioskCamera, type KioskCameraStats } from './camera.js';
import { WritebackCapture, type KioskCapture } from './capture.js';
import { clipOwnDamage, installCompositor, type Surface } from './compositor.js';
import { KioskCursor } from './cursor.js';
import { DataDeviceManager } from './data-device.js';
import { FocusPolicy } from './focus.js';
import { sessionOpener } from 'primebuf/session';
import { LibinputBackend, defaultInput, parseKeySpec } from './input.js';
import { logicalToCrtc } from './pick.js';
import { OutputGlobal, logicalSize, openOutput, type KmsOutput, type OutputTransform } from './output.js';
import { HiddenFrames, VblankPacer, sendDone } from './pacer.js';
import { installPresentation } from './presentation.js';
import { buildScene, type BuiltScene } from './scene.js';
import { Seat } from './seat.js';
import { followSession, openDeviceAccess, type DeviceAccess, type SessionMode } from './session.js';
import { Shell } from './shell.js';
import { SinglePixelBuffer, installSinglePixelBuffer } from './single-pixel.js';
import { FrameSlowdown } from './slower.js';
import { installSubcompositor } from './subsurface.js';
import { installViewporter } from './viewporter.js';
import { installXdgShell, type Toplevel } from './xdg-shell.js';

export type { KioskCameraStats } from './camera.js';
export { CaptureUnavailableError, type KioskCapture } from './capture.js';

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
  /**
   * How the display device is opened (--session, session.ts): 'libseat' through seatd or logind
   * (no root; presenting pauses while the session is switched away), 'direct' by open(2) (root),
   * 'auto' (default) libseat when a seat manager answers, else direct when root.
   */
  readonly session?: SessionMode;
  /**
   * No default cursor (--hide-cursor). Otherwise, until the kiosk has input, an arrow at the
   * centre of the output, in a buffer the kiosk owns (cursor.ts).
   */
  readonly hideCursor?: boolean;
  /**
   * Input (input.ts): the context the seat is driven from; false (--no-input): none, a seat
   * without capabilities. Default: defaultInput (openInput of primebuf/input, through the session's
   * opener when the kiosk has a libseat session).
   */
  readonly input?: (() => InputContext | null) | false;
  /** The keymap names for the default input (--keymap LAYOUT[,VARIANT]; unset: XKB_DEFAULT_*). */
  readonly keymap?: KeymapNames;
  /** A key the kiosk keeps for itself to quit (--quit-key, e.g. 'ctrl+alt+BackSpace'); none by default. */
  readonly quitKey?: string;
  /** The quit key was pressed (the kiosk stays open: the caller closes it). */
  readonly onQuit?: () => void;
  /**
   * The direct lane (primebuf/wayland DirectLane; default true, --no-direct-lane: false): once
   * the shown surface is alone on a plane or plainly copied (an untransformed wl_shm buffer),
   * its steady-state frames (a known buffer committed,
   * flipped, callbacks and releases) run in the addon without entering JavaScript, until anything
   * else happens. Off while onFrame listeners are registered (they hear of every frame).
   */
  readonly directLane?: boolean;
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
  /**
   * Once a frame of several surfaces (subsurfaces, popups, viewports, single-pixel buffers) was
   * shown through presentScene: such frames, planes used by the last one, surfaces composed and
   * bytes composed over all of them. (A frame of one plain surface goes the single-surface way,
   * counted above.)
   */
  scene?: { frames: number; planesUsed: number; surfacesComposed: number; bytesComposed: number };
  commits: number;
  imports: number;
  addfb2: number;
  allocations: number;
  cpu: { userUs: number; systemUs: number };
  /**
   * The direct lane (KioskOptions.directLane): frames it flipped (counted in frames and direct as
   * well), client commits it handled, times it was armed and handed back, and whether it is armed.
   */
  lane: { frames: number; commits: number; arms: number; handbacks: number; armed: boolean; fences: number };
  /**
   * One entry per client buffer the kiosk has shown: every live wl_buffer's, then those of the
   * newest BUFFER_STATS_HISTORY (32) buffers that are gone or changed path since (oldest first);
   * bounded however many buffers clients create.
   */
  buffers: KioskBufferStats[];
  camera?: KioskCameraStats;
}

export interface KioskFrameInfo {
  /** a scene frame is 'direct' when every surface is on a plane, else 'copy' (some were composed) */
  readonly path: 'direct' | 'copy' | 'black';
  /** what was shown: a client's buffer, the camera, or nothing */
  readonly source: 'client' | 'camera' | 'none';
  /** The buffer shown (describeBuffer), none for black. */
  readonly buffer?: string;
  /** bytes copied, or composed for a scene frame */
  readonly bytesCopied: number;
  /** A scene frame: per surface, bottom to top, on a plane or composed and why. */
  readonly scene?: SceneResult['surfaces'];
  /** wp_presentation flags of the flip. */
  readonly flags: number;
  readonly sequence: number;
  readonly timestampNs: bigint;
}

export interface Kiosk {
  readonly socket: string;
  readonly device: Device;
  readonly presenter: Presenter;
  readonly output: KmsOutput;
  /** The camera's source (--camera): its stream's buffers are what the camera frames are shown from. */
  readonly camera: CameraSource | undefined;
  /** The default cursor (cursor.ts): `cursor.sceneSurface()` is undefined with hideCursor. */
  readonly cursor: KioskCursor;
  /** How the devices were opened (session.ts): `access.session` is the libseat session, if any. */
  readonly access: DeviceAccess;
  stats(): KioskStats;
  /** What is on screen now, through the writeback connector. */
  capture(): Promise<KioskCapture>;
  /** Where the pointer is on the output's logical area (undefined: the kiosk has no input). */
  pointer(): { x: number; y: number } | undefined;
  onFrame(fn: (info: KioskFrameInfo) => void): void;
  close(): Promise<void>;
}

/**
 * What the kiosk remembers of a buffer it showed, kept beside the library's buffer object (a
 * WeakMap keyed by it: gone with the buffer); the buffer itself is always found through the
 * library (BufferLifetime.of(wl_buffer)), never through a map of the kiosk's.
 */
interface BufferNotes {
  stat: KioskBufferStats | undefined;
  /** its placement for the surface transform and scale it was last shown with (one object while they hold) */
  placed?: { readonly bufferTransform: number; readonly scale: number; readonly placement: SurfacePlacement };
  /** the scanout verdict last reported for it, with the plane and placement it was checked for */
  checked?: { readonly plane: number; readonly placement: SurfacePlacement; readonly verdict: ReturnType<Presenter['checker']['checkScanout']> };
}

const XRGB8888 = fourcc('XRGB8888');

/** How often frame callbacks of surfaces that are not shown are answered (1 Hz). */
export const HIDDEN_FRAME_INTERVAL_MS = 1000;

/** Stats of buffers that are gone kept for KioskStats.buffers (the newest ones). */
export const BUFFER_STATS_HISTORY = 32;

export async function startKiosk(opts: KioskOptions = {}): Promise<Kiosk> {
  const log = opts.log ?? (() => undefined);
  const transform: OutputTransform = opts.transform ?? 0;
  if (![0, 90, 180, 270].includes(transform)) throw new RangeError(`transform must be 0, 90, 180 or 270 (got ${String(transform)})`);
  const cpuStart = process.cpuUsage();
  const quitKey = opts.quitKey !== undefined ? parseKeySpec(opts.quitKey) : undefined;
  const access = await openDeviceAccess(opts.session ?? 'auto', { log });
  let out: KmsOutput;
  try {
    out = openOutput({ ...opts, open: (p) => access.open(p) });
  } catch (err) {
    access.close();
    throw err;
  }
  log(`display ${out.device.path} opened ${access.via === 'libseat' ? `through ${access.description}` : 'directly (root)'}`);
  // What start-up opened, undone in reverse order when a later step fails (a socket name in
  // use, a CRTC without a primary plane, a camera that cannot stream): nothing is left open.
  const undo: Array<() => void> = [() => access.close(), () => out.device.close()];
  try {
    const { device, model, mode, crtcId } = out;
    const modeSize = { width: mode.hdisplay, height: mode.vdisplay };
    // The device's facts were read once (out.model); the plane-offset quirk is asked of the
    // display through its writeback connector before the first commit (assumed honoured without one).
    const offsets = await probePlaneOffsets(model, { crtcId, mode });
    log(`plane offsets: ${offsets.honoured ? 'honoured' : 'not honoured: buffers with a plane offset are copied'} (${offsets.source}): ${offsets.detail}`);

    // Writeback: a capture buffer of the mode, the writeback connector in every commit when it may
    // share the CRTC (capture.ts).
    const capture = WritebackCapture.open(out);
    undo.push(() => capture.close());

    let camera: KioskCamera | undefined;
    /** the failed camera was shut down */
    let cameraRetired = false;
    const presenter = new Presenter({
      device,
      crtcId,
      connectorId: out.connectorId,
      mode,
      model: scanoutDeviceFromLive(model),
      // the writeback connector rides along in every request of the output, TEST_ONLY included
      extras: [capture],
      ...(opts.forceCopy ? { forceCopy: true } : {}),
      // every buffer (a client's, a camera frame) has a life the presenter locks: nothing to hand back here
    });
    undo.push(() => presenter.close());
    // The default cursor's buffer (none with hideCursor), owned by the kiosk, closed after the presenter.
    const cursor = KioskCursor.forDevice(device, {
      hidden: opts.hideCursor === true,
      cursorWidth: out.resources.cursorWidth,
      cursorHeight: out.resources.cursorHeight,
      mode: modeSize,
      rotation: transform,
    });
    undo.push(() => cursor.close());
    const primaryPlane = findPlane(scanoutDeviceFromLive(model), 'primary', crtcId)?.id;

    const server = new WaylandServer({ onHandlerError: (err, res) => log(`error in ${res.interface}@${res.id} of client ${res.client.pid}: ${err instanceof Error ? err.message : String(err)}`) });
    undo.push(() => server.close());
    // the shown surface's steady state of direct frames, in the addon (armLane below)
    const lane = opts.directLane === false ? undefined : new DirectLane(server, presenter);
    let udmabuf: UdmabufAllocator | undefined;
    if (opts.shmZeroCopy !== false && existsSync('/dev/udmabuf')) {
      try {
        udmabuf = UdmabufAllocator.open();
      } catch (err) {
        log(`wl_shm: /dev/udmabuf cannot be opened (${err instanceof Error ? err.message : String(err)}): zero copy off`);
      }
    }
    undo.push(() => udmabuf?.close());
    // primebuf's wl_shm: its formats (the primary plane's and those the copy converts from), the
    // display's coherence and plane offsets come from the model; zero copy through udmabuf where
    // /dev/udmabuf exists, unless turned off.
    const shm = installShm(server, { model, ...(udmabuf ? { zeroCopy: { udmabuf } } : {}) });
    undo.push(() => shm.close());
    log(`wl_shm: ${udmabuf ? 'zero copy through udmabuf for sealed memfd pools' : opts.shmZeroCopy === false ? 'every buffer copied (zero copy off)' : 'every buffer copied (no /dev/udmabuf)'}`);
    // formats from the model; the scanout tranche is the presenter's primary plane's, pruned by its known-bad table
    const dmabuf = LinuxDmabuf.forKmsDevice(server, model, {
      presenter,
      onVerdict: (v) => {
        if (v.outcome !== 'created') log(`client ${v.client.pid}: linux-dmabuf ${v.request} ${v.outcome}: ${v.detail}`);
      },
    });
    undo.push(() => dmabuf.close());
    const outputs = new OutputGlobal(server, out, transform);
    const surfaceOf = (r: ServerResource<'wl_surface'>): Surface | undefined => surfaces.get(r);
    // wl_seat "seat0" (no devices yet: no capabilities) and the clipboard; the focus is the shown toplevel's
    const seat = new Seat(server, surfaceOf);
    undo.push(() => seat.close());
    const dataDevices = new DataDeviceManager(server, seat, surfaceOf);
    undo.push(() => dataDevices.close());
    /**
     * Each surface's current buffer, surface-locked from the commit that made it current to the
     * commit that replaced it (or the surface's end): a wl_buffer the client destroyed meanwhile
     * stays valid and on screen, and the library sends wl_buffer.release when its last lock goes.
     */
    const currentOf = new WeakMap<Surface, BufferLifetime>();
    const notes = new WeakMap<ScanoutBuffer, BufferNotes>();
    const notesOf = (b: ScanoutBuffer): BufferNotes => {
      let n = notes.get(b);
      if (!n) notes.set(b, (n = { stat: undefined }));
      return n;
    };

    let closed = false;
    /** the input backend (none without input), made once the rest is wired */
    let backend: LibinputBackend | undefined;
    /** its input context (suspended while the session is switched away) */
    let inputCtx: InputContext | null = null;
    // keyboard focus: the shown toplevel or its topmost grabbing popup (focus.ts)
    const focus = new FocusPolicy(seat, () => shell.top);
    const shell = new Shell(() => {
      focus.update();
      hidden.poke(); // a surface no longer shown may wait for frame callbacks
      schedule();
    });
    // Frame callbacks of surfaces not shown: answered every HIDDEN_FRAME_INTERVAL_MS (pacer.ts)
    const hidden = new HiddenFrames({ intervalMs: HIDDEN_FRAME_INTERVAL_MS, shown: (s) => shell.top?.surface === s || sceneShown.has(s) });
    /** the surfaces of the last scene frame (empty while single-surface frames are shown) */
    let sceneShown = new Set<Surface>();
    const surfaces = installCompositor(server, (s) => {
      hidden.watch(s);
      s.onCommit(() => {
        const prev = currentOf.get(s);
        const found = s.buffer ? BufferLifetime.of(s.buffer) : null;
        const next = found && !found.freed ? found : undefined;
        if (next !== prev) {
          if (next) {
            next.surfaceLock();
            currentOf.set(s, next);
          } else currentOf.delete(s);
          prev?.unlock(); // the last lock of a replaced buffer sends its wl_buffer.release
        }
        // any surface of the shown toplevel's client may be part of its scene (subsurfaces, popups)
        if (shell.top?.surface === s || sceneShown.has(s) || (shell.top && shell.top.client === s.resource.client)) schedule();
      });
      s.resource.onDestroy(() => {
        if (sceneShown.has(s)) schedule();
        const prev = currentOf.get(s);
        currentOf.delete(s);
        prev?.unlock();
      });
    });
    installXdgShell(server, surfaceOf, () => logicalSize(mode, transform), {
      mapped: (t: Toplevel) => {
        log(`client ${t.client.pid}: toplevel${t.appId ? ` ${t.appId}` : ''} mapped`);
        for (const o of outputs.of(t.client)) t.surface.resource.send('enter', { output: o }); // fullscreen on the one output
        shell.mapped(t);
      },
      // a popup mapped, moved or gone changes the scene without a commit of the toplevel
      popupsChanged: (t: Toplevel) => {
        if (shell.top === t) {
          focus.update();
          schedule();
        }
      },
      unmapped: (t: Toplevel) => {
        log(`client ${t.client.pid}: toplevel unmapped`);
        t.surface.discardFeedback();
        shell.unmapped(t);
      },
    }, { sizeOf: (x) => x.size, grab: (p, seatRes, serial) => focus.grabAllowed(p, seatRes, serial) }); // a surface's size with its viewport (and a single-pixel buffer's)
    installPresentation(server, surfaceOf, outputs);
    installSubcompositor(server, surfaceOf);
    installViewporter(server, surfaceOf);
    installSinglePixelBuffer(server);
    server.onClient((c) => {
      log(`client ${c.pid} connected`);
      c.onDestroy(() => log(`client ${c.pid} disconnected`));
    });

    // ---- frames ----
    const frameListeners: Array<(info: KioskFrameInfo) => void> = [];
    const counts = { frames: 0, direct: 0, copied: 0, bytesCopied: 0 };
    const sceneCounts = { frames: 0, planesUsed: 0, surfacesComposed: 0, bytesComposed: 0 };
    /** the verdict line last logged for a surface of a scene */
    const verdictLogged = new WeakMap<Surface, string>();
    let cursorLogged = '';
    /** stats of live buffers, and a bounded history of those gone (or replaced by a path change) */
    const liveStats = new Map<ServerResource, KioskBufferStats>();
    const goneStats: KioskBufferStats[] = [];
    const retireStat = (st: KioskBufferStats): void => {
      goneStats.push(st);
      if (goneStats.length > BUFFER_STATS_HISTORY) goneStats.splice(0, goneStats.length - BUFFER_STATS_HISTORY);
    };
    let showing: Surface | 'camera' | null | undefined; // undefined: nothing committed yet; null: black
    let rotatedPlane = false;
    let dirty = false;
    let running: Promise<void> | null = null;
    const take = (r: Pick<PresentResult, 'fences'>): void => capture.take(r);
    // Frame callbacks and feedback of commits that put nothing new on screen: answered at the
    // next vblank, a flip's or one predicted from the last flip (pacer.ts)
    const pacer = new VblankPacer<Surface>({ refreshNs: presenter.refreshNs, shown: (s) => showing === s || sceneShown.has(s) });
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
    // The session switched away (session.ts): no frame is presented (the device is not ours)
    let paused = false;
    // Tests only: PRIMEBUF_KIOSK_SLOWER=0.2 makes every frame cost 20 % more CPU (slower.ts); unset, undefined
    const slow = FrameSlowdown.fromEnv();

    function schedule(): void {
      if (lane?.armed) lane.disarm('the kiosk wants a frame');
      dirty = true;
      if (!looping && !frameQueued && !closed && !captureGate && !paused) {
        frameQueued = true;
        queueMicrotask(startFrames);
      }
    }
    /**
     * A frame starts once the requests being dispatched are all applied: a commit's listeners run
     * before its synchronized subsurfaces' cached state is applied (and a client's batch may hold
     * more commits), so a frame built inside the first would show a half-applied tree and answer
     * its frame callbacks with it (seen: kiosk-scene's single-pixel fill missing from the frame
     * that answered its parent's callback). The addon dispatches a batch in one callback scope,
     * so the microtask runs after the batch.
     */
    let frameQueued = false;
    const startFrames = (): void => {
      frameQueued = false;
      if (!looping && !closed && !captureGate && !paused) nextFrame();
    };

    /** nextFrame runs, or a frame it started is in flight (a schedule() meanwhile only marks dirty) */
    let looping = false;

    /**
     * Runs frames while one is wanted (dirty) and allowed; a frame that waits for its flip
     * continues the loop from its promise. `running` is that promise while a frame is in flight
     * (what close, the capture and the session's pause wait for after closing their gate). A
     * plain function and two callbacks made once: no async function, await or promise chain of
     * its own per frame.
     */
    function nextFrame(): void {
      looping = true;
      running = null;
      while (dirty && !closed && !captureGate && !paused) {
        dirty = false;
        slow?.frame();
        let f: Promise<void> | undefined;
        try {
          f = frame();
        } catch (err) {
          frameFailed(err);
          continue;
        }
        if (f) {
          running = f.then(afterFrame, afterFailedFrame);
          return;
        }
      }
      looping = false;
      if (laneNext) armLane();
    }
    const afterFrame = (): void => nextFrame();
    const afterFailedFrame = (err: unknown): void => {
      frameFailed(err);
      nextFrame();
    };

    /**
     * A frame that threw. With a session, a commit refused with EACCES means DRM master is gone:
     * seatd and logind revoke it before their disable reaches the kiosk, so a frame started in
     * between is refused. That is the switch, not a failure: presenting pauses (the disable that
     * follows acknowledges it) and the frame is done again when the session comes back.
     */
    function frameFailed(err: unknown): void {
      const code = (err as { code?: unknown } | null)?.code;
      const msg = err instanceof Error ? err.message : String(err);
      if (access.session && (code === 'EACCES' || (code === undefined && /\bEACCES\b/.test(msg)))) {
        if (!paused) log(`frame not committed: DRM master was revoked (the session is being switched away); presenting pauses until it comes back (${msg})`);
        paused = true;
        dirty = true;
        shell.top?.surface.damageAll();
        return;
      }
      log(`frame failed: ${msg}`);
    }

    // ---- the direct lane ----
    /** The last frame showed this surface's current buffer alone (on a plane, or copied): the lane may take over after it. */
    let laneNext: { s: Surface; cur: BufferLifetime; placement: SurfacePlacement } | undefined;
    /** Per surface, the buffers it showed on a plane or as a plain copy (newest last, at most LANE_BUFFERS): what the lane may show. */
    const laneBuffers = new WeakMap<Surface, BufferLifetime[]>();
    const LANE_BUFFERS = 8;
    const laneCounts = { arms: 0, framesCounted: 0, bytesCounted: 0 };
    let laneWhy = '';
    function laneDirect(s: Surface, cur: BufferLifetime, placement: SurfacePlacement): void {
      laneNext = { s, cur, placement };
      let list = laneBuffers.get(s);
      if (!list) laneBuffers.set(s, (list = []));
      if (list.includes(cur)) return;
      for (let i = list.length - 1; i >= 0; i--) if (list[i]!.freed || list[i]!.destroyed) list.splice(i, 1);
      list.push(cur);
      if (list.length > LANE_BUFFERS) list.shift();
    }
    /**
     * After a frame that put the shown toplevel's one plain surface on a plane (or copied it
     * plainly), when nothing else
     * is waiting (no frame wanted, no pending state, no capture, no session switch, no camera, no
     * cursor, no onFrame listener): the lane runs its next frames.
     */
    function armLane(): void {
      const n = laneNext;
      laneNext = undefined;
      if (!lane || !n || lane.armed || closed || captureGate || paused || dirty || frameQueued || camera || frameListeners.length > 0) return;
      const top = shell.top;
      if (!top || top.surface !== n.s || showing !== n.s || sceneShown.size > 0 || pointerShown() || !plainSurface(top)) return;
      if (currentOf.get(n.s) !== n.cur || n.s.frames.length > 0 || n.s.feedbacks.length > 0 || !n.s.pendingEmpty()) return;
      const why = lane.arm({ surface: n.s.resource, current: n.cur, placement: n.placement, buffers: laneBuffers.get(n.s) ?? [], onHandback: laneReturned, ...(slow ? { slower: slow.fraction } : {}) });
      if (why !== undefined) {
        if (why !== laneWhy) log(`direct lane: not armed: ${(laneWhy = why)}`);
        return;
      }
      laneWhy = '';
      if (laneCounts.arms++ === 0) log(`direct lane: armed for client ${n.s.resource.client.pid} wl_surface@${n.s.resource.id}: its frames run in the addon until anything else happens`);
    }
    /** The lane handed back: the surface's state as it left it, its frames counted, a frame scheduled when one is due. */
    function laneReturned(h: DirectLaneHandback): void {
      counts.frames += h.frames;
      if (h.copied) counts.copied += h.frames;
      else counts.direct += h.frames;
      counts.bytesCopied += h.bytesCopied;
      laneCounts.framesCounted += h.frames;
      laneCounts.bytesCounted += h.bytesCopied;
      const s = surfaces.get(h.surface);
      if (s) {
        s.adoptLane({ buffer: h.current.resource, committedCallbacks: h.committedCallbacks, attached: h.attached, pendingBuffer: h.pendingBuffer, pendingCallbacks: h.pendingCallbacks });
        const prev = currentOf.get(s);
        if (h.current !== prev) {
          h.current.surfaceLock();
          currentOf.set(s, h.current);
          prev?.unlock(); // its release was settled by the lane
        }
      }
      if (h.presentation) pacer.flipped(h.presentation);
      if (h.error) log(`direct lane: handed back (${h.reason}): ${h.error}`);
      if (h.committedCallbacks.length > 0 || h.current !== h.shown) {
        s?.damageAll();
        schedule();
      }
    }

    /**
     * A camera that failed, once none of its buffers is on screen: shut down (its buffers' lives
     * end, and the presenter's caches of them leave with its last unlock).
     */
    function retireCamera(): void {
      const c = camera;
      if (!c?.failure || cameraRetired || showing === 'camera') return;
      cameraRetired = true;
      c.shutDown();
    }

    /**
     * One frame: decides what to show and hands it to the async function that shows it (a plain
     * function: an async one allocates its whole frame state on every call, whatever it does).
     * Returns undefined when there is nothing to show.
     */
    function frame(): Promise<void> | undefined {
      laneNext = undefined;
      retireCamera();
      const top = shell.top;
      const s = top?.surface;
      // the shown toplevel's tree: several surfaces (or one that needs more than a plain
      // placement: a viewport, a single-pixel buffer) go through presentScene
      if (seat.hasPointer) backend?.repick(); // what is shown may have changed under the cursor
      // a lone plain surface and no pointer shown: the single-surface path, without building a scene
      if (top && s && (pointerShown() || !plainSurface(top))) {
        const cur0 = pointerCursor();
        const built = buildScene(top, { outputTransform: transform, mode: modeSize, bufferOf: sceneBufferOf, cursor: cur0.client });
        if (needsScene(built, s) || cur0.show) return showScene(built, cur0.client || seat.cursor ? undefined : cursor.sceneSurface());
      }
      if (sceneShown.size > 0) {
        // back from a scene: the single-surface path's copy has not followed the screen meanwhile
        sceneShown = new Set();
        s?.damageAll();
      }
      const cur = s ? currentOf.get(s) : undefined;
      if (!s || !cur) {
        if (camera?.latest) return showCamera(camera);
        if (showing === null || (showing === 'camera' && !camera?.failure)) return undefined;
        return showBlack();
      }
      return showSurface(s, cur);
    }

    /** Black (nothing to show; also when the camera on screen failed). */
    async function showBlack(): Promise<void> {
      const r = await presenter.clear();
      showing = null;
      rotatedPlane = false;
      take(r);
      if (r.presentation) pacer.flipped(r.presentation);
      retireCamera();
      emit({ path: 'black', source: 'none', bytesCopied: 0, flags: r.presentation?.flags ?? 0, sequence: r.presentation?.sequence ?? 0, timestampNs: r.presentation?.timestampNs ?? 0n });
    }

    /** The single-surface path: the shown toplevel's one plain surface and its current buffer. */
    async function showSurface(s: Surface, cur: BufferLifetime): Promise<void> {
      if (showing !== s) s.damageAll();
      const taken = s.takeFrame();
      const { damage, frames, feedbacks } = taken;
      const b = cur.scanoutBuffer(); // a udmabuf of a wl_shm pool, its copy source, or a linux-dmabuf import
      const e = notesOf(b);
      let placed = e.placed;
      if (!placed || placed.bufferTransform !== s.transform || placed.scale !== s.scale) {
        placed = e.placed = { bufferTransform: s.transform, scale: s.scale, placement: placementFor(b, s.transform, s.scale, transform, modeSize) };
      }
      const { placement } = placed;
      // the presenter locks the buffer while it reads it: no bookkeeping of the kiosk's
      let r: PresentResult;
      try {
        r = await presenter.present({ buffer: b, damage: clipOwnDamage(damage, b.width, b.height), placement });
      } catch (err) {
        for (const fb of feedbacks) fb.discarded();
        sendDone(frames);
        throw err;
      }
      showing = s;
      take(r);
      const p = r.presentation;
      if (r.path === 'unchanged') {
        // nothing new on screen: no commit to KMS, the callbacks and feedback wait for the next vblank
        pacer.defer({ surface: s, frames, feedbacks });
        return;
      }
      if (!p) {
        for (const fb of feedbacks) fb.discarded();
        sendDone(frames);
        return;
      }
      pacer.supersede(s); // its empty commits waiting for a vblank were replaced by this content
      pacer.flipped(p);
      rotatedPlane = r.path === 'direct' && (placement.rotation !== 0 || placement.reflectX === true);
      // a buffer on a plane, or a plain copy of an untransformed wl_shm surface: the lane may go on with it
      if (lane && (r.path === 'direct' || (r.path === 'copy' && s.transform === 0 && s.scale === 1))) laneDirect(s, cur, placement);
      counts.frames++;
      if (r.path === 'direct') counts.direct++;
      else counts.copied++;
      counts.bytesCopied += r.bytesCopied;
      // the flip's time in ms from its seconds and microseconds (the same instant as timestampNs, no BigInt division)
      const nowMs = p.tvSec * 1000 + Math.floor(p.tvUsec / 1000);
      // (a buffer that ended meanwhile, replaced and destroyed during the flip, is never checked again)
      if (primaryPlane !== undefined && cur instanceof LinuxDmabufBuffer && !cur.freed && !s.destroyed) {
        const plane = r.path === 'direct' && r.plane !== undefined ? r.plane : primaryPlane;
        let c = e.checked;
        if (!c || c.plane !== plane || c.placement !== placement) {
          c = e.checked = { plane, placement, verdict: presenter.checker.checkScanout(b, plane, { ...placement, crtc: crtcId }) };
        }
        dmabuf.reportScanout(s.resource, c.verdict, nowMs);
      }
      const path = r.path === 'direct' ? 'direct' : 'copy';
      if (!e.stat || e.stat.path !== path) noteBuffer(cur, b, e, placement, r);
      if (feedbacks.length > 0) {
        const info = { tvSec: p.tvSec, tvNsec: p.tvUsec * 1000, refreshNs: p.refreshNs, sequence: p.sequence, flags: p.flags };
        for (const fb of feedbacks) fb.presented(info);
      }
      sendDone(frames, nowMs);
      s.releaseFrame(taken); // answered: its arrays serve the next frame
      if (frameListeners.length > 0) emit({ path, source: 'client', buffer: describeBuffer(b), bytesCopied: r.bytesCopied, flags: p.flags, sequence: p.sequence, timestampNs: p.timestampNs });
    }

    const sceneBufferOf = (x: Surface): BufferLifetime | undefined => currentOf.get(x);

    /**
     * The toplevel is one plain surface (buildScene would give it alone, needsScene false): no
     * subsurfaces, no popups, no viewport, no single-pixel buffer. Checked without allocating.
     */
    function plainSurface(t: Toplevel): boolean {
      const s = t.surface;
      return s.stack.length === 1 && t.children.length === 0 && s.viewportSrc === null && s.viewportDst === null && !(s.buffer && SinglePixelBuffer.of(s.buffer));
    }

    /** A buffer shown for the first time, or on another path than before: its stats and a log line. */
    function noteBuffer(cur: BufferLifetime, b: ScanoutBuffer, e: BufferNotes, placement: SurfacePlacement, r: PresentResult): void {
      const path = r.path === 'direct' ? 'direct' : 'copy';
      // one line per distinct reason (a refusal each plane repeats, e.g. NOT_DMABUF, once)
      const reasons = [...new Set(presenter.explain(b, placement))];
      const shmBuf = cur instanceof ShmBuffer ? cur : undefined;
      const zc = shmBuf?.zeroCopy;
      if (zc && !zc.ok) reasons.unshift(`no zero copy: ${zc.reason}`);
      const first = !e.stat;
      e.stat = {
        name: b.name ?? '',
        client: cur.resource.client.pid,
        kind: shmBuf ? 'shm' : 'dmabuf',
        ...(shmBuf ? { udmabuf: shmBuf.zeroCopy.ok } : {}),
        width: b.width,
        height: b.height,
        format: formatName(b.format),
        modifier: b.kind === 'shm' ? 'none (wl_shm)' : modifierName(b.modifier) + (shmBuf ? ' (udmabuf of the wl_shm pool)' : ''),
        path,
        reasons,
      };
      const res = cur.resource;
      const old = liveStats.get(res);
      liveStats.set(res, e.stat);
      if (old) retireStat(old); // the path changed: the earlier entry goes to the history
      else {
        res.onDestroy(() => {
          const st = liveStats.get(res);
          liveStats.delete(res);
          if (st) retireStat(st);
        });
      }
      log(`${describeBuffer(b)}: ${path}${r.path === 'direct' ? ` on plane ${r.plane}` : ''}${first ? '' : ' (changed)'}${reasons.length ? ` (${reasons.join('; ')})` : ''}`);
    }

    /** A scene of more than the toplevel's plain surface. */
    function needsScene(b: BuiltScene, s: Surface): boolean {
      if (b.entries.length !== 1) return b.entries.length > 1;
      const e = b.entries[0]!;
      return e.surface !== s || (e.scene.content as { kind: string }).kind === 'solid' || s.viewportSrc !== null || s.viewportDst !== null;
    }

    /**
     * One frame of several surfaces: presentScene assigns planes across them and composes the
     * rest. Every surface of the scene gets its frame callbacks and presentation feedback after
     * the flip (ZERO_COPY for those on a plane); the log says per surface, when it changes, plane
     * or composed and why.
     */
    async function showScene(b: BuiltScene, cursorSurface: SceneSurface | undefined): Promise<void> {
      const next = new Set(b.entries.map((e) => e.surface));
      // a surface new to the screen is damaged all over
      for (const e of b.entries) if (!sceneShown.has(e.surface) && showing !== e.surface) e.surface.damageAll();
      const taken = b.entries.map((e) => ({ surface: e.surface, ...e.surface.takeFrame() }));
      let r: SceneResult;
      try {
        // the default cursor on top (cursor.ts; none with --hide-cursor)
        r = await presenter.presentScene(cursorSurface ? { surfaces: [...b.frame.surfaces, cursorSurface] } : b.frame);
      } catch (err) {
        for (const x of taken) {
          for (const fb of x.feedbacks) fb.discarded();
          sendDone(x.frames);
        }
        throw err;
      }
      sceneShown = next;
      if (r.committed && cursorSurface) cursor.presented();
      showing = b.entries.find((e) => e.surface === shell.top?.surface)?.surface ?? b.entries[0]?.surface ?? null;
      take(r);
      if (!r.committed) {
        // nothing new on screen: callbacks and feedback wait for the next vblank
        for (const x of taken) pacer.defer({ surface: x.surface, frames: x.frames, feedbacks: x.feedbacks });
        return;
      }
      const p = r.presentation;
      if (!p) {
        for (const x of taken) {
          for (const fb of x.feedbacks) fb.discarded();
          sendDone(x.frames);
        }
        return;
      }
      for (const x of taken) pacer.supersede(x.surface);
      pacer.flipped(p);
      rotatedPlane = r.surfaces.some((v, i) => v.path === 'plane' && ((b.frame.surfaces[i]?.rotation ?? 0) !== 0 || b.frame.surfaces[i]?.reflectX === true));
      counts.frames++;
      if (r.surfacesComposed === 0) counts.direct++;
      else counts.copied++;
      counts.bytesCopied += r.bytesComposed;
      sceneCounts.frames++;
      sceneCounts.planesUsed = r.planesUsed;
      sceneCounts.surfacesComposed += r.surfacesComposed;
      sceneCounts.bytesComposed += r.bytesComposed;
      const nowMs = Number(p.timestampNs / 1_000_000n);
      for (let i = 0; i < taken.length; i++) {
        const x = taken[i]!;
        const v = r.surfaces[i];
        const onPlane = v?.path === 'plane';
        if (v) {
          // logged when the outcome changes (not each buffer of a client that swaps two)
          const key = `${onPlane ? `plane ${v.plane}` : `composed ${v.plane}`}|${v.reasons.map((q) => q.code).join(',')}`;
          if (verdictLogged.get(x.surface) !== key) {
            verdictLogged.set(x.surface, key);
            const content = b.frame.surfaces[i]!.content;
            const what = (content as { kind: string }).kind === 'solid' ? 'single-pixel fill' : describeBuffer(content as ScanoutBuffer);
            const line = `${what}: ${onPlane ? `plane ${v.plane}` : `composed${v.plane !== undefined ? ` on plane ${v.plane}` : ''}`}${v.reasons.length ? ` (${[...new Set(v.reasons.map((q) => `${q.code}: ${q.detail}`))].join('; ')})` : ''}`;
            log(`client ${x.surface.resource.client.pid} wl_surface@${x.surface.resource.id} ${line}`);
          }
        }
        // its linux-dmabuf feedback follows its outcome: the scanout tranche while on a plane or
        // while re-allocation could give it one (a buffer that ended meanwhile is not reported)
        const cur = currentOf.get(x.surface);
        if (v && primaryPlane !== undefined && cur instanceof LinuxDmabufBuffer && !cur.freed && !x.surface.destroyed) {
          dmabuf.reportScanout(x.surface.resource, v, nowMs);
        }
        const flags = (p.flags & ~PRESENTATION_ZERO_COPY) | (onPlane ? p.flags & PRESENTATION_ZERO_COPY : 0);
        const info = { tvSec: p.tvSec, tvNsec: p.tvUsec * 1000, refreshNs: p.refreshNs, sequence: p.sequence, flags };
        for (const fb of x.feedbacks) fb.presented(info);
        sendDone(x.frames, nowMs);
      }
      const cv = cursorSurface ? r.surfaces[taken.length] : undefined;
      if (cv) {
        const line = `default cursor: ${cv.path === 'plane' ? `plane ${cv.plane}` : `composed${cv.plane !== undefined ? ` on plane ${cv.plane}` : ''}`}${cv.reasons.length ? ` (${[...new Set(cv.reasons.map((q) => `${q.code}: ${q.detail}`))].join('; ')})` : ''}`;
        if (line !== cursorLogged) log((cursorLogged = line));
      }
      if (frameListeners.length > 0) {
        const first = b.frame.surfaces[0]?.content;
        emit({
          path: r.surfacesComposed === 0 ? 'direct' : 'copy',
          source: 'client',
          ...(first && (first as { kind: string }).kind !== 'solid' ? { buffer: describeBuffer(first as ScanoutBuffer) } : {}),
          bytesCopied: r.bytesComposed,
          scene: r.surfaces,
          flags: p.flags,
          sequence: p.sequence,
          timestampNs: p.timestampNs,
        });
      }
    }

    // ---- the camera (--camera, camera.ts) ----
    async function showCamera(c: KioskCamera): Promise<void> {
      const { result: r, placement, buffer: b } = await c.show(presenter, transform, modeSize);
      showing = 'camera';
      rotatedPlane = r.path === 'direct' && placement.rotation !== 0;
      take(r);
      const p = r.presentation;
      if (r.path === 'unchanged' || !p) return;
      pacer.flipped(p);
      const path = r.path === 'direct' ? 'direct' : 'copy';
      counts.frames++;
      counts[path === 'direct' ? 'direct' : 'copied']++;
      counts.bytesCopied += r.bytesCopied;
      if (frameListeners.length > 0) emit({ path, source: 'camera', buffer: describeBuffer(b), bytesCopied: r.bytesCopied, flags: p.flags, sequence: p.sequence, timestampNs: p.timestampNs });
    }

    if (opts.camera !== undefined) {
      const c = (camera = KioskCamera.open(opts.camera, opts.cameraFormat ?? XRGB8888, model, logicalSize(mode, transform)));
      undo.push(() => c.closeNow());
      log(c.describe());
      c.start({
        closed: () => closed,
        covered: () => shell.top !== undefined,
        ready: schedule,
        log,
        failed: (err) => {
          log(`camera ${c.dev.path}: stopped (${err.message}); showing ${shell.top ? 'the client' : 'black'}`);
          schedule(); // the frame loop takes it off the screen and shuts it down
        },
      });
    }

    // ---- input (input.ts, focus.ts) ----
    /**
     * The cursor now: the client's set_cursor surface (its hotspot on the pointer) while the
     * client with the pointer focus set one; `show`: the seat has a pointer, so the cursor is
     * shown even over a single plain surface (a scene frame).
     */
    /** pointerCursor().show, without allocating */
    function pointerShown(): boolean {
      return backend !== undefined && seat.hasPointer && (!opts.hideCursor || !!seat.cursor?.surface);
    }
    function pointerCursor(): { client: { surface: Surface; x: number; y: number } | undefined; show: boolean } {
      const c = seat.cursor;
      const p = backend?.position;
      const show = p !== undefined && seat.capabilities.pointer && (!opts.hideCursor || !!c?.surface);
      const cs = c?.surface ? surfaceOf(c.surface) : undefined;
      return { client: show && cs?.buffer && p ? { surface: cs, x: Math.floor(p.x) - c!.hotspotX, y: Math.floor(p.y) - c!.hotspotY } : undefined, show };
    }
    // through the session when there is one (libseat opens the input nodes: no root needed)
    const makeInput = opts.input === false ? null : (opts.input ?? (() => defaultInput(opts.keymap, access.session ? sessionOpener(access.session) : undefined)));
    if (!makeInput) log('input: none (--no-input): a seat without capabilities');
    else {
      let ctx: InputContext | null = null;
      try {
        ctx = inputCtx = makeInput();
      } catch (err) {
        log(`input: cannot be opened (${err instanceof Error ? err.message : String(err)}): a seat without capabilities`);
      }
      if (ctx) {
        const b = (backend = new LibinputBackend(ctx, {
          mode: modeSize,
          transform,
          root: () => shell.top,
          cursorMoved: (x, y) => {
            const c = logicalToCrtc(x, y, modeSize, transform);
            cursor.moveTo(c.x, c.y);
            schedule(); // a cursor move alone: the cursor plane moves (the scene's assignment is kept)
          },
          buttonPressed: (x) => void focus.buttonPressed(x),
          quit: () => opts.onQuit?.(),
          log,
        }, quitKey ? { quitKey } : {}));
        seat.attachBackend(b); // closed by the seat's close
        seat.onCursorChange(schedule);
        log(`input: ${ctx.devices.length} device(s)${quitKey ? `, quit key ${quitKey.text}` : ''}`);
      }
    }

    const socket = server.addSocket(opts.socket);
    log(`listening on WAYLAND_DISPLAY=${socket}: ${device.path} ${out.connectorName} ${modeSize.width}x${modeSize.height}${transform ? `, transform ${transform}` : ''}${opts.forceCopy ? ', every frame copied' : ''}`);
    // The screen starts black (and the modeset is done) before any client shows something.
    schedule();

    const captureHost = {
      closed: () => closed,
      rotatedPlane: () => rotatedPlane,
      hold: async (): Promise<void> => {
        lane?.disarm('a capture');
        captureGate = true;
        if (running) await running;
      },
      resume: (): void => {
        captureGate = false;
        if (dirty && !closed) schedule();
      },
      refresh: async (): Promise<PresentResult> => {
        if (paused) throw new Error('the session is switched away: the display is not the kiosk\'s');
        const r = await presenter.refresh();
        if (r.presentation) pacer.flipped(r.presentation);
        return r;
      },
    };

    // ---- the session (session.ts): switched away, nothing is presented; back, a full commit ----
    if (access.session) {
      followSession(access.session, {
        log,
        pause: async () => {
          lane?.disarm('the session is switched away');
          paused = true;
          inputCtx?.suspend(); // libinput closes its devices (the session revokes them)
          if (running) await running; // the frame in flight ends with its flip
        },
        resume: async () => {
          if (closed) return;
          paused = false;
          inputCtx?.resume();
          presenter.output.invalidate(); // another master had the CRTC: the modeset again
          const r = await presenter.refresh(); // what was shown (black before any frame)
          take(r);
          if (r.presentation) pacer.flipped(r.presentation);
          log('output taken back: the current frame committed with the modeset');
          if (dirty) schedule();
        },
      });
    }

    const kiosk: Kiosk = {
      socket,
      device,
      access,
      presenter,
      output: out,
      camera: camera?.src,
      cursor,
      stats(): KioskStats {
        const ps = presenter.stats;
        const cpu = process.cpuUsage(cpuStart);
        const ls = lane?.stats();
        // the frames of an armed lane not counted yet (counted at its handback)
        const live = ls ? ls.frames - laneCounts.framesCounted : 0;
        const liveCopied = lane?.mode === 'copy';
        return {
          ...counts,
          frames: counts.frames + live,
          direct: counts.direct + (liveCopied ? 0 : live),
          copied: counts.copied + (liveCopied ? live : 0),
          bytesCopied: counts.bytesCopied + (ls ? ls.bytesCopied - laneCounts.bytesCounted : 0),
          commits: ps.commits + live,
          lane: { frames: ls?.frames ?? 0, commits: ls?.commits ?? 0, arms: laneCounts.arms, handbacks: ls?.handbacks ?? 0, armed: ls?.armed ?? false, fences: ls?.fences ?? 0 },
          ...(sceneCounts.frames > 0 ? { scene: { ...sceneCounts } } : {}),
          imports: device.primeImports, // every PRIME import on the device: linux-dmabuf's one per buffer, the verdicts' of other buffers
          addfb2: ps.addfb2,
          allocations: ps.allocations,
          cpu: { userUs: cpu.user, systemUs: cpu.system },
          buffers: [...goneStats, ...liveStats.values()].map((s) => ({ ...s, reasons: [...s.reasons] })),
          ...(camera ? { camera: { ...camera.stats, reasons: [...camera.stats.reasons] } } : {}),
        };
      },
      capture(): Promise<KioskCapture> {
        return capture.capture(captureHost);
      },
      pointer() {
        return backend?.position;
      },
      onFrame(fn) {
        lane?.disarm('an onFrame listener');
        frameListeners.push(fn);
      },
      async close(): Promise<void> {
        if (closed) return;
        lane?.disarm('the kiosk closes');
        closed = true;
        pacer.close();
        hidden.close();
        await capture.idle();
        // the frame in flight ends with its flip; a flip that never comes (a hung device) must
        // not hang the exit: closing the device below rejects it
        if (running) await Promise.race([running, new Promise((r) => setTimeout(r, 2000).unref())]);
        const laneFinal = lane?.stats();
        dmabuf.close();
        shm.close();
        dataDevices.close();
        seat.close(); // its keymap memfd
        server.close(); // every client's resources are destroyed: surfaces gone, their buffers unlocked
        // The presenter turns everything off in one blocking commit (its output state: planes
        // with their rotation, the writeback connector, connector and CRTC), then removes its
        // framebuffers.
        presenter.close();
        // the presenter let go of the camera's buffers: STREAMOFF, the buffers freed
        if (camera) await camera.close();
        cursor.close();
        capture.close();
        udmabuf?.close();
        device.close();
        access.close(); // the session after its last device
        if (slow) {
          const w = slow.summary();
          log(`made slower on purpose (PRIMEBUF_KIOSK_SLOWER=${w.fraction}): ${w.frames} frames spun ${w.spunMs.toFixed(1)} ms (${(w.usPerIteration * 1000).toFixed(2)} ns an iteration), ${((w.spunMs / w.baseMs) * 100).toFixed(1)} % of the ${w.baseMs.toFixed(1)} ms they cost without it`);
          if (laneFinal && laneFinal.spunFrames > 0) {
            log(`made slower on purpose, direct lane: ${laneFinal.spunFrames} frames spun ${laneFinal.spunMs.toFixed(1)} ms, ${((laneFinal.spunMs / laneFinal.spunBaseMs) * 100).toFixed(1)} % of the ${laneFinal.spunBaseMs.toFixed(1)} ms they cost without it`);
          }
        }
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
