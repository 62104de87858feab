/**
 * linux-dmabuf feedback as data: tranches (target device, flags, format/modifier pairs), the
 * format table they index (16-byte entries {u32 format, u32 pad, u64 modifier} in a sealed,
 * read-only memfd) and a cache that keeps ONE table per distinct feedback, shared by every
 * client and every feedback object that sends the same content.
 */
import { OwnedFd } from '../fd.js';
import { FormatSet } from '../formats/index.js';
import { InvalidArgumentError } from '../errors.js';
import { native } from '../native.js';

/** zwp_linux_dmabuf_feedback_v1.tranche_flags */
export const TRANCHE_FLAGS = { scanout: 1 } as const;

export interface Tranche {
  /** dev_t of the target device */
  readonly device: bigint;
  readonly flags: number;
  readonly formats: FormatSet;
}

export interface FeedbackSpec {
  /** dev_t of the main device (at least one tranche targets it) */
  readonly mainDevice: bigint;
  /** in descending order of preference */
  readonly tranches: readonly Tranche[];
}

/** A format table file: entries in canonical order, never modified after creation. */
export class FormatTable {
  readonly fd: OwnedFd;
  readonly size: number;
  readonly entries: readonly { format: number; modifier: bigint }[];
  #index = new Map<string, number>();

  constructor(pairs: FormatSet) {
    const entries = [...pairs];
    if (entries.length > 0x10000) throw new InvalidArgumentError(`format table of ${entries.length} entries exceeds 65536 (16-bit indices)`);
    const bytes = new Uint8Array(entries.length * 16);
    const view = new DataView(bytes.buffer);
    const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    entries.forEach((e, i) => {
      view.setUint32(i * 16, e.format, little);
      view.setUint32(i * 16 + 4, 0, little);
      view.setBigUint64(i * 16 + 8, e.modifier, little);
      this.#index.set(`${e.format}:${e.modifier}`, i);
    });
    this.entries = entries.map((e) => ({ format: e.format, modifier: e.modifier }));
    this.size = bytes.length;
    this.fd = new OwnedFd(native.wlSealedMemfd('primebuf-dmabuf-format-table', bytes), 'linux-dmabuf format table');
  }

  indexOf(format: number, modifier: bigint): number {
    const i = this.#index.get(`${format}:${modifier}`);
    if (i === undefined) throw new InvalidArgumentError(`pair ${format}:${modifier} is not in the format table`);
    return i;
  }

  close(): void {
    this.fd.close();
  }
}

/** Feedback ready to send: the table plus per-tranche u16 index arrays. */
export interface CompiledFeedback {
  /** identity of the content: equal keys mean identical events */
  readonly key: string;
  readonly mainDevice: bigint;
  readonly table: FormatTable;
  readonly tranches: readonly { device: bigint; flags: number; formats: FormatSet; indices: Uint16Array }[];
  /** every pair of every tranche */
  readonly all: FormatSet;
}

/**
 * Normalises tranches: drops pairs already offered by an earlier tranche with the same device and
 * flags (the protocol forbids duplicates there), drops empty tranches except the main device's
 * first one, and checks that one tranche targets the main device.
 */
export function normalizeTranches(spec: FeedbackSpec): Tranche[] {
  const seen = new Map<string, FormatSet>();
  const out: Tranche[] = [];
  let main = false;
  for (const t of spec.tranches) {
    const k = `${t.device}:${t.flags}`;
    const before = seen.get(k) ?? FormatSet.empty;
    const formats = t.formats.subtract(before);
    seen.set(k, before.union(formats));
    const isMain = t.device === spec.mainDevice;
    if (formats.isEmpty && !(isMain && !main)) continue;
    if (isMain) main = true;
    out.push({ device: t.device, flags: t.flags, formats });
  }
  if (!main) throw new InvalidArgumentError('linux-dmabuf feedback needs a tranche targeting the main device');
  return out;
}

function feedbackKey(mainDevice: bigint, tranches: readonly Tranche[]): string {
  return JSON.stringify({
    main: mainDevice.toString(),
    tranches: tranches.map((t) => ({ d: t.device.toString(), f: t.flags, p: [...t.formats].map((x) => `${x.format}:${x.modifier}`) })),
  });
}

/**
 * One format table per distinct feedback content, shared by every feedback object that sends
 * it. Entries are reference-counted by the feedback states that use them.
 */
export class FeedbackCache {
  #byKey = new Map<string, { feedback: CompiledFeedback; refs: number }>();

  /** Compiles (or finds) the feedback for `spec` and takes a reference on it. */
  acquire(spec: FeedbackSpec): CompiledFeedback {
    const tranches = normalizeTranches(spec);
    const key = feedbackKey(spec.mainDevice, tranches);
    const hit = this.#byKey.get(key);
    if (hit) {
      hit.refs++;
      return hit.feedback;
    }
    const all = tranches.reduce((acc, t) => acc.union(t.formats), FormatSet.empty);
    const table = new FormatTable(all);
    const feedback: CompiledFeedback = {
      key,
      mainDevice: spec.mainDevice,
      table,
      all,
      tranches: tranches.map((t) => ({
        device: t.device,
        flags: t.flags,
        formats: t.formats,
        indices: Uint16Array.from([...t.formats].map((p) => table.indexOf(p.format, p.modifier))),
      })),
    };
    this.#byKey.set(key, { feedback, refs: 1 });
    return feedback;
  }

  /** Drops a reference; the table file is closed when nobody uses it any more. */
  release(feedback: CompiledFeedback): void {
    const e = this.#byKey.get(feedback.key);
    if (!e) return;
    if (--e.refs <= 0) {
      this.#byKey.delete(feedback.key);
      e.feedback.table.close();
    }
  }

  /** Number of live format tables (one per distinct feedback). */
  get tables(): number {
    return this.#byKey.size;
  }

  close(): void {
    for (const e of this.#byKey.values()) e.feedback.table.close();
    this.#byKey.clear();
  }
}

/** dev_t as the 8-byte native-endian array the protocol sends. */
export function devArray(dev: bigint): Uint8Array {
  const b = new Uint8Array(8);
  const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  new DataView(b.buffer).setBigUint64(0, dev, little);
  return b;
}

/** Reads a dev_t array back (client side). */
export function readDevArray(a: Uint8Array): bigint {
  if (a.byteLength !== 8) throw new InvalidArgumentError(`dev_t array of ${a.byteLength} bytes (expected 8)`);
  const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  return new DataView(a.buffer, a.byteOffset, 8).getBigUint64(0, little);
}

/** Parses a format table's bytes (client side, after mmap). */
export function parseFormatTable(bytes: Uint8Array): Array<{ format: number; modifier: bigint }> {
  const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Array<{ format: number; modifier: bigint }> = [];
  for (let off = 0; off + 16 <= bytes.byteLength; off += 16) {
    out.push({ format: view.getUint32(off, little), modifier: view.getBigUint64(off + 8, little) });
  }
  return out;
}

/** Splits tranche indices into arrays of at most `max` entries (wire messages are bounded). */
export function chunkIndices(indices: Uint16Array, max = 1024): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < indices.length; i += max) {
    const part = indices.slice(i, i + max);
    out.push(new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
  }
  if (out.length === 0) out.push(new Uint8Array(0));
  return out;
}
