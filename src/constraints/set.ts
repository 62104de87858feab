/**
 * ConstraintSet and merge(): the strictest combination of several devices' constraints.
 *
 * Rules (each one commutative, associative and idempotent, so the order in which devices are
 * attached never changes the outcome):
 *   formats      intersection of every defined FormatSet
 *   modifiers    intersection of every defined "modifiers for any format" list
 *   alignments   least common multiple (pitch, offset, size, width, height)
 *   min limits   maximum;  max limits  minimum
 *   contiguous   if any member needs it
 *   coherency    the set of members that are not cache-coherent (write-combine if any)
 *   allocateOn   the set of devices that can only use their own buffers (more than one: conflict)
 *   cpuAccess    the union of read/write
 * A conflict is a value: merge() returns { ok: false, reasons } naming the members and the
 * property they disagree on; it never throws for a conflict.
 */
import { DRM_FORMAT_MOD_LINEAR, FormatSet, formatInfo, formatName } from '../formats/index.js';
import { InvalidArgumentError } from '../errors.js';
import { constraintKey, modifierLabel, subject, type CpuAccess, type DeviceConstraint, type Reason } from './types.js';

/** The acceptance of one format by a set or member: a modifier list, or 'any'. */
export type ModifierChoice = readonly bigint[] | 'any';

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Least common multiple of two positive integers. */
export function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

function sortBig(list: Iterable<bigint>): bigint[] {
  return [...new Set(list)].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
}

function intersectMods(a: readonly bigint[] | undefined, b: readonly bigint[] | undefined): readonly bigint[] | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const bs = new Set(b);
  return sortBig(a.filter((m) => bs.has(m)));
}

function intersectFormats(a: FormatSet | undefined, b: FormatSet | undefined): FormatSet | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a.intersect(b);
}

function cpuUnion(a: CpuAccess, b: CpuAccess): CpuAccess {
  const r = a === 'read' || a === 'readwrite' || b === 'read' || b === 'readwrite';
  const w = a === 'write' || a === 'readwrite' || b === 'write' || b === 'readwrite';
  return r && w ? 'readwrite' : r ? 'read' : w ? 'write' : 'none';
}

function posInt(v: number | undefined, what: string, c: DeviceConstraint): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new InvalidArgumentError(`${subject(c)}: ${what} must be a positive integer, got ${v}`);
  }
  return v;
}

function bigJSON(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return `0x${v.toString(16).padStart(16, '0')}`;
  return v;
}

/** A canonical JSON form of one member (FormatSet uses its own toJSON). */
export function constraintToJSON(c: DeviceConstraint): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(c).sort()) {
    const v = (c as unknown as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (k === 'modifiers' || k === 'emptyModifiers') {
      out[k] = (v as bigint[]).map((m) => modifierLabel(m));
    } else if (v instanceof FormatSet) {
      out[k] = v.toJSON();
    } else {
      out[k] = JSON.parse(JSON.stringify(v, bigJSON));
    }
  }
  return out;
}

const memberOrder = new WeakMap<DeviceConstraint, string>();
function orderKey(c: DeviceConstraint): string {
  let k = memberOrder.get(c);
  if (k === undefined) {
    k = `${constraintKey(c)}\u0000${JSON.stringify(constraintToJSON(c))}`;
    memberOrder.set(c, k);
  }
  return k;
}

/**
 * The merged constraints of a set of members. Immutable; build with ConstraintSet.of() and
 * combine(), or with merge().
 */
export class ConstraintSet {
  static readonly empty = new ConstraintSet([]);

  /** Members in canonical order (by key, then content), without duplicates. */
  readonly members: readonly DeviceConstraint[];
  readonly formats: FormatSet | undefined;
  readonly modifiers: readonly bigint[] | undefined;
  readonly pitchAlign: number;
  readonly offsetAlign: number;
  readonly sizeAlign: number;
  readonly widthAlign: number;
  readonly heightAlign: number;
  readonly minWidth: number;
  readonly minHeight: number;
  readonly maxWidth: number | undefined;
  readonly maxHeight: number | undefined;
  readonly maxPitch: number | undefined;
  readonly maxPlanes: number | undefined;
  readonly contiguous: boolean;
  /** Members that are not cache-coherent ('device:usage' keys). */
  readonly nonCoherent: readonly string[];
  /** Devices that can only use buffers allocated on themselves. */
  readonly allocateOn: readonly string[];
  /** Members that cannot take an explicit modifier. */
  readonly implicitOnly: readonly string[];
  readonly cpuAccess: CpuAccess;

  private constructor(members: readonly DeviceConstraint[]) {
    const byKey = new Map<string, DeviceConstraint>();
    for (const m of members) byKey.set(orderKey(m), m);
    const sorted = [...byKey.keys()].sort().map((k) => byKey.get(k)!);
    this.members = Object.freeze(sorted);
    let formats: FormatSet | undefined;
    let modifiers: readonly bigint[] | undefined;
    let pitchAlign = 1, offsetAlign = 1, sizeAlign = 1, widthAlign = 1, heightAlign = 1;
    let minWidth = 1, minHeight = 1;
    let maxWidth: number | undefined, maxHeight: number | undefined, maxPitch: number | undefined, maxPlanes: number | undefined;
    let contiguous = false;
    let cpuAccess: CpuAccess = 'none';
    const nonCoherent = new Set<string>();
    const allocateOn = new Set<string>();
    const implicitOnly = new Set<string>();
    const min = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));
    for (const m of sorted) {
      formats = intersectFormats(formats, m.formats);
      modifiers = intersectMods(modifiers, m.modifiers === undefined ? undefined : sortBig(m.modifiers));
      pitchAlign = lcm(pitchAlign, posInt(m.pitchAlign, 'pitchAlign', m) ?? 1);
      offsetAlign = lcm(offsetAlign, posInt(m.offsetAlign, 'offsetAlign', m) ?? 1);
      sizeAlign = lcm(sizeAlign, posInt(m.sizeAlign, 'sizeAlign', m) ?? 1);
      widthAlign = lcm(widthAlign, posInt(m.widthAlign, 'widthAlign', m) ?? 1);
      heightAlign = lcm(heightAlign, posInt(m.heightAlign, 'heightAlign', m) ?? 1);
      minWidth = Math.max(minWidth, posInt(m.minWidth, 'minWidth', m) ?? 1);
      minHeight = Math.max(minHeight, posInt(m.minHeight, 'minHeight', m) ?? 1);
      maxWidth = min(maxWidth, posInt(m.maxWidth, 'maxWidth', m));
      maxHeight = min(maxHeight, posInt(m.maxHeight, 'maxHeight', m));
      maxPitch = min(maxPitch, posInt(m.maxPitch, 'maxPitch', m));
      maxPlanes = min(maxPlanes, posInt(m.maxPlanes, 'maxPlanes', m));
      if (m.contiguous) contiguous = true;
      if (m.coherent === false) nonCoherent.add(constraintKey(m));
      if (m.allocateOn !== undefined) allocateOn.add(m.allocateOn);
      if (m.explicitModifiers === false) implicitOnly.add(constraintKey(m));
      cpuAccess = cpuUnion(cpuAccess, m.cpuAccess ?? (m.usage === 'cpu' ? 'readwrite' : 'none'));
    }
    this.formats = formats;
    this.modifiers = modifiers;
    this.pitchAlign = pitchAlign;
    this.offsetAlign = offsetAlign;
    this.sizeAlign = sizeAlign;
    this.widthAlign = widthAlign;
    this.heightAlign = heightAlign;
    this.minWidth = minWidth;
    this.minHeight = minHeight;
    this.maxWidth = maxWidth;
    this.maxHeight = maxHeight;
    this.maxPitch = maxPitch;
    this.maxPlanes = maxPlanes;
    this.contiguous = contiguous;
    this.cpuAccess = cpuAccess;
    this.nonCoherent = Object.freeze([...nonCoherent].sort());
    this.allocateOn = Object.freeze([...allocateOn].sort());
    this.implicitOnly = Object.freeze([...implicitOnly].sort());
    Object.freeze(this);
  }

  /** The set holding one member. */
  static of(...members: DeviceConstraint[]): ConstraintSet {
    return new ConstraintSet(members);
  }

  /** The merge of two sets (pairwise; order does not matter). */
  combine(other: ConstraintSet): ConstraintSet {
    if (other.members.length === 0) return this;
    if (this.members.length === 0) return other;
    return new ConstraintSet([...this.members, ...other.members]);
  }

  /** The set without the members that match `key` (constraintKey). */
  without(key: string): ConstraintSet {
    return new ConstraintSet(this.members.filter((m) => constraintKey(m) !== key));
  }

  /** A write-combined (or uncached) CPU mapping is preferable: some member is not coherent. */
  get writeCombine(): boolean {
    return this.nonCoherent.length > 0;
  }

  /** The modifiers every member accepts for `format`. */
  accepted(format: number): ModifierChoice {
    return acceptedBy(this.formats, this.modifiers, format);
  }

  /**
   * The format/modifier pairs every member accepts, restricted to `candidates` when given.
   * undefined when no member restricts the pairs and no candidates bound them.
   */
  pairs(candidates?: readonly number[]): FormatSet | undefined {
    if (candidates === undefined) {
      if (this.formats === undefined) return undefined;
      return filterMods(this.formats, this.modifiers);
    }
    const out: [number, bigint][] = [];
    for (const f of candidates) {
      const mods = this.accepted(f);
      if (mods === 'any') return undefined;
      for (const m of mods) out.push([f, m]);
    }
    return FormatSet.from(out);
  }

  /** Conflicts among the members (no candidates, no size: see solve() for those). */
  conflicts(): Reason[] {
    return mergeConflicts(this);
  }

  toJSON(): Record<string, unknown> {
    const pairs = this.pairs();
    return {
      members: this.members.map((m) => constraintToJSON(m)),
      formats: pairs === undefined ? 'any' : pairs.toJSON(),
      modifiers: this.modifiers === undefined ? 'any' : this.modifiers.map((m) => modifierLabel(m)),
      pitchAlign: this.pitchAlign,
      offsetAlign: this.offsetAlign,
      sizeAlign: this.sizeAlign,
      widthAlign: this.widthAlign,
      heightAlign: this.heightAlign,
      width: { min: this.minWidth, max: this.maxWidth ?? null },
      height: { min: this.minHeight, max: this.maxHeight ?? null },
      maxPitch: this.maxPitch ?? null,
      maxPlanes: this.maxPlanes ?? null,
      contiguous: this.contiguous,
      nonCoherent: this.nonCoherent,
      writeCombine: this.writeCombine,
      allocateOn: this.allocateOn,
      implicitOnly: this.implicitOnly,
      cpuAccess: this.cpuAccess,
    };
  }
}

export function acceptedBy(formats: FormatSet | undefined, modifiers: readonly bigint[] | undefined, format: number): ModifierChoice {
  if (formats !== undefined) {
    const mods = formats.modifiers(format);
    if (modifiers === undefined) return mods;
    const allowed = new Set(modifiers);
    return mods.filter((m) => allowed.has(m));
  }
  return modifiers ?? 'any';
}

function filterMods(set: FormatSet, modifiers: readonly bigint[] | undefined): FormatSet {
  if (modifiers === undefined) return set;
  const allowed = new Set(modifiers);
  return FormatSet.from([...set].filter((p) => allowed.has(p.modifier)));
}

export interface MergeResult {
  readonly ok: boolean;
  readonly set: ConstraintSet;
  readonly reasons: readonly Reason[];
  /** The reasons' details joined, for a log line. */
  readonly message: string;
}

export function result(set: ConstraintSet, reasons: Reason[]): MergeResult {
  const details = [...new Set(reasons.map((r) => r.detail))];
  return Object.freeze({ ok: reasons.length === 0, set, reasons: Object.freeze(reasons), message: details.join('; ') });
}

/**
 * Merges device constraints and sets. Never throws for a conflict: the result says ok or
 * lists the reasons. merge(a, b) and merge(b, a) are equal; so are merge(merge(a, b), c) and
 * merge(a, merge(b, c)).
 */
export function merge(...items: Array<DeviceConstraint | ConstraintSet | MergeResult>): MergeResult {
  let set = ConstraintSet.empty;
  for (const item of items) {
    const s = item instanceof ConstraintSet ? item : isResult(item) ? item.set : ConstraintSet.of(item);
    set = set.combine(s);
  }
  return result(set, set.conflicts());
}

function isResult(x: unknown): x is MergeResult {
  return typeof x === 'object' && x !== null && 'set' in x && (x as MergeResult).set instanceof ConstraintSet;
}

// ---------------------------------------------------------------------------------------------
// Conflict explanations

const LIST_MAX = 8;

function nameList(names: string[]): string {
  if (names.length <= LIST_MAX) return names.join(', ');
  return `${names.slice(0, LIST_MAX).join(', ')} and ${names.length - LIST_MAX} more`;
}

function modList(mods: readonly bigint[]): string {
  return mods.map((m) => modifierLabel(m)).join(', ');
}

function memberAccepts(m: DeviceConstraint, f: number): ModifierChoice {
  return acceptedBy(m.formats, m.modifiers, f);
}

function interChoice(a: ModifierChoice, b: ModifierChoice): ModifierChoice {
  if (a === 'any') return b;
  if (b === 'any') return a;
  const bs = new Set(b);
  return a.filter((x) => bs.has(x));
}

function choiceEmpty(c: ModifierChoice): boolean {
  return c !== 'any' && c.length === 0;
}

/**
 * What member `m` accepts among `focus` formats, as a sentence:
 * "plane 35 on card0 accepts XRGB8888 only as LINEAR, and not NV12".
 */
export function describeAccepts(m: DeviceConstraint, focus: readonly number[]): string {
  const who = subject(m);
  const acc = focus.filter((f) => !choiceEmpty(memberAccepts(m, f)));
  const not = focus.filter((f) => choiceEmpty(memberAccepts(m, f)));
  let s: string;
  if (acc.length === 0) {
    s = `${who} accepts none of ${nameList(focus.map(formatName))}`;
    if (m.formats !== undefined && !m.formats.isEmpty) {
      s += ` (it takes ${nameList(m.formats.formats().map(formatName))})`;
    }
  } else {
    const groups = new Map<string, number[]>();
    for (const f of acc) {
      const c = memberAccepts(m, f);
      const k = c === 'any' ? 'any' : modList(c);
      groups.set(k, [...(groups.get(k) ?? []), f]);
    }
    const parts = [...groups.entries()].map(([k, fs]) => {
      const names = nameList(fs.map(formatName));
      if (k === 'any') return `${names} with any modifier`;
      const c = memberAccepts(m, fs[0]!) as readonly bigint[];
      if (groups.size === 1 && c.length === 1 && c[0] === DRM_FORMAT_MOD_LINEAR) return `only LINEAR (${names})`;
      return c.length === 1 ? `${names} only as ${k}` : `${names} only with ${k}`;
    });
    s = `${who} accepts ${parts.join('; ')}`;
    if (not.length > 0) s += `, and not ${nameList(not.map(formatName))}`;
  }
  if (m.emptyModifiers !== undefined && m.emptyModifiers.length > 0) {
    s += ` (${modList(m.emptyModifiers)} is advertised with no format)`;
  }
  return s;
}

/** The formats that matter for a pair-set explanation. */
function focusFormats(members: readonly DeviceConstraint[], candidates?: readonly number[]): number[] {
  if (candidates !== undefined) return [...candidates];
  const all = new Set<number>();
  for (const m of members) for (const f of m.formats?.formats() ?? []) all.add(f);
  return [...all].sort((a, b) => a - b);
}

function reasonFor(code: Reason['code'], m: DeviceConstraint, detail: string, extra: Partial<Reason> = {}): Reason {
  const r: Reason = { code, device: m.device, usage: m.usage, detail, ...extra };
  if (m.plane !== undefined) (r as { plane?: number }).plane = m.plane;
  return r;
}

/**
 * Explains why no format/modifier pair (among `candidates`, when given) is accepted by every
 * member: a member that takes none of the candidates; else the first two members that share
 * no pair; else every member (a three-way disagreement).
 */
export function explainPairs(members: readonly DeviceConstraint[], candidates?: readonly number[]): Reason[] {
  const focus = focusFormats(members, candidates);
  if (focus.length === 0) {
    const restricting = members.filter((m) => m.formats !== undefined);
    return restricting.map((m) => reasonFor('FORMAT', m, `${subject(m)} accepts no format/modifier pair at all`));
  }
  for (const m of members) {
    if (focus.every((f) => choiceEmpty(memberAccepts(m, f)))) {
      return [reasonFor('FORMAT', m, describeAccepts(m, focus))];
    }
  }
  for (let i = 0; i < members.length; i++) {
    for (let j = i + 1; j < members.length; j++) {
      const a = members[i]!, b = members[j]!;
      if (focus.every((f) => choiceEmpty(interChoice(memberAccepts(a, f), memberAccepts(b, f))))) {
        const rel = focus.filter((f) => !choiceEmpty(memberAccepts(a, f)) || !choiceEmpty(memberAccepts(b, f)));
        const detail = `${describeAccepts(a, rel)}; ${describeAccepts(b, rel)}`;
        return [reasonFor('FORMAT_MODIFIER', a, detail), reasonFor('FORMAT_MODIFIER', b, detail)];
      }
    }
  }
  const detail = `no format/modifier pair is accepted by all of ${members.map(subject).join(', ')}: ${members
    .map((m) => describeAccepts(m, focus))
    .join('; ')}`;
  return members.filter((m) => m.formats !== undefined || m.modifiers !== undefined).map((m) => reasonFor('FORMAT_MODIFIER', m, detail));
}

function bound(members: readonly DeviceConstraint[], pick: (m: DeviceConstraint) => number | undefined, want: 'min' | 'max'): DeviceConstraint | undefined {
  let best: DeviceConstraint | undefined;
  for (const m of members) {
    const v = pick(m);
    if (v === undefined) continue;
    const b = best === undefined ? undefined : pick(best);
    if (b === undefined || (want === 'max' ? v > b : v < b)) best = m;
  }
  return best;
}

function mergeConflicts(set: ConstraintSet): Reason[] {
  const reasons: Reason[] = [];
  const ms = set.members;
  // Pairs.
  const pairs = set.pairs();
  const modsEmpty = set.modifiers !== undefined && set.modifiers.length === 0;
  if ((pairs !== undefined && pairs.isEmpty) || (pairs === undefined && modsEmpty)) {
    reasons.push(...explainPairs(ms.filter((m) => m.formats !== undefined || m.modifiers !== undefined)));
  } else if (pairs !== undefined && set.maxPlanes !== undefined) {
    const fits = pairs.formats().filter((f) => (formatInfo(f)?.planes ?? 1) <= set.maxPlanes!);
    if (fits.length === 0) {
      const m = bound(ms, (x) => x.maxPlanes, 'min')!;
      reasons.push(
        reasonFor('PLANES', m, `${subject(m)} takes at most ${m.maxPlanes} plane(s); every common format has more (${nameList(pairs.formats().map(formatName))})`),
      );
    }
  }
  // Sizes.
  for (const [dim, lo, hi] of [
    ['width', (m: DeviceConstraint) => m.minWidth, (m: DeviceConstraint) => m.maxWidth],
    ['height', (m: DeviceConstraint) => m.minHeight, (m: DeviceConstraint) => m.maxHeight],
  ] as const) {
    const minM = bound(ms, lo, 'max');
    const maxM = bound(ms, hi, 'min');
    if (minM && maxM && lo(minM)! > hi(maxM)!) {
      const detail = `${subject(minM)} needs a ${dim} of at least ${lo(minM)}; ${subject(maxM)} takes at most ${hi(maxM)}`;
      reasons.push(reasonFor('SIZE', minM, detail), reasonFor('SIZE', maxM, detail));
    }
  }
  // Pitch alignment against the maximum pitch.
  if (set.maxPitch !== undefined && set.pitchAlign > set.maxPitch) {
    const maxM = bound(ms, (m) => m.maxPitch, 'min')!;
    const alM = bound(ms, (m) => m.pitchAlign, 'max')!;
    const detail = `the pitch alignment ${set.pitchAlign} (${subject(alM)} needs ${alM.pitchAlign}) exceeds the maximum pitch ${maxM.maxPitch} of ${subject(maxM)}`;
    reasons.push(reasonFor('PITCH', maxM, detail));
  }
  // Allocation device.
  if (set.allocateOn.length > 1) {
    const holders = ms.filter((m) => m.allocateOn !== undefined);
    const detail = `${holders.map((m) => `${subject(m)} can only use buffers allocated on ${m.allocateOn}`).join('; ')}`;
    for (const m of holders) reasons.push(reasonFor('ALLOCATE_ON', m, detail));
  }
  return reasons;
}
