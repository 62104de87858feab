/**
 * A device's table of known-bad (format, modifier, plane) triples: a pair the kernel refused on
 * a plane (AddFB2, or TEST_ONLY of a full-screen unrotated placement) although every static
 * check passed, with the reason and the buffer that taught it. Scanout tranches are pruned with
 * it before they are sent, so clients stop allocating what the plane will not take.
 */
import { formatName, type FormatSet } from '../formats/index.js';
import { modifierLabel } from '../constraints/types.js';
import type { ScanoutReason } from './reasons.js';

export interface KnownBadEntry {
  readonly format: number;
  readonly modifier: bigint;
  readonly plane: number;
  readonly reason: ScanoutReason;
  /** A description of the buffer whose verdict taught the entry. */
  readonly taughtBy: string;
}

function key(format: number, modifier: bigint, plane: number): string {
  return `${plane}/${format}/${modifier}`;
}

export class KnownBadTable {
  readonly #entries = new Map<string, KnownBadEntry>();
  readonly #perPlane = new Map<number, number>();
  readonly #listeners = new Set<(entry: KnownBadEntry) => void>();

  /** Records a triple (the first teacher is kept); a new one is told to the onLearn listeners. */
  add(entry: KnownBadEntry): void {
    const k = key(entry.format, entry.modifier, entry.plane);
    if (this.#entries.has(k)) return;
    const e = Object.freeze({ ...entry });
    this.#entries.set(k, e);
    this.#perPlane.set(entry.plane, (this.#perPlane.get(entry.plane) ?? 0) + 1);
    for (const fn of [...this.#listeners]) fn(e);
  }

  /**
   * Calls `fn` with every triple learned from now on (LinuxDmabuf.forKmsDevice re-sends the
   * scanout tranches with it). Returns the function that stops it.
   */
  onLearn(fn: (entry: KnownBadEntry) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get(format: number, modifier: bigint, plane: number): KnownBadEntry | undefined {
    return this.#entries.get(key(format, modifier, plane));
  }

  has(format: number, modifier: bigint, plane: number): boolean {
    return this.#entries.has(key(format, modifier, plane));
  }

  get size(): number {
    return this.#entries.size;
  }

  entries(): KnownBadEntry[] {
    return [...this.#entries.values()];
  }

  /** `formats` (a plane's scanout tranche) without the pairs known bad on `plane`. */
  prune(plane: number, formats: FormatSet): FormatSet {
    if (!this.#perPlane.get(plane)) return formats;
    return formats.filter((p) => !this.has(p.format, p.modifier, plane));
  }

  /** Forgets one triple (e.g. after a driver update) or, without arguments, everything. */
  clear(which?: { format: number; modifier: bigint; plane: number }): void {
    if (!which) {
      this.#entries.clear();
      this.#perPlane.clear();
      return;
    }
    if (this.#entries.delete(key(which.format, which.modifier, which.plane))) {
      this.#perPlane.set(which.plane, this.#perPlane.get(which.plane)! - 1);
    }
  }

  /** 'plane 35: XRGB8888 LINEAR (ADDFB2: ...; taught by ...)' per entry. */
  describe(): string[] {
    return this.entries().map((e) => `plane ${e.plane}: ${formatName(e.format)} ${modifierLabel(e.modifier)} (${e.reason.code}: ${e.reason.detail}; taught by ${e.taughtBy})`);
  }
}
