/**
 * Plane assignment across a scene (several surfaces on one output), as a pure function over plane
 * descriptions, per (surface, plane) verdicts and an atomic TEST_ONLY of the whole output state.
 * The approach follows libliftoff's: enumerate the assignments the static rules allow, ordered
 * best first (most pixels on planes, then fewest composed surfaces), and ask the kernel about
 * each with one TEST_ONLY until one passes; whatever gets no plane is composed into one buffer
 * shown on the lowest plane. A refused candidate leads to the next best, so the fallback goes
 * surface by surface; the last resort (everything composed) is always available.
 *
 * Rules kept by construction (a TEST_ONLY does not see an inverted stack):
 * - planes stack by (zpos, plane id): the zpos property's value where the plane has one, 0
 *   otherwise (vkms has none: primary, overlays by ascending id, then the cursor plane). Surfaces
 *   on planes take planes in the surfaces' order, bottom to top;
 * - the composite (an opaque buffer of the mode) goes on the lowest plane, beneath every surface
 *   on a plane; a surface on a plane that lies below a composed surface it overlaps would show
 *   above it: such an assignment is not offered (its sibling with that surface composed is);
 * - a surface that is not opaque over something else (another surface, the composite) needs the
 *   plane to blend premultiplied alpha (the `pixel blend mode` property, premultiplied by default);
 * - the cursor surface is offered the cursor plane first.
 */
import type { Rect, ModeSize } from './placement.js';
import { reason, type ScanoutReason } from './reasons.js';

export interface SceneAssignPlane {
  readonly id: number;
  readonly type: 'primary' | 'overlay' | 'cursor';
  /** The zpos the plane stacks at (its property's value); absent: 0 (the kernel orders ties by id). */
  readonly zpos?: number;
  /** false when the plane cannot blend premultiplied alpha (its `pixel blend mode` lacks it). Default true. */
  readonly premultiplied?: boolean;
}

export interface SceneAssignSurface {
  /** The surface's destination on the CRTC. */
  readonly dst: Rect;
  /** Every pixel covers what lies below (XRGB, or an opaque region over all of it). */
  readonly opaque: boolean;
  readonly cursor?: boolean;
  /** Never on a plane (not cache-coherent, a fill): reasons say why. */
  readonly composeOnly?: readonly ScanoutReason[];
}

/** An assignment: per surface (bottom to top) its plane, or undefined when composed. */
export interface SceneCandidate {
  readonly planes: ReadonlyArray<number | undefined>;
  /** The plane that shows the composite (undefined when nothing is composed). */
  readonly compositePlane: number | undefined;
}

export type SceneTestResult = { readonly ok: true } | { readonly ok: false; readonly reason: ScanoutReason };

export interface SceneAssignInput {
  readonly mode: ModeSize;
  /** The planes usable on this output's CRTC (primary, overlays, cursor). */
  readonly planes: readonly SceneAssignPlane[];
  /** Bottom to top. */
  readonly surfaces: readonly SceneAssignSurface[];
  /** The verdict of surface `index` on `plane` (ScanoutChecker.checkScanout at its placement). */
  verdict(index: number, plane: number): { readonly ok: boolean; readonly reasons: readonly ScanoutReason[] };
  /** One atomic TEST_ONLY of the whole output state the candidate makes. */
  test(candidate: SceneCandidate): SceneTestResult;
  /** TEST_ONLY calls at most before the all-composed fallback (default 12). */
  readonly maxTests?: number;
  /** Candidates enumerated at most (default 20000). */
  readonly maxCandidates?: number;
}

export interface SceneAssignment extends SceneCandidate {
  /** Per surface: why it is not on a plane (empty when it is). */
  readonly reasons: ReadonlyArray<readonly ScanoutReason[]>;
  /** TEST_ONLY calls made. */
  readonly tests: number;
  /** Pixels of the surfaces on planes. */
  readonly planePixels: number;
  readonly why: readonly string[];
}

export function rectsOverlap(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function area(r: Rect, m: ModeSize): number {
  const w = Math.min(r.x + r.width, m.width) - Math.max(r.x, 0);
  const h = Math.min(r.y + r.height, m.height) - Math.max(r.y, 0);
  return w > 0 && h > 0 ? w * h : 0;
}

/** The planes in stacking order, bottom to top: (zpos, id). */
export function stackOrder<P extends SceneAssignPlane>(planes: readonly P[]): P[] {
  return [...planes].sort((a, b) => (a.zpos ?? 0) - (b.zpos ?? 0) || a.id - b.id);
}

interface Scored extends SceneCandidate {
  readonly pixels: number;
  readonly composed: number;
}

/**
 * The assignments the static rules allow, best first. Deterministic: ties keep enumeration order
 * (lower planes first, the cursor plane first for the cursor surface).
 */
export function sceneCandidates(input: Omit<SceneAssignInput, 'test'>): SceneCandidate[] {
  const { mode, surfaces } = input;
  const planes = stackOrder(input.planes);
  const n = surfaces.length;
  const limit = input.maxCandidates ?? 20000;
  const out: Scored[] = [];
  const okCache = new Map<string, boolean>();
  const ok = (i: number, plane: number): boolean => {
    const k = `${i}|${plane}`;
    let v = okCache.get(k);
    if (v === undefined) okCache.set(k, (v = surfaces[i]!.composeOnly === undefined && input.verdict(i, plane).ok));
    return v;
  };
  const pick: Array<number | undefined> = new Array(n).fill(undefined);
  const lowest = planes.findIndex((p) => p.type !== 'cursor');
  // planes[j] positions; `from`: the lowest position the next surface on a plane may take
  const walk = (i: number, from: number): void => {
    if (out.length >= limit) return;
    if (i === n) {
      const c = finish(pick);
      if (c) out.push(c);
      return;
    }
    const s = surfaces[i]!;
    const options: number[] = [];
    for (let j = from; j < planes.length; j++) if (ok(i, planes[j]!.id)) options.push(j);
    // the cursor surface tries the cursor plane first; others try lower planes first
    if (s.cursor) options.sort((a, b) => Number(planes[b]!.type === 'cursor') - Number(planes[a]!.type === 'cursor'));
    for (const j of options) {
      pick[i] = j;
      walk(i + 1, j + 1);
    }
    pick[i] = undefined;
    // composed: no surface below it on a plane may overlap it, and none may sit on the composite's plane
    for (let k = 0; k < i; k++) {
      const p = pick[k];
      if (p !== undefined && (p === lowest || rectsOverlap(surfaces[k]!.dst, s.dst))) return;
    }
    walk(i + 1, Math.max(from, lowest + 1));
  };
  const finish = (pos: ReadonlyArray<number | undefined>): Scored | undefined => {
    const composedIdx: number[] = [];
    for (let i = 0; i < n; i++) if (pos[i] === undefined) composedIdx.push(i);
    let compositePos: number | undefined;
    if (composedIdx.length > 0) {
      // the composite on the lowest plane that is no cursor plane, beneath every surface on a plane
      compositePos = planes.findIndex((p) => p.type !== 'cursor');
      if (compositePos < 0) return undefined;
      for (let i = 0; i < n; i++) if (pos[i] !== undefined && pos[i]! <= compositePos) return undefined;
    }
    for (let i = 0; i < n; i++) {
      const p = pos[i];
      if (p === undefined) continue;
      const s = surfaces[i]!;
      // z-order: below a composed surface it overlaps, a surface on a plane would show above it
      for (const c of composedIdx) if (c > i && rectsOverlap(surfaces[c]!.dst, s.dst)) return undefined;
      // alpha over something: the plane must blend premultiplied
      if (!s.opaque && planes[p]!.premultiplied === false) {
        const over = compositePos !== undefined || surfaces.some((u, k) => k < i && rectsOverlap(u.dst, s.dst));
        if (over) return undefined;
      }
    }
    let pixels = 0;
    for (let i = 0; i < n; i++) if (pos[i] !== undefined) pixels += area(surfaces[i]!.dst, mode);
    return {
      planes: pos.map((p) => (p === undefined ? undefined : planes[p]!.id)),
      compositePlane: compositePos === undefined ? undefined : planes[compositePos]!.id,
      pixels,
      composed: composedIdx.length,
    };
  };
  walk(0, 0);
  // one mapping per set of composed surfaces (the lowest planes, found first), and one with the
  // cursor plane if any: a refused TEST_ONLY then moves to another set, not to the same set on
  // other overlays
  const seen = new Set<string>();
  const kept = out.filter((c) => {
    const k = `${c.planes.map((p) => (p === undefined ? 'c' : 'p')).join('')}|${c.planes.some((p) => p !== undefined && planes.find((x) => x.id === p)!.type === 'cursor')}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  out.length = 0;
  out.push(...kept);
  // stable sort: most pixels on planes, then fewest composed surfaces
  const indexed = out.map((c, k) => ({ c, k }));
  indexed.sort((a, b) => b.c.pixels - a.c.pixels || a.c.composed - b.c.composed || a.k - b.k);
  return indexed.map(({ c }) => ({ planes: c.planes, compositePlane: c.compositePlane }));
}

/** Everything composed on the lowest plane: the fallback that needs no plane verdict. */
export function allComposed(input: Pick<SceneAssignInput, 'planes' | 'surfaces'>): SceneCandidate {
  const lowest = stackOrder(input.planes).find((p) => p.type !== 'cursor');
  return { planes: input.surfaces.map(() => undefined), compositePlane: input.surfaces.length > 0 ? lowest?.id : undefined };
}

/**
 * Searches the assignments best first with one TEST_ONLY each (at most `maxTests`), then takes
 * everything composed. Each surface's reasons say why it got no plane in the chosen assignment.
 */
export function assignScene(input: SceneAssignInput): SceneAssignment {
  const { surfaces } = input;
  const maxTests = input.maxTests ?? 12;
  const why: string[] = [];
  const refusals: ScanoutReason[] = [];
  let tests = 0;
  let chosen: SceneCandidate | undefined;
  for (const c of sceneCandidates(input)) {
    if (tests >= maxTests) {
      why.push(`TEST_ONLY budget (${maxTests}) spent: everything composed`);
      break;
    }
    tests++;
    const r = input.test(c);
    if (r.ok) {
      chosen = c;
      break;
    }
    refusals.push(r.reason);
    why.push(`TEST_ONLY refused ${describeCandidate(c)}: ${r.reason.detail}`);
  }
  if (!chosen) {
    chosen = allComposed(input);
    // an all-composed candidate also went through the TEST_ONLY when it was enumerated; the
    // commit decides otherwise (a dumb buffer of the mode on the primary plane)
  }
  const reasons = surfaces.map((s, i) => (chosen!.planes[i] === undefined ? whyComposed(input, chosen!, i, refusals) : []));
  let planePixels = 0;
  surfaces.forEach((s, i) => {
    if (chosen!.planes[i] !== undefined) planePixels += area(s.dst, input.mode);
  });
  why.push(`chosen: ${describeCandidate(chosen)}`);
  return { ...chosen, reasons, tests, planePixels, why };
}

export function describeCandidate(c: SceneCandidate): string {
  const parts = c.planes.map((p, i) => `${i}:${p === undefined ? 'composed' : `plane ${p}`}`);
  return `[${parts.join(' ')}]${c.compositePlane !== undefined ? ` composite on ${c.compositePlane}` : ''}`;
}

/** Why surface `i` is composed in `c`: its own refusals, else the rule that kept it off a free plane. */
function whyComposed(input: Omit<SceneAssignInput, 'test'>, c: SceneCandidate, i: number, refusals: readonly ScanoutReason[]): ScanoutReason[] {
  const s = input.surfaces[i]!;
  if (s.composeOnly) return [...s.composeOnly];
  const planes = stackOrder(input.planes);
  const used = new Set(c.planes.filter((p): p is number => p !== undefined));
  if (c.compositePlane !== undefined) used.add(c.compositePlane);
  // planes this surface could take without breaking the order: above the highest plane below it, below the lowest above it
  let lo = -1;
  let hi = planes.length;
  for (let k = 0; k < input.surfaces.length; k++) {
    const p = c.planes[k];
    if (p === undefined) continue;
    const pos = planes.findIndex((x) => x.id === p);
    if (k < i) lo = Math.max(lo, pos);
    else if (k > i) hi = Math.min(hi, pos);
  }
  if (c.compositePlane !== undefined) lo = Math.max(lo, planes.findIndex((x) => x.id === c.compositePlane));
  const out: ScanoutReason[] = [];
  const verdictReasons: ScanoutReason[] = [];
  let anyOk = false;
  for (const p of planes) {
    const v = input.verdict(i, p.id);
    if (v.ok) anyOk = true;
    else verdictReasons.push(...v.reasons);
  }
  if (!anyOk) return verdictReasons.length > 0 ? verdictReasons : [reason('NO_PLANE', 'no plane of the output takes it')];
  const above = input.surfaces.findIndex((u, k) => k > i && c.planes[k] === undefined && rectsOverlap(u.dst, s.dst));
  let freeOk = false;
  let alphaBlocked = false;
  for (let j = lo + 1; j < hi; j++) {
    const p = planes[j]!;
    if (used.has(p.id) || !input.verdict(i, p.id).ok) continue;
    if (!s.opaque && p.premultiplied === false) alphaBlocked = true;
    else freeOk = true;
  }
  if (above >= 0) {
    out.push(reason('Z_ORDER', `below composed surface ${above} which it overlaps: composed too, to keep the stacking order`));
  } else if (alphaBlocked && !freeOk) {
    out.push(reason('ALPHA', 'not opaque over another surface, and the planes that take it do not blend premultiplied alpha'));
  } else if (!freeOk) {
    out.push(reason('NO_PLANE_LEFT', `every plane that takes it and keeps the stacking order is used by the surfaces around it (planes ${planes.map((p) => p.id).join(', ')})`));
  } else if (refusals.length > 0) {
    out.push(reason('TEST_ONLY', `the atomic TEST_ONLY of the scene with it on a plane was refused: ${refusals[refusals.length - 1]!.detail}`, { errno: refusals[refusals.length - 1]!.errno }));
  } else {
    out.push(reason('NO_PLANE_LEFT', 'the search found no assignment with it on a plane'));
  }
  // what the verdicts said of the planes that refused it, for the log
  for (const r of verdictReasons) if (!out.some((o) => o.code === r.code && o.detail === r.detail)) out.push(r);
  return out;
}

/**
 * Whether `c` keeps the rules the search keeps by construction: surfaces on planes in stacking
 * order, no plane twice, the composite on the lowest plane beneath every surface on a plane, no
 * surface on a plane below a composed one it overlaps, alpha only on planes that blend it. (For a
 * warm start: the last frame's assignment offered again at moved positions.)
 */
export function candidateAllowed(input: Pick<SceneAssignInput, 'planes' | 'surfaces'>, c: SceneCandidate): boolean {
  const planes = stackOrder(input.planes);
  const { surfaces } = input;
  const pos = c.planes.map((p) => (p === undefined ? undefined : planes.findIndex((x) => x.id === p)));
  if (pos.some((p) => p === -1)) return false;
  let last = -1;
  for (const p of pos) {
    if (p === undefined) continue;
    if (p <= last) return false;
    last = p;
  }
  const composed = pos.map((p, i) => (p === undefined ? i : -1)).filter((i) => i >= 0);
  let compositePos: number | undefined;
  if (composed.length > 0) {
    compositePos = planes.findIndex((p) => p.type !== 'cursor');
    if (compositePos < 0 || c.compositePlane !== planes[compositePos]!.id) return false;
    if (pos.some((p) => p !== undefined && p <= compositePos!)) return false;
  } else if (c.compositePlane !== undefined) return false;
  for (let i = 0; i < surfaces.length; i++) {
    const p = pos[i];
    if (p === undefined) continue;
    const s = surfaces[i]!;
    if (s.composeOnly) return false;
    for (const k of composed) if (k > i && rectsOverlap(surfaces[k]!.dst, s.dst)) return false;
    if (!s.opaque && planes[p]!.premultiplied === false && (compositePos !== undefined || surfaces.some((u, k) => k < i && rectsOverlap(u.dst, s.dst)))) return false;
  }
  return true;
}
