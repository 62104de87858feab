/**
 * The client side of linux-dmabuf feedback: binds zwp_linux_dmabuf_v1 and turns the feedback
 * events (main device, format table, tranches) into immutable snapshots, for the default
 * feedback and per surface. Version 4+ reads feedback objects; a version 3 global falls back to
 * its modifier events (one tranche, no device known). The format table is read through a
 * read-only private mapping (MAP_PRIVATE, PROT_READ) and its fd closed at once.
 */
import { InvalidArgumentError, ClosedError } from '../errors.js';
import { FormatSet, type FormatModifier } from '../formats/index.js';
import { native } from '../native.js';
import { parseFormatTable, readDevArray, TRANCHE_FLAGS } from '../wayland/dmabuf-feedback.js';
import type { GlobalInfo, WaylandConnection, WaylandProxy } from '../wayland/client.js';

/** One tranche as the client received it. */
export interface FeedbackTranche {
  /** dev_t of the target device; null when the server did not say (version 3 fallback) */
  readonly device: bigint | null;
  /** raw zwp_linux_dmabuf_feedback_v1.tranche_flags */
  readonly flags: number;
  /** the SCANOUT flag: buffers of these pairs may go straight to a KMS plane */
  readonly scanout: boolean;
  readonly formats: FormatSet;
}

/** An immutable feedback snapshot (what one `done` event completed). */
export interface DmabufFeedback {
  /** 'feedback' (version 4+ feedback object) or 'modifiers' (version 3 modifier events) */
  readonly source: 'feedback' | 'modifiers';
  /** dev_t of the main device; null in the version 3 fallback */
  readonly mainDevice: bigint | null;
  /** in the server's order of preference */
  readonly tranches: readonly FeedbackTranche[];
  /** table indices the server sent that were outside its format table (skipped) */
  readonly badIndices: number;
  /** what was wrong with what the server sent (an unreadable format table, bad indices) */
  readonly problems: readonly string[];
}

/** Content identity of a snapshot: equal keys mean the same feedback. */
export function feedbackKey(f: DmabufFeedback): string {
  return JSON.stringify({
    m: f.mainDevice?.toString() ?? null,
    t: f.tranches.map((t) => ({ d: t.device?.toString() ?? null, f: t.flags, p: [...t.formats].map((x) => `${x.format}:${x.modifier}`) })),
  });
}

function freeze(f: DmabufFeedback): DmabufFeedback {
  return Object.freeze({ ...f, problems: Object.freeze([...f.problems]), tranches: Object.freeze(f.tranches.map((t) => Object.freeze({ ...t }))) });
}

/** @internal Whether a destructor request can still be sent on `p` (its connection neither closed nor failed). */
export function alive(p: WaylandProxy): boolean {
  return !p.destroyed && !p.connection.closed && p.connection.error === null;
}

type ChangedListener = (feedback: DmabufFeedback, previous: DmabufFeedback) => void;

/**
 * One feedback stream (default or per surface): `current` is the latest snapshot; 'changed'
 * listeners run when a `done` brings a snapshot different from the previous one.
 */
export class FeedbackWatch {
  #current: DmabufFeedback | null = null;
  #key = '';
  #listeners: ChangedListener[] = [];
  #waiters: Array<(f: DmabufFeedback) => void> = [];
  #proxy: WaylandProxy<'zwp_linux_dmabuf_feedback_v1'> | null;
  #closed = false;
  #dones = 0;

  /** @internal use ClientDmabuf.defaultFeedback()/surfaceFeedback() */
  constructor(proxy: WaylandProxy<'zwp_linux_dmabuf_feedback_v1'> | null, initial?: DmabufFeedback) {
    this.#proxy = proxy;
    if (initial) this._done(initial);
    if (proxy) listen(proxy, (f) => this._done(f));
  }

  /** The latest snapshot; throws until the first `done` arrived (await ready()). */
  get current(): DmabufFeedback {
    if (!this.#current) throw new InvalidArgumentError('no feedback received yet (await ready())');
    return this.#current;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Number of `done` events received (changed or not). */
  get dones(): number {
    return this.#dones;
  }

  /** Resolves with the first snapshot. */
  ready(): Promise<DmabufFeedback> {
    return this.#current ? Promise.resolve(this.#current) : this.#nextDone();
  }

  /** Resolves with the next snapshot that differs from the current one. */
  nextChange(): Promise<DmabufFeedback> {
    return new Promise((resolve) => {
      const off = this.on('changed', (f) => {
        off();
        resolve(f);
      });
    });
  }

  /** Runs `fn` on every change; returns the function that removes it. */
  on(event: 'changed', fn: ChangedListener): () => void {
    if (event !== 'changed') throw new InvalidArgumentError(`FeedbackWatch has no event '${String(event)}'`);
    this.#listeners.push(fn);
    return () => {
      const i = this.#listeners.indexOf(fn);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** Destroys the feedback object (idempotent); the last snapshot stays readable. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners = [];
    const p = this.#proxy;
    this.#proxy = null;
    if (p && alive(p)) p.request('destroy', {});
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #nextDone(): Promise<DmabufFeedback> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** @internal */
  _done(f: DmabufFeedback): void {
    if (this.#closed) return;
    this.#dones++;
    const snap = freeze(f);
    const key = feedbackKey(snap);
    const previous = this.#current;
    this.#current = snap;
    const changed = previous !== null && key !== this.#key;
    this.#key = key;
    for (const w of this.#waiters.splice(0)) w(snap);
    if (changed) for (const fn of [...this.#listeners]) fn(snap, previous);
  }
}

/**
 * The format table's entries, read through a private read-only mapping. The advertised size is
 * checked against the file first: touching a mapping beyond the end of a file is SIGBUS, not an
 * error. A table that cannot be read is empty (its indices then count as bad) and reported.
 */
function readTable(fd: number, size: number, problems: string[]): FormatModifier[] {
  let fileSize: bigint;
  try {
    fileSize = native.dmabufSize(fd);
  } catch (err) {
    problems.push(`format table: cannot size the file (${(err as Error).message})`);
    return [];
  }
  if (BigInt(size) > fileSize) {
    problems.push(`format table of ${size} bytes advertised over a file of ${fileSize} bytes: not read`);
    return [];
  }
  if (size % 16 !== 0) problems.push(`format table of ${size} bytes is not a whole number of 16-byte entries`);
  try {
    return parseFormatTable(native.wlReadFdPrivate(fd, size));
  } catch (err) {
    problems.push(`format table: ${(err as Error).message}`);
    return [];
  }
}

/** Decodes the event batches of one feedback object; calls `done` with each completed snapshot. */
function listen(proxy: WaylandProxy<'zwp_linux_dmabuf_feedback_v1'>, done: (f: DmabufFeedback) => void): void {
  // The table and main device persist across batches unless re-sent; tranches never do.
  let table: FormatModifier[] = [];
  let mainDevice: bigint | null = null;
  let tranches: FeedbackTranche[] = [];
  let badIndices = 0;
  let problems: string[] = [];
  let tranche = { device: null as bigint | null, flags: 0, pairs: [] as FormatModifier[] };
  proxy.on('main_device', ({ device }) => (mainDevice = readDevArray(device)));
  proxy.on('format_table', ({ fd, size }) => {
    try {
      table = readTable(fd.fd, size, problems);
    } finally {
      fd.close();
    }
  });
  proxy.on('tranche_target_device', ({ device }) => (tranche.device = readDevArray(device)));
  proxy.on('tranche_flags', ({ flags }) => (tranche.flags = flags));
  proxy.on('tranche_formats', ({ indices }) => {
    const view = new DataView(indices.buffer, indices.byteOffset, indices.byteLength);
    const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    for (let off = 0; off + 2 <= indices.byteLength; off += 2) {
      const e = table[view.getUint16(off, little)];
      if (e) tranche.pairs.push(e);
      else badIndices++;
    }
  });
  proxy.on('tranche_done', () => {
    const flags = tranche.flags;
    tranches.push({ device: tranche.device ?? mainDevice, flags, scanout: (flags & TRANCHE_FLAGS.scanout) !== 0, formats: FormatSet.from(tranche.pairs) });
    tranche = { device: null, flags: 0, pairs: [] };
  });
  proxy.on('done', () => {
    if (badIndices > 0) problems.push(`${badIndices} tranche indices outside the format table of ${table.length} entries`);
    const f: DmabufFeedback = { source: 'feedback', mainDevice, tranches, badIndices, problems };
    tranches = [];
    badIndices = 0;
    problems = [];
    done(f);
  });
}

/** The client's zwp_linux_dmabuf_v1: feedback (or the version 3 modifier list) and buffer params. */
export class ClientDmabuf {
  readonly proxy: WaylandProxy<'zwp_linux_dmabuf_v1'>;
  readonly connection: WaylandConnection;
  #modifiers: FeedbackWatch | null = null;
  #watches = new Set<FeedbackWatch>();
  #closed = false;

  private constructor(connection: WaylandConnection, proxy: WaylandProxy<'zwp_linux_dmabuf_v1'>) {
    this.connection = connection;
    this.proxy = proxy;
  }

  /**
   * Binds the global at min(advertised, `maxVersion`) (at least 3: version 1-2 carry no modifiers).
   * With version 3 the modifier events are collected by the roundtrip this performs.
   */
  static async bind(
    connection: WaylandConnection,
    opts: { registry?: WaylandProxy<'wl_registry'>; globals?: readonly GlobalInfo[]; maxVersion?: number } = {},
  ): Promise<ClientDmabuf> {
    let registry = opts.registry;
    let globals = opts.globals;
    if (!registry || !globals) ({ registry, globals } = await connection.globals());
    const g = globals.find((x) => x.interface === 'zwp_linux_dmabuf_v1');
    if (!g) throw new InvalidArgumentError('the server has no zwp_linux_dmabuf_v1 global');
    const version = Math.min(g.version, opts.maxVersion ?? 5);
    if (version < 3) throw new InvalidArgumentError(`zwp_linux_dmabuf_v1 version ${version} has no modifiers (need 3 or later)`);
    const proxy = connection.bind(registry, g, 'zwp_linux_dmabuf_v1', version);
    const c = new ClientDmabuf(connection, proxy);
    if (version < 4) {
      const pairs: Array<[number, bigint]> = [];
      proxy.on('modifier', ({ format, modifier_hi, modifier_lo }) => pairs.push([format, (BigInt(modifier_hi >>> 0) << 32n) | BigInt(modifier_lo >>> 0)]));
      await connection.roundtrip();
      c.#modifiers = new FeedbackWatch(null, {
        source: 'modifiers',
        mainDevice: null,
        tranches: [{ device: null, flags: 0, scanout: false, formats: FormatSet.from(pairs) }],
        badIndices: 0,
        problems: [],
      });
    }
    return c;
  }

  get version(): number {
    return this.proxy.version;
  }

  /** The default feedback (version 3: the modifier list, which never changes). Resolves after the first snapshot. */
  async defaultFeedback(): Promise<FeedbackWatch> {
    this.#check();
    if (this.#modifiers) return this.#modifiers;
    return this.#watch(this.proxy.request('get_default_feedback', {}));
  }

  /** Feedback for `surface` (version 3: the modifier list). Resolves after the first snapshot. */
  async surfaceFeedback(surface: WaylandProxy<'wl_surface'>): Promise<FeedbackWatch> {
    this.#check();
    if (this.#modifiers) return this.#modifiers;
    return this.#watch(this.proxy.request('get_surface_feedback', { surface }));
  }

  /** Destroys every feedback object made here and the zwp_linux_dmabuf_v1 proxy (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#watches) w.close();
    this.#watches.clear();
    this.#modifiers?.close();
    if (alive(this.proxy)) this.proxy.request('destroy', {});
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async #watch(proxy: WaylandProxy<'zwp_linux_dmabuf_feedback_v1'>): Promise<FeedbackWatch> {
    const w = new FeedbackWatch(proxy);
    this.#watches.add(w);
    // The first snapshot, or the fatal error of the connection (which would leave it pending forever).
    const failed = new Promise<never>((_, reject) => this.connection.onError(reject));
    failed.catch(() => undefined);
    try {
      await Promise.race([w.ready(), failed]);
    } catch (err) {
      this.#watches.delete(w);
      w.close();
      throw err;
    }
    return w;
  }

  #check(): void {
    if (this.#closed) throw new ClosedError('ClientDmabuf');
  }
}
