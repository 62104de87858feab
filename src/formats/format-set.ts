/**
 * FormatSet: an immutable set of (format, modifier) pairs, the currency of format negotiation
 * (plane IN_FORMATS, linux-dmabuf tranches, allocator capabilities, merged constraints).
 *
 * Canonical order everywhere: formats ascending by code, then modifiers ascending. Two sets
 * with the same pairs are equal whatever order they were built in, iterate identically and
 * serialise to the same JSON. Set operations return new sets; an empty result is a value
 * (FormatSet.empty), never an exception.
 */
import { InvalidArgumentError } from '../errors.js';
import { checkFormatCode, fourcc, formatName } from './fourcc.js';
import { checkModifier, modifierHex, parseModifier } from './modifiers.js';

export interface FormatModifier {
  readonly format: number;
  readonly modifier: bigint;
}

export interface FormatSetJSON {
  format: string;
  modifiers: string[];
}

type Entries = ReadonlyMap<number, readonly bigint[]>;

const NO_MODIFIERS: readonly bigint[] = Object.freeze([]);

const byBigint = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

function intersectSorted(a: readonly bigint[], b: readonly bigint[]): bigint[] {
  const out: bigint[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push(a[i]);
      i++;
      j++;
    } else if (a[i] < b[j]) i++;
    else j++;
  }
  return out;
}

function unionSorted(a: readonly bigint[], b: readonly bigint[]): bigint[] {
  const out: bigint[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i] < b[j])) out.push(a[i++]);
    else if (i >= a.length || b[j] < a[i]) out.push(b[j++]);
    else {
      out.push(a[i]);
      i++;
      j++;
    }
  }
  return out;
}

function subtractSorted(a: readonly bigint[], b: readonly bigint[]): bigint[] {
  const out: bigint[] = [];
  let j = 0;
  for (const x of a) {
    while (j < b.length && b[j] < x) j++;
    if (j >= b.length || b[j] !== x) out.push(x);
  }
  return out;
}

function sameList(a: readonly bigint[], b: readonly bigint[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class FormatSet implements Iterable<FormatModifier> {
  /** The set with no pairs. */
  static readonly empty: FormatSet = new FormatSet(new Map());

  readonly #entries: Entries;
  readonly #formats: readonly number[];
  readonly size: number;

  private constructor(entries: Map<number, readonly bigint[]>) {
    // entries arrive with sorted, duplicate-free, non-empty modifier lists
    const formats = [...entries.keys()].sort((a, b) => a - b);
    const ordered = new Map<number, readonly bigint[]>();
    let size = 0;
    for (const f of formats) {
      const mods = Object.freeze(entries.get(f)!);
      ordered.set(f, mods);
      size += mods.length;
    }
    this.#entries = ordered;
    this.#formats = Object.freeze(formats);
    this.size = size;
    Object.freeze(this);
  }

  /** Builds a set from pairs in any order; duplicates collapse. Throws InvalidArgumentError on a bad pair. */
  static from(pairs: Iterable<FormatModifier | readonly [number, bigint]>): FormatSet {
    const acc = new Map<number, Set<bigint>>();
    for (const p of pairs) {
      const [format, modifier] = Array.isArray(p) ? (p as readonly [number, bigint]) : [(p as FormatModifier).format, (p as FormatModifier).modifier];
      checkFormatCode(format);
      checkModifier(modifier);
      let mods = acc.get(format);
      if (!mods) acc.set(format, (mods = new Set()));
      mods.add(modifier);
    }
    return FormatSet.#fromSets(acc);
  }

  /** One format with the given modifiers. */
  static of(format: number, ...modifiers: bigint[]): FormatSet {
    return FormatSet.from(modifiers.map((m) => [format, m] as const));
  }

  /** Parses what toJSON() produces (format names or hex codes, modifiers as hex or names). */
  static fromJSON(json: readonly FormatSetJSON[]): FormatSet {
    if (!Array.isArray(json)) throw new InvalidArgumentError('FormatSet JSON must be an array');
    const pairs: Array<[number, bigint]> = [];
    for (const entry of json) {
      if (!entry || typeof entry.format !== 'string' || !Array.isArray(entry.modifiers)) {
        throw new InvalidArgumentError(`bad FormatSet JSON entry ${JSON.stringify(entry)}`);
      }
      // formatName() writes codes the header does not define as '0x%08x': take those as they are
      const format = /^0x[0-9a-f]{8}$/i.test(entry.format) ? Number.parseInt(entry.format.slice(2), 16) : fourcc(entry.format);
      for (const m of entry.modifiers) pairs.push([format, parseModifier(String(m))]);
    }
    return FormatSet.from(pairs);
  }

  static #fromSets(acc: Map<number, Set<bigint>>): FormatSet {
    const entries = new Map<number, readonly bigint[]>();
    for (const [f, mods] of acc) if (mods.size) entries.set(f, [...mods].sort(byBigint));
    return entries.size ? new FormatSet(entries) : FormatSet.empty;
  }

  static #make(entries: Map<number, readonly bigint[]>): FormatSet {
    return entries.size ? new FormatSet(entries) : FormatSet.empty;
  }

  get isEmpty(): boolean {
    return this.size === 0;
  }

  has(format: number, modifier: bigint): boolean {
    const mods = this.#entries.get(format);
    if (!mods) return false;
    // binary search: modifier lists can be long (AMD devices list dozens)
    let lo = 0;
    let hi = mods.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (mods[mid] === modifier) return true;
      if (mods[mid] < modifier) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  hasFormat(format: number): boolean {
    return this.#entries.has(format);
  }

  /** The formats present, ascending. */
  formats(): readonly number[] {
    return this.#formats;
  }

  /** The modifiers of `format`, ascending (empty when the format is absent). */
  modifiers(format: number): readonly bigint[] {
    return this.#entries.get(format) ?? NO_MODIFIERS;
  }

  intersect(o: FormatSet): FormatSet {
    const out = new Map<number, readonly bigint[]>();
    const [small, large] = this.#entries.size <= o.#entries.size ? [this, o] : [o, this];
    for (const [f, mods] of small.#entries) {
      const other = large.#entries.get(f);
      if (!other) continue;
      const both = intersectSorted(mods, other);
      if (both.length) out.set(f, both);
    }
    return FormatSet.#make(out);
  }

  union(o: FormatSet): FormatSet {
    if (o.isEmpty) return this;
    if (this.isEmpty) return o;
    const out = new Map<number, readonly bigint[]>(this.#entries);
    for (const [f, mods] of o.#entries) {
      const mine = out.get(f);
      out.set(f, mine ? unionSorted(mine, mods) : mods);
    }
    return FormatSet.#make(out);
  }

  /** The pairs of this set that are not in `o`. */
  subtract(o: FormatSet): FormatSet {
    const out = new Map<number, readonly bigint[]>();
    for (const [f, mods] of this.#entries) {
      const other = o.#entries.get(f);
      const rest = other ? subtractSorted(mods, other) : mods;
      if (rest.length) out.set(f, rest);
    }
    return FormatSet.#make(out);
  }

  /** Keeps the pairs for which `pred` holds. */
  filter(pred: (pair: FormatModifier) => boolean): FormatSet {
    return FormatSet.from([...this].filter(pred));
  }

  /** Whether every pair of this set is in `o`. */
  isSubsetOf(o: FormatSet): boolean {
    for (const [f, mods] of this.#entries) {
      const other = o.#entries.get(f);
      if (!other || intersectSorted(mods, other).length !== mods.length) return false;
    }
    return true;
  }

  equals(o: FormatSet): boolean {
    if (this === o) return true;
    if (this.size !== o.size || this.#formats.length !== o.#formats.length) return false;
    for (const [f, mods] of this.#entries) {
      const other = o.#entries.get(f);
      if (!other || !sameList(mods, other)) return false;
    }
    return true;
  }

  *[Symbol.iterator](): Iterator<FormatModifier> {
    for (const f of this.#formats) {
      for (const modifier of this.#entries.get(f)!) yield Object.freeze({ format: f, modifier });
    }
  }

  /** Canonical JSON: [{ format: 'XRGB8888', modifiers: ['0x0000000000000000', ...] }, ...]. */
  toJSON(): FormatSetJSON[] {
    return this.#formats.map((f) => ({ format: formatName(f), modifiers: this.#entries.get(f)!.map(modifierHex) }));
  }

  toString(): string {
    if (this.isEmpty) return 'FormatSet {}';
    const parts = this.#formats.map((f) => `${formatName(f)}: ${this.#entries.get(f)!.map(modifierHex).join(' ')}`);
    return `FormatSet { ${parts.join('; ')} }`;
  }
}
