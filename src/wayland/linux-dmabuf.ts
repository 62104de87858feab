/**
 * The zwp_linux_dmabuf_v1 global (version 5; version 1-4 clients are served what their version
 * promises):
 * - before version 4: format (v1, v2) or modifier (v3) events for every advertised pair at bind;
 * - from version 4: default and per-surface feedback (main device, one shared sealed format
 *   table per distinct feedback, tranches; a scanout tranche for surfaces the compositor marks
 *   scanout-eligible), re-sent only when it changed, inert once its surface is gone;
 * - zwp_linux_buffer_params_v1: validated by DmabufAttributes (exactly one protocol error per
 *   bad request, every received fd closed exactly once), import policy hook, then the import
 *   hook (PRIME on the main device); created/failed for create, invalid_wl_buffer for
 *   create_immed; buffers handed to the compositor as LinuxDmabufBuffer objects.
 */
import { ScanoutTrancheDebounce, type DebounceOptions } from '../scanout/debounce.js';
import type { KnownBadTable } from '../scanout/known-bad.js';
import type { Verdict } from '../scanout/reasons.js';
import type { SceneSurfaceResult } from '../scanout/scene-types.js';
import type { OwnedFd } from '../fd.js';
import { FormatSet } from '../formats/index.js';
import { DmabufAttributes, PARAMS_ERROR, checkAdd, type ParamsProblem, type PlaneInput } from '../dmabuf/attributes.js';
import { PrimeImporter, acceptAllImporter, type DmabufImporter, type ImportedDmabuf } from '../dmabuf/import.js';
import { modelOf, type DeviceOrModel } from '../kms/model.js';
import { kmsFormats } from './kms-formats.js';
import { FeedbackCache, TRANCHE_FLAGS, chunkIndices, devArray, type CompiledFeedback, type FeedbackSpec, type Tranche } from './dmabuf-feedback.js';
import { BufferLifetime } from './buffer-lifetime.js';
import { ClosedError } from '../errors.js';
import { bufferFromAttributes, type ScanoutBuffer } from '../scanout/verdict-buffer.js';
import type { ServerClient, ServerGlobal, ServerResource, WaylandServer } from './server.js';

export const LINUX_DMABUF_VERSION = 5;

/**
 * A dma-buf wl_buffer the compositor can use. Owns the fds and the import (made once, at
 * create: the only PRIME import in the buffer's life), both kept until the client destroyed the
 * wl_buffer and the last lock is gone.
 */
export class LinuxDmabufBuffer extends BufferLifetime {
  #scanout: ScanoutBuffer | undefined;

  /**
   * `allocatedOn`: dev_t of the device the feedback told the client to allocate on (the main
   * device, or the target device of the tranche the pair came from).
   */
  constructor(
    resource: ServerResource<'wl_buffer'>,
    readonly attributes: DmabufAttributes,
    readonly imported: ImportedDmabuf,
    readonly client: ServerClient,
    readonly allocatedOn?: bigint,
  ) {
    super(resource, () => {
      imported.close();
      attributes.close();
    });
    resource.data['linuxDmabufBuffer'] = this;
  }

  /** The buffer as the presenter takes it (the same object every call): its import and its life with it. */
  scanoutBuffer(): ScanoutBuffer {
    if (this.#scanout) return this.#scanout;
    if (this.freed) throw new ClosedError(`wl_buffer@${this.resource.id} (linux-dmabuf, freed)`);
    const name = `wl_buffer@${this.resource.id} of client ${this.client.pid}`;
    this.#scanout = bufferFromAttributes(this.attributes, {
      name,
      life: this,
      ...(this.allocatedOn !== undefined ? { allocatedOn: this.allocatedOn } : {}),
      ...(this.imported.gemHandles ? { imported: this.imported } : {}),
    });
    return this.#scanout;
  }
}

/** What the log/verdict hook sees for every create/create_immed. */
export interface BufferVerdict {
  readonly client: ServerClient;
  readonly request: 'create' | 'create_immed';
  readonly ok: boolean;
  /** 'protocol_error' (fatal), 'failed' (not importable), or 'created' */
  readonly outcome: 'protocol_error' | 'failed' | 'created';
  readonly problem?: ParamsProblem;
  readonly attributes?: ReturnType<DmabufAttributes['toJSON']>;
  readonly importer: string;
  readonly detail: string;
}

export interface LinuxDmabufOptions {
  /** dev_t of the main device (the one buffers are imported into). */
  readonly mainDevice: bigint;
  /** Pairs the main device imports (the render tranche; also the v3 modifier events). */
  readonly formats: FormatSet;
  /**
   * The KMS device and the pairs a plane accepts, for surfaces marked scanout-eligible. With
   * `plane` and `knownBad`, the pairs that table learned are bad on that plane (AddFB2 or
   * TEST_ONLY refused them) are pruned from the tranche before it is sent.
   */
  readonly scanout?: { readonly device: bigint; readonly formats: FormatSet; readonly plane?: number; readonly knownBad?: KnownBadTable };
  /** How verdicts move the scanout tranche (reportScanout): the debounce (default 1 s and 2 frames). */
  readonly scanoutDebounce?: DebounceOptions;
  /** Import hook (default: accept without importing: validation only). */
  readonly importer?: DmabufImporter;
  /** Policy hook before the import: return a reason string to refuse (non-fatal) a buffer. */
  readonly policy?: (attributes: DmabufAttributes, client: ServerClient) => string | null;
  /** A new usable buffer (the compositor takes it from here). */
  readonly onBuffer?: (buffer: LinuxDmabufBuffer) => void;
  /** Every create/create_immed outcome, for logs and tests. */
  readonly onVerdict?: (verdict: BufferVerdict) => void;
  /** Advertised version (default 5). */
  readonly version?: number;
  /** Flags the compositor handles (default y_invert only). */
  readonly acceptedFlags?: number;
}

/** Where forKmsDevice takes the scanout tranche's plane and known-bad table from. */
export interface KmsScanoutSource {
  /** The output's presenter: its CRTC (the plane is that CRTC's primary) and checker.knownBad. */
  readonly presenter?: { readonly crtcId: number; readonly checker: { readonly knownBad: KnownBadTable } };
  /** The known-bad table (default: the presenter's). */
  readonly knownBad?: KnownBadTable;
  /** The CRTC whose primary plane the scanout tranche is for (default: the presenter's). */
  readonly crtcId?: number;
}

interface FeedbackObject {
  readonly resource: ServerResource<'zwp_linux_dmabuf_feedback_v1'>;
  sent: CompiledFeedback | null;
  inert: boolean;
}

interface SurfaceState {
  scanoutEligible: boolean;
  feedbacks: Set<FeedbackObject>;
  debounce?: ScanoutTrancheDebounce;
}

/** The linux-dmabuf global of one WaylandServer. */
export class LinuxDmabuf {
  readonly global: ServerGlobal;
  #opts: LinuxDmabufOptions;
  #cache = new FeedbackCache();
  #defaults = new Set<FeedbackObject>();
  #surfaces = new Map<ServerResource<'wl_surface'>, SurfaceState>();
  #importer: DmabufImporter;
  #closed = false;

  constructor(
    readonly server: WaylandServer,
    opts: LinuxDmabufOptions,
  ) {
    this.#opts = opts;
    this.#importer = opts.importer ?? acceptAllImporter;
    const version = opts.version ?? LINUX_DMABUF_VERSION;
    this.global = server.createGlobal('zwp_linux_dmabuf_v1', version, (res) => this.#bind(res));
  }

  /**
   * The global for one KMS device that is both the main device and the scanout device, from the
   * device's model (KmsDeviceModel: no ioctl; a Device is read into a model of its own): formats
   * from its planes (render tranche: every plane plus implicit modifiers; scanout tranche: the
   * primary plane of the presenter's CRTC, pruned by the presenter's known-bad table so a pair
   * AddFB2 or TEST_ONLY refused leaves the next tranche sent), imports through PRIME on it.
   * `opts` overrides any of those choices (e.g. `formats` from the constraint solver's merge for
   * the devices the buffers will visit); `presenter` (its crtcId and checker.knownBad) or
   * `knownBad` and `crtcId` name the plane and the table.
   */
  static forKmsDevice(server: WaylandServer, device: DeviceOrModel, opts: Partial<LinuxDmabufOptions> & KmsScanoutSource = {}): LinuxDmabuf {
    const model = modelOf(device);
    const { all, primary } = kmsFormats(model);
    const { presenter, knownBad: bad, crtcId: crtc, ...rest } = opts;
    const crtcId = crtc ?? presenter?.crtcId;
    const knownBad = bad ?? presenter?.checker.knownBad;
    // Plane.possibleCrtcs holds CRTC ids (readResources)
    const plane = [...model.resources.planes].sort((a, b) => a.id - b.id).find((p) => p.type === 'primary' && (crtcId === undefined || p.possibleCrtcs.includes(crtcId)));
    const devId = model.devId ?? 0n;
    const scanout = {
      device: devId,
      // the plane's own pairs where its CRTC is known; else every primary plane's
      formats: plane && crtcId !== undefined ? plane.formats : primary,
      ...(plane ? { plane: plane.id } : {}),
      ...(knownBad ? { knownBad } : {}),
    };
    let importer = rest.importer;
    if (!importer) {
      if (!model.device) throw new TypeError(`LinuxDmabuf.forKmsDevice: ${model.name} is a recorded model without an open device: pass an importer`);
      importer = new PrimeImporter(model.device);
    }
    const global = new LinuxDmabuf(server, {
      mainDevice: devId,
      formats: all,
      scanout,
      ...rest,
      importer,
    });
    // a pair the kernel refused leaves the scanout tranches at once (only the feedback objects
    // whose tranche changed get anything); the table does not keep the global alive
    const table = global.#opts.scanout?.knownBad;
    if (table) {
      const ref = new WeakRef(global);
      const stop = table.onLearn(() => {
        const g = ref.deref();
        if (!g || server.closed) stop();
        else g.refreshFeedback();
      });
    }
    return global;
  }

  /** The default feedback's description (main device render tranche). */
  defaultFeedback(): FeedbackSpec {
    return { mainDevice: this.#opts.mainDevice, tranches: [{ device: this.#opts.mainDevice, flags: 0, formats: this.#opts.formats }] };
  }

  /** The feedback of a surface: a scanout tranche first when the surface is scanout-eligible. */
  surfaceFeedback(eligible: boolean): FeedbackSpec {
    const main: Tranche = { device: this.#opts.mainDevice, flags: 0, formats: this.#opts.formats };
    const s = this.#opts.scanout;
    if (!eligible || !s) return { mainDevice: this.#opts.mainDevice, tranches: [main] };
    // Scanout pairs must also be importable by the main device, and not known bad on the plane.
    let formats = s.formats.intersect(this.#opts.formats);
    if (s.knownBad && s.plane !== undefined) formats = s.knownBad.prune(s.plane, formats);
    const scan: Tranche = { device: s.device, flags: TRANCHE_FLAGS.scanout, formats };
    return { mainDevice: this.#opts.mainDevice, tranches: scan.formats.isEmpty ? [main] : [scan, main] };
  }

  /** Every pair a client may use (the union of all tranches ever offered). */
  get advertised(): FormatSet {
    return this.#opts.formats;
  }

  /**
   * Marks a surface as eligible for direct scanout (e.g. fullscreen on a KMS plane) or not; its
   * feedback objects get the new feedback when, and only when, it changed.
   */
  setScanoutEligible(surface: ServerResource<'wl_surface'>, eligible: boolean): void {
    const st = this.#surface(surface);
    if (st.scanoutEligible === eligible) return;
    st.scanoutEligible = eligible;
    const spec = this.surfaceFeedback(eligible);
    for (const fb of st.feedbacks) this.#sendFeedback(fb, spec);
  }

  /**
   * Feeds one frame's scanout verdict for a surface (undefined: the surface is no scanout
   * candidate this frame, e.g. not fullscreen), or its outcome in a scene frame (a
   * SceneSurfaceResult of presentScene: on a plane, or composed for reasons re-allocation could or
   * could not fix: sceneScanoutTrancheWanted), at frame time `nowMs`. The scanout tranche is
   * offered while the buffer is scanned out or re-allocating could get it there, withdrawn when
   * re-allocation could not help, and a change applies only once it has held for the debounce
   * (`scanoutDebounce`): see ScanoutTrancheDebounce. Returns whether the tranche is offered now.
   */
  reportScanout(surface: ServerResource<'wl_surface'>, verdict: Verdict | SceneSurfaceResult | undefined, nowMs: number): boolean {
    const st = this.#surface(surface);
    st.debounce ??= new ScanoutTrancheDebounce(this.#opts.scanoutDebounce);
    const { offered, changed } = st.debounce.frame(verdict, nowMs);
    if (changed) this.setScanoutEligible(surface, offered);
    return offered;
  }

  /**
   * Sends every feedback object the feedback it should have now (only where it changed): call
   * after the known-bad table learned something, so scanout tranches drop the bad pairs.
   */
  refreshFeedback(): void {
    for (const st of this.#surfaces.values()) {
      const spec = this.surfaceFeedback(st.scanoutEligible);
      for (const fb of st.feedbacks) this.#sendFeedback(fb, spec);
    }
  }

  isScanoutEligible(surface: ServerResource<'wl_surface'>): boolean {
    return this.#surfaces.get(surface)?.scanoutEligible ?? false;
  }

  /** The LinuxDmabufBuffer behind a wl_buffer resource (e.g. from wl_surface.attach), or null. */
  static bufferOf(resource: ServerResource | null): LinuxDmabufBuffer | null {
    const b = resource?.data['linuxDmabufBuffer'];
    return b instanceof LinuxDmabufBuffer ? b : null;
  }

  /** Number of live format table files (one per distinct feedback in use). */
  get formatTables(): number {
    return this.#cache.tables;
  }

  /** Withdraws the global. Existing buffers stay valid until their clients destroy them. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.global.destroy();
  }

  #surface(surface: ServerResource<'wl_surface'>): SurfaceState {
    let st = this.#surfaces.get(surface);
    if (!st) {
      const state: SurfaceState = { scanoutEligible: false, feedbacks: new Set() };
      st = state;
      this.#surfaces.set(surface, state);
      surface.onDestroy(() => {
        // Feedback of a destroyed surface becomes inert: no more events, only destroy.
        for (const fb of state.feedbacks) this.#inert(fb);
        state.feedbacks.clear();
        this.#surfaces.delete(surface);
      });
    }
    return st;
  }

  #inert(fb: FeedbackObject): void {
    fb.inert = true;
    if (fb.sent) this.#cache.release(fb.sent);
    fb.sent = null;
  }

  #bind(res: ServerResource<'zwp_linux_dmabuf_v1'>): void {
    if (res.version < 4) {
      // Legacy advertisement at bind.
      const formats = this.#opts.formats;
      if (res.version >= 3) {
        for (const p of formats) {
          res.send('modifier', { format: p.format, modifier_hi: Number(p.modifier >> 32n), modifier_lo: Number(p.modifier & 0xffffffffn) });
        }
      } else {
        for (const f of formats.formats()) res.send('format', { format: f });
      }
    }
    res.implement({
      create_params: ({ params_id }) => this.#params(params_id, res.version),
      get_default_feedback: ({ id }) => {
        const fb: FeedbackObject = { resource: id, sent: null, inert: false };
        this.#defaults.add(fb);
        id.onDestroy(() => {
          this.#defaults.delete(fb);
          this.#inert(fb);
        });
        this.#sendFeedback(fb, this.defaultFeedback());
      },
      get_surface_feedback: ({ id, surface }) => {
        const fb: FeedbackObject = { resource: id, sent: null, inert: false };
        const st = this.#surface(surface);
        st.feedbacks.add(fb);
        id.onDestroy(() => {
          st.feedbacks.delete(fb);
          this.#inert(fb);
        });
        this.#sendFeedback(fb, this.surfaceFeedback(st.scanoutEligible));
      },
    });
  }

  #sendFeedback(fb: FeedbackObject, spec: FeedbackSpec): void {
    if (fb.inert || fb.resource.destroyed) return;
    const compiled = this.#cache.acquire(spec);
    if (fb.sent && fb.sent.key === compiled.key) {
      this.#cache.release(compiled); // unchanged: nothing is re-sent
      return;
    }
    const r = fb.resource;
    r.send('main_device', { device: devArray(compiled.mainDevice) });
    r.send('format_table', { fd: compiled.table.fd, size: compiled.table.size });
    for (const t of compiled.tranches) {
      r.send('tranche_target_device', { device: devArray(t.device) });
      r.send('tranche_flags', { flags: t.flags });
      for (const chunk of chunkIndices(t.indices)) r.send('tranche_formats', { indices: chunk });
      r.send('tranche_done', {});
    }
    r.send('done', {});
    if (fb.sent) this.#cache.release(fb.sent);
    fb.sent = compiled;
  }

  #params(params: ServerResource<'zwp_linux_buffer_params_v1'>, version: number): void {
    const planes = new Map<number, PlaneInput>();
    let used = false;
    const closePlanes = (): void => {
      for (const p of planes.values()) p.fd.close();
      planes.clear();
    };
    params.onDestroy(closePlanes); // destroy before create, or the client went away
    const fatal = (p: ParamsProblem): void => params.postError(p.code, p.message);
    const alreadyUsed = (): void => params.postError(PARAMS_ERROR.already_used, 'the params object was already used to create a buffer');

    params.implement({
      add: ({ fd, plane_idx, offset, stride, modifier_hi, modifier_lo }) => {
        const modifier = (BigInt(modifier_hi) << 32n) | BigInt(modifier_lo);
        if (used) {
          fd.close();
          alreadyUsed();
          return;
        }
        const p = checkAdd(planes, plane_idx, modifier, version);
        if (p) {
          fd.close();
          fatal(p);
          return;
        }
        planes.set(plane_idx, { fd, offset, stride, modifier });
      },
      create: ({ width, height, format, flags }) => {
        if (used) return alreadyUsed();
        used = true;
        this.#create(params, version, planes, { width, height, format, flags }, null);
      },
      create_immed: ({ buffer_id, width, height, format, flags }) => {
        if (used) return alreadyUsed();
        used = true;
        this.#create(params, version, planes, { width, height, format, flags }, buffer_id);
      },
    });
  }

  #create(
    params: ServerResource<'zwp_linux_buffer_params_v1'>,
    version: number,
    planes: Map<number, PlaneInput>,
    req: { width: number; height: number; format: number; flags: number },
    immed: ServerResource<'wl_buffer'> | null,
  ): void {
    const client = params.client;
    const request = immed ? 'create_immed' : 'create';
    const verdict = (v: Omit<BufferVerdict, 'client' | 'request' | 'importer'>): void =>
      this.#opts.onVerdict?.({ client, request, importer: this.#importer.name, ...v });
    const v = DmabufAttributes.validate(
      { planes, ...req },
      { version, advertised: this.#opts.formats, acceptedFlags: this.#opts.acceptedFlags },
    );
    if (!v.ok) {
      // The fds stay in `planes`, closed now (exactly once).
      for (const p of planes.values()) p.fd.close();
      planes.clear();
      verdict({ ok: false, outcome: v.problem.fatal ? 'protocol_error' : 'failed', problem: v.problem, detail: v.problem.message });
      if (v.problem.fatal) params.postError(v.problem.code, v.problem.message);
      else this.#failed(params, immed, v.problem.message);
      return;
    }
    const attributes = v.attributes;
    planes.clear(); // the attributes own the fds now
    const refuse = (reason: string): void => {
      attributes.close();
      verdict({ ok: false, outcome: 'failed', attributes: attributes.toJSON(), detail: reason });
      this.#failed(params, immed, reason);
    };
    const policy = this.#opts.policy?.(attributes, client) ?? null;
    if (policy !== null) return refuse(`refused by policy: ${policy}`);
    let imported: ImportedDmabuf;
    try {
      imported = this.#importer.importDmabuf(attributes);
    } catch (err) {
      return refuse(`import failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    let resource: ServerResource<'wl_buffer'>;
    if (immed) {
      resource = immed;
    } else {
      resource = this.server.createResource(client, 'wl_buffer', params.version);
    }
    const buffer = new LinuxDmabufBuffer(resource, attributes, imported, client, this.#allocatedOn(attributes));
    if (!immed) params.send('created', { buffer: resource });
    verdict({ ok: true, outcome: 'created', attributes: attributes.toJSON(), detail: 'imported' });
    this.#opts.onBuffer?.(buffer);
  }

  /**
   * The device the client was told to allocate this pair on: the main device when the render
   * tranche has it, else the scanout tranche's target device (a pair offered only there).
   */
  #allocatedOn(a: DmabufAttributes): bigint {
    const s = this.#opts.scanout;
    if (s && !this.#opts.formats.has(a.format, a.modifier) && s.formats.has(a.format, a.modifier)) return s.device;
    return this.#opts.mainDevice;
  }

  #failed(params: ServerResource<'zwp_linux_buffer_params_v1'>, immed: ServerResource<'wl_buffer'> | null, reason: string): void {
    if (immed) params.postError(PARAMS_ERROR.invalid_wl_buffer, reason);
    else params.send('failed', {});
  }
}

