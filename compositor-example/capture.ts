/**
 * The kiosk's screenshots through the writeback connector: a capture buffer of the mode, and
 * whether the writeback connector may share the CRTC with the output's connector (stock vkms
 * refuses the clone, probed with a TEST_ONLY at start). When it may, the connector rides along in
 * every request of the output from the modeset on, the verdicts' TEST_ONLY included (it is an
 * OutputExtra of the presenter's OutputState), and a capture only adds its framebuffer to the
 * next commit and waits for the writeback fence.
 */
import { PrimebufError, fourcc, type PresentResult } from 'primebuf';
import { DumbBuffer } from 'primebuf/alloc';
import type { Mapping } from 'primebuf/dmabuf';
import { Framebuffer, PropertyBlob, addWriteback, type AtomicRequest } from 'primebuf/kms';
import { ROTATE_0, type OutputExtra } from 'primebuf/scanout';
import type { KmsOutput } from './output.js';

export interface KioskCapture {
  readonly width: number;
  readonly height: number;
  /** DRM fourcc (XRGB8888). */
  readonly format: number;
  readonly stride: number;
  readonly pixels: Uint8Array;
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

/** What a capture asks of the kiosk's frame loop. */
export interface CaptureHost {
  readonly closed: () => boolean;
  /** a client buffer is on a rotated plane now */
  readonly rotatedPlane: () => boolean;
  /** no new frame is presented from now on; resolves when the frame in flight is done */
  readonly hold: () => Promise<void>;
  /** frames go on (the newest state is presented if something changed meanwhile) */
  readonly resume: () => void;
  /** commits the planes again (with the capture armed) */
  readonly refresh: () => Promise<PresentResult>;
}

const XRGB8888 = fourcc('XRGB8888');

export class WritebackCapture implements OutputExtra {
  readonly #out: KmsOutput;
  readonly #width: number;
  readonly #height: number;
  readonly #buf: { readonly dumb: DumbBuffer; readonly map: Mapping; readonly fb: Framebuffer } | undefined;
  /** the writeback connector may share the CRTC with the output's connector */
  readonly clonable: boolean;
  /** the next commit carries the capture framebuffer */
  #armed = false;
  /** waits for the next commit's writeback fence */
  #fence: ((r: Pick<PresentResult, 'fences'>) => void) | null = null;
  /** captures run one after the other */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(out: KmsOutput) {
    this.#out = out;
    const { device, mode, crtcId } = out;
    this.#width = mode.hdisplay;
    this.#height = mode.vdisplay;
    if (out.writebackId === undefined) {
      this.clonable = false;
      return;
    }
    const dumb = DumbBuffer.create(device, { width: this.#width, height: this.#height, bpp: 32 });
    let map: Mapping | undefined;
    let fb: Framebuffer | undefined;
    try {
      map = dumb.map();
      fb = Framebuffer.create(device, { width: this.#width, height: this.#height, format: XRGB8888, modifier: 0n, planes: [{ handle: dumb.handle, pitch: dumb.pitch }] });
      const primary = out.resources.planes.find((p) => p.type === 'primary' && p.possibleCrtcs.includes(crtcId));
      const blob = PropertyBlob.fromMode(device, mode);
      const probe = device.atomic().set(crtcId, 'MODE_ID', blob).set(crtcId, 'ACTIVE', 1).set(out.connectorId, 'CRTC_ID', crtcId);
      if (primary) {
        const full = (v: number): bigint => BigInt(v) << 16n;
        probe.setAll(primary.id, { FB_ID: fb, CRTC_ID: crtcId, SRC_X: 0n, SRC_Y: 0n, SRC_W: full(this.#width), SRC_H: full(this.#height), CRTC_X: 0n, CRTC_Y: 0n, CRTC_W: this.#width, CRTC_H: this.#height });
        // a rotation left on the plane by an earlier KMS client would fail the probe for nothing
        if (primary.properties.has('rotation')) probe.set(primary.id, 'rotation', ROTATE_0);
      }
      try {
        this.clonable = addWriteback(probe, out.writebackId, crtcId, fb).check({ allowModeset: true }).ok;
      } finally {
        blob.close();
      }
    } catch (err) {
      fb?.close();
      map?.close();
      dumb.close();
      throw err;
    }
    this.#buf = { dumb, map, fb };
  }

  /** The capture buffer and the clone probe of `out` (none without a writeback connector). */
  static open(out: KmsOutput): WritebackCapture {
    return new WritebackCapture(out);
  }

  /**
   * Its part of the output's next state (the presenter's `extras`): the writeback connector in
   * every request, TEST_ONLY included; its framebuffer in the commits after a capture was armed,
   * until one went out.
   */
  apply(req: AtomicRequest, testOnly: boolean): void {
    const wb = this.#out.writebackId;
    if (!this.#buf || !this.clonable || wb === undefined) return;
    req.set(wb, 'CRTC_ID', this.#out.crtcId);
    if (this.#armed && !testOnly) addWriteback(req, wb, this.#out.crtcId, this.#buf.fb);
  }

  /** A commit carried the armed capture. */
  committed(): void {
    this.#armed = false;
  }

  /** A present result: its writeback fence goes to the capture waiting for it, else it is closed. */
  take(r: Pick<PresentResult, 'fences'>): void {
    const fence = r.fences[0];
    if (!fence) return;
    if (this.#fence) this.#fence(r);
    else fence.close();
  }

  /** Shutdown: the writeback connector off in the commit that turns the output off (OutputState.turnOff). */
  turnOff(req: AtomicRequest): void {
    if (this.#buf && this.clonable && this.#out.writebackId !== undefined) req.set(this.#out.writebackId, 'CRTC_ID', 0);
  }

  /** What is on screen now (captures queue behind each other). */
  capture(host: CaptureHost): Promise<KioskCapture> {
    const run = this.#queue.then(() => this.#captureOnce(host));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves when the captures asked for so far are done. */
  async idle(): Promise<void> {
    await this.#queue;
  }

  async #captureOnce(host: CaptureHost): Promise<KioskCapture> {
    const path = this.#out.device.path;
    if (!this.#buf || this.#out.writebackId === undefined) throw new CaptureUnavailableError('NO_WRITEBACK', `${path} has no writeback connector`);
    if (!this.clonable) throw new CaptureUnavailableError('NOT_CLONABLE', `${path}: the writeback connector cannot share the CRTC with ${this.#out.connectorName}`);
    if (host.closed() || this.#closed) throw new PrimebufError('the kiosk is closed');
    try {
      await host.hold(); // the frame in flight first: then the capture shows the newest state
      return await this.#captureGated(host, this.#buf);
    } finally {
      host.resume();
    }
  }

  async #captureGated(host: CaptureHost, buf: { readonly dumb: DumbBuffer; readonly map: Mapping }): Promise<KioskCapture> {
    if (host.rotatedPlane()) {
      // vkms 6.12 panics the kernel when writeback reads a rotated plane (README, the vkms rig)
      throw new CaptureUnavailableError('ROTATED_PLANE', 'a client buffer is on a rotated plane: writeback is not asked to read it (vkms panics)');
    }
    const { map, dumb } = buf;
    map.bytes().fill(0xff);
    const got = new Promise<Pick<PresentResult, 'fences'>>((resolve) => (this.#fence = resolve));
    this.#armed = true;
    try {
      const r = await host.refresh();
      this.take(r);
      const withFence = await got;
      const fence = withFence.fences[0]!;
      try {
        await fence.wait(10_000);
      } finally {
        fence.close();
      }
    } finally {
      this.#fence = null;
      this.#armed = false;
    }
    const width = this.#width;
    const height = this.#height;
    const stride = width * 4;
    const pixels = new Uint8Array(stride * height);
    const src = map.bytes();
    for (let y = 0; y < height; y++) pixels.set(src.subarray(y * dumb.pitch, y * dumb.pitch + stride), y * stride);
    return { width, height, format: XRGB8888, stride, pixels };
  }

  /** The capture buffer's framebuffer, mapping and dumb buffer (after the presenter closed). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#buf) return;
    this.#buf.fb.close();
    this.#buf.map.close();
    this.#buf.dumb.close();
  }
}
