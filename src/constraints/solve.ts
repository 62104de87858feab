/**
 * solve(): a merged set plus a request (size, candidate formats) -> the formats and modifiers
 * every device accepts, a linear layout that meets every alignment, or the reasons there is
 * none. satisfies(): does an existing buffer meet one device's constraint (the late-attach
 * check)? Both return reasons as data.
 */
import { DRM_FORMAT_MOD_LINEAR, formatInfo, formatName, minPitch, planeSize } from '../formats/index.js';
import { InvalidArgumentError } from '../errors.js';
import { ConstraintSet, acceptedBy, describeAccepts, explainPairs, merge, type MergeResult, type ModifierChoice } from './set.js';
import { modifierLabel, subject, type DeviceConstraint, type Reason } from './types.js';

export interface PlaneLayout {
  readonly offset: bigint;
  readonly pitch: bigint;
}

/** Where the bytes of a buffer are: what an allocator made, or what a plan will make. */
export interface Layout {
  readonly width: number;
  readonly height: number;
  readonly format: number;
  readonly modifier: bigint;
  /** The rows/columns actually backed (width/height rounded up to the alignments). */
  readonly allocWidth: number;
  readonly allocHeight: number;
  readonly planes: readonly PlaneLayout[];
  /** Total bytes of the allocation. */
  readonly size: bigint;
}

/** CPU mapping type of an allocation. */
export type CpuCache = 'cached' | 'write-combined' | 'uncached';

/** An allocated (or planned) buffer, as the constraint checks see it. */
export interface BufferDescription extends Layout {
  /** The allocator that made it ('dumb@card0', 'dma-heap:system', ...). */
  readonly allocator: string;
  /** The device that allocated it, when it came from a device (dumb, GBM); undefined for heaps. */
  readonly allocatedOn?: string;
  readonly contiguous: boolean;
  readonly cpuCache: CpuCache;
}

export interface SizeRequest {
  readonly width: number;
  readonly height: number;
  /** Candidate formats in the caller's order of preference. */
  readonly formats: readonly number[];
}

export interface FormatOption {
  readonly format: number;
  /** Modifiers every device accepts for it ('any' when nobody restricts modifiers). */
  readonly modifiers: ModifierChoice;
  /** A linear layout meeting every alignment, when LINEAR is among the modifiers. */
  readonly linear?: Layout;
}

export interface Solution {
  readonly ok: boolean;
  readonly set: ConstraintSet;
  readonly request: SizeRequest;
  /** Acceptable candidates, in the caller's order. */
  readonly options: readonly FormatOption[];
  /** Everything that excluded a candidate or the whole request. */
  readonly reasons: readonly Reason[];
  readonly message: string;
}

function alignUp(v: bigint, a: bigint): bigint {
  return ((v + a - 1n) / a) * a;
}

function alignNum(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/** The alignment fields a layout must meet (a ConstraintSet has them all). */
export interface LayoutRules {
  readonly pitchAlign: number;
  readonly offsetAlign: number;
  readonly sizeAlign: number;
  readonly widthAlign: number;
  readonly heightAlign: number;
}

/**
 * A layout with every plane packed one after the other: pitch = the format's minimum pitch
 * for the aligned width, rounded up to pitchAlign; offsets rounded up to offsetAlign; size
 * rounded up to sizeAlign. Correct for LINEAR; other modifiers are laid out by their allocator.
 */
export function linearLayout(rules: LayoutRules, width: number, height: number, format: number, modifier = DRM_FORMAT_MOD_LINEAR): Layout {
  const info = formatInfo(format);
  if (info === undefined) throw new InvalidArgumentError(`no layout for unknown format ${formatName(format)}`);
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new InvalidArgumentError(`invalid size ${width}x${height}`);
  }
  const allocWidth = alignNum(width, rules.widthAlign);
  const allocHeight = alignNum(height, rules.heightAlign);
  const planes: PlaneLayout[] = [];
  let end = 0n;
  for (let i = 0; i < info.planes; i++) {
    const pitch = alignUp(minPitch(format, allocWidth, i), BigInt(rules.pitchAlign));
    const offset = alignUp(end, BigInt(rules.offsetAlign));
    end = offset + planeSize(format, allocWidth, allocHeight, i, pitch);
    planes.push({ offset, pitch });
  }
  return { width, height, format, modifier, allocWidth, allocHeight, planes, size: alignUp(end, BigInt(rules.sizeAlign)) };
}

function reason(code: Reason['code'], m: DeviceConstraint, detail: string, extra: Partial<Reason> = {}): Reason {
  const r = { code, device: m.device, usage: m.usage, detail, ...extra } as Reason;
  if (m.plane !== undefined) (r as { plane?: number }).plane = m.plane;
  return r;
}

/** Does `mods` allow `modifier`? */
function allows(mods: ModifierChoice, modifier: bigint): boolean {
  return mods === 'any' || mods.includes(modifier);
}

/**
 * The formats of `request` every member of `set` accepts at that size, each with its
 * modifiers and a linear layout, or the reasons none fits.
 */
export function solve(setOrMerge: ConstraintSet | MergeResult, request: SizeRequest): Solution {
  const set = setOrMerge instanceof ConstraintSet ? setOrMerge : setOrMerge.set;
  const reasons: Reason[] = [];
  const base = merge(set);
  // Conflicts that do not depend on the candidates (sizes, allocation device, pitch).
  reasons.push(...base.reasons.filter((r) => r.code !== 'FORMAT_MODIFIER' && r.code !== 'FORMAT' && r.code !== 'PLANES'));
  const { width, height } = request;
  for (const m of set.members) {
    const bad: string[] = [];
    if (m.minWidth !== undefined && width < m.minWidth) bad.push(`a width of at least ${m.minWidth}`);
    if (m.maxWidth !== undefined && width > m.maxWidth) bad.push(`a width of at most ${m.maxWidth}`);
    if (m.minHeight !== undefined && height < m.minHeight) bad.push(`a height of at least ${m.minHeight}`);
    if (m.maxHeight !== undefined && height > m.maxHeight) bad.push(`a height of at most ${m.maxHeight}`);
    if (bad.length > 0) reasons.push(reason('SIZE', m, `${subject(m)} needs ${bad.join(' and ')}; the request is ${width}x${height}`));
  }
  const options: FormatOption[] = [];
  const unknown = request.formats.filter((f) => formatInfo(f) === undefined);
  for (const f of unknown) {
    reasons.push({ code: 'FORMAT', device: 'request', usage: 'request', format: f, detail: `format ${formatName(f)} is not known to primebuf` });
  }
  const known = request.formats.filter((f) => formatInfo(f) !== undefined);
  const noPair: number[] = [];
  for (const f of known) {
    const mods = set.accepted(f);
    if (mods !== 'any' && mods.length === 0) {
      noPair.push(f);
      continue;
    }
    const planes = formatInfo(f)!.planes;
    if (set.maxPlanes !== undefined && planes > set.maxPlanes) {
      const m = set.members.find((x) => x.maxPlanes !== undefined && planes > x.maxPlanes)!;
      reasons.push(reason('PLANES', m, `${subject(m)} takes at most ${m.maxPlanes} plane(s); ${formatName(f)} has ${planes}`, { format: f }));
      continue;
    }
    let linear: Layout | undefined;
    if (allows(mods, DRM_FORMAT_MOD_LINEAR)) {
      linear = linearLayout(set, width, height, f);
      const widest = linear.planes.reduce((a, p) => (p.pitch > a ? p.pitch : a), 0n);
      if (set.maxPitch !== undefined && widest > BigInt(set.maxPitch)) {
        const m = set.members.find((x) => x.maxPitch !== undefined && widest > BigInt(x.maxPitch))!;
        const detail = `${subject(m)} takes a pitch of at most ${m.maxPitch} bytes; ${formatName(f)} at width ${width} needs ${widest}`;
        reasons.push(reason('PITCH', m, detail, { format: f, modifier: DRM_FORMAT_MOD_LINEAR }));
        // The pitch excludes LINEAR; explicitly accepted tiled modifiers may still be laid out
        // by an allocator (with its own pitch), 'any' cannot be relied on.
        if (mods === 'any' || mods.length === 1) continue;
        options.push({ format: f, modifiers: mods.filter((x) => x !== DRM_FORMAT_MOD_LINEAR) });
        continue;
      }
    }
    options.push(linear === undefined ? { format: f, modifiers: mods } : { format: f, modifiers: mods, linear });
  }
  if (noPair.length > 0) {
    const restricting = set.members.filter((m) => m.formats !== undefined || m.modifiers !== undefined);
    const why = explainPairs(restricting, noPair);
    if (options.length === 0) reasons.push(...why);
    else {
      // Candidates that merely lost to the others: informative, the request still succeeds.
      for (const f of noPair) {
        reasons.push(...explainPairs(restricting, [f]).map((r) => ({ ...r, format: f })));
      }
    }
  }
  // Reasons tied to one candidate format are informative while another candidate fits.
  const hard = reasons.filter((r) => r.format === undefined);
  const ok = options.length > 0 && hard.length === 0;
  const details = [...new Set(reasons.map((r) => r.detail))];
  return Object.freeze({ ok, set, request, options: Object.freeze(options), reasons: Object.freeze(reasons), message: details.join('; ') });
}

/**
 * The reasons `buffer` does not meet `c` (empty: it does). This is the check an attach makes
 * once the buffer exists.
 */
export function satisfies(c: DeviceConstraint, buffer: BufferDescription): Reason[] {
  const out: Reason[] = [];
  const who = subject(c);
  const mods = acceptedBy(c.formats, c.modifiers, buffer.format);
  if (!allows(mods, buffer.modifier)) {
    out.push(
      reason('FORMAT_MODIFIER', c, `the buffer is ${formatName(buffer.format)} as ${modifierLabel(buffer.modifier)}; ${describeAccepts(c, [buffer.format])}`, {
        format: buffer.format,
        modifier: buffer.modifier,
      }),
    );
  }
  if (c.maxPlanes !== undefined && buffer.planes.length > c.maxPlanes) {
    out.push(reason('PLANES', c, `${who} takes at most ${c.maxPlanes} plane(s); the buffer has ${buffer.planes.length}`));
  }
  buffer.planes.forEach((p, i) => {
    if (c.pitchAlign !== undefined && p.pitch % BigInt(c.pitchAlign) !== 0n) {
      out.push(reason('PITCH', c, `${who} needs pitches aligned to ${c.pitchAlign} bytes; plane ${i} of the buffer has pitch ${p.pitch}`));
    }
    if (c.maxPitch !== undefined && p.pitch > BigInt(c.maxPitch)) {
      out.push(reason('PITCH', c, `${who} takes a pitch of at most ${c.maxPitch} bytes; plane ${i} of the buffer has pitch ${p.pitch}`));
    }
    if (c.offsetAlign !== undefined && p.offset % BigInt(c.offsetAlign) !== 0n) {
      out.push(reason('PITCH', c, `${who} needs offsets aligned to ${c.offsetAlign} bytes; plane ${i} of the buffer is at offset ${p.offset}`));
    }
  });
  if (c.sizeAlign !== undefined && buffer.size % BigInt(c.sizeAlign) !== 0n) {
    out.push(reason('SIZE', c, `${who} needs a size that is a multiple of ${c.sizeAlign}; the buffer has ${buffer.size} bytes`));
  }
  const size: string[] = [];
  if (c.minWidth !== undefined && buffer.width < c.minWidth) size.push(`a width of at least ${c.minWidth}`);
  if (c.maxWidth !== undefined && buffer.width > c.maxWidth) size.push(`a width of at most ${c.maxWidth}`);
  if (c.minHeight !== undefined && buffer.height < c.minHeight) size.push(`a height of at least ${c.minHeight}`);
  if (c.maxHeight !== undefined && buffer.height > c.maxHeight) size.push(`a height of at most ${c.maxHeight}`);
  if (c.widthAlign !== undefined && buffer.allocWidth % c.widthAlign !== 0) size.push(`an allocated width that is a multiple of ${c.widthAlign}`);
  if (c.heightAlign !== undefined && buffer.allocHeight % c.heightAlign !== 0) size.push(`an allocated height that is a multiple of ${c.heightAlign}`);
  if (size.length > 0) {
    out.push(reason('SIZE', c, `${who} needs ${size.join(' and ')}; the buffer is ${buffer.width}x${buffer.height} (allocated ${buffer.allocWidth}x${buffer.allocHeight})`));
  }
  if (c.contiguous && !buffer.contiguous) {
    out.push(reason('CONTIGUOUS', c, `${who} needs physically contiguous memory; the buffer came from ${buffer.allocator}, which is not contiguous`));
  }
  if (c.allocateOn !== undefined && buffer.allocatedOn !== c.allocateOn) {
    out.push(reason('EXPORTER', c, `${who} can only use buffers allocated on ${c.allocateOn}; the buffer came from ${buffer.allocator}`));
  }
  return out;
}
