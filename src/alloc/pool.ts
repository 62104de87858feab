/**
 * The allocator pool: given merged constraints and a request, which allocator makes the
 * buffer, with which format, modifier and layout, and why each other allocator was not
 * chosen. plan() is the dry run (allocates nothing); allocate() carries the plan out.
 *
 * Policy, in order:
 *   1. The caller's candidate formats in their order: the first format some allocator can make
 *      for every device wins.
 *   2. Hard filters per allocator: present on this machine; the allocation device when a member
 *      can only use its own buffers; physically contiguous when a member needs it; a modifier
 *      it can produce among those every member accepts; its size limit.
 *   3. Among the allocators left, a score (lower is better), every term reported:
 *        - dumb/GBM on the scanout device of a scanout member: device-local, always importable (-30)
 *        - dumb buffers on a device that does not scan the buffer out (dumb is for scanout) (+15)
 *        - a non-LINEAR modifier every member accepts (tiling/compression; GBM only)     (-20)
 *        - contiguous memory nobody needs (CMA is scarce)                                  (+20)
 *        - a cached mapping while a member is not coherent (every CPU access flushes)      (+10)
 *        - a write-combined mapping while the CPU reads                                    (+10)
 *        - udmabuf (size-limited, a memfd per buffer) after the system heap                (+5)
 *      ties go to the order the allocators were given in.
 */
import { DRM_FORMAT_MOD_LINEAR, formatName } from '../formats/index.js';
import { ConstraintSet, type MergeResult } from '../constraints/set.js';
import { linearLayout, satisfies, solve, type Layout, type SizeRequest, type Solution } from '../constraints/solve.js';
import { ConstraintConflictError } from '../constraints/errors.js';
import { modifierLabel, type Reason } from '../constraints/types.js';
import type { AllocationPlan, Allocator, AllocatorCaps, Backing, MissingAllocator } from './types.js';

/** One allocator's verdict in a Plan. */
export interface CandidateVerdict {
  readonly allocator: string;
  readonly kind: AllocatorCaps['kind'];
  readonly ok: boolean;
  readonly chosen: boolean;
  readonly score?: number;
  readonly format?: number;
  readonly modifier?: bigint;
  /** Why it can, cannot, or was chosen (code CHOSEN for the score terms). */
  readonly reasons: readonly Reason[];
}

/** The pool's dry run: the chosen allocation, every candidate's verdict, and why nothing fits when nothing does. */
export interface Plan {
  readonly ok: boolean;
  readonly solution: Solution;
  readonly chosen?: AllocationPlan;
  readonly candidates: readonly CandidateVerdict[];
  /** Why nothing could be chosen (empty when ok). */
  readonly reasons: readonly Reason[];
  readonly message: string;
  /** Every usable allocation in order of preference (chosen first): allocate() falls back along it. */
  readonly ranked: readonly AllocationPlan[];
}

function r(code: Reason['code'], allocator: string, detail: string, extra: Partial<Reason> = {}): Reason {
  return { code, device: allocator, usage: 'allocator', detail, ...extra };
}

const fmtMod = (f: number, m: bigint) => `${formatName(f)} as ${modifierLabel(m)}`;

interface Evaluated {
  verdict: Omit<CandidateVerdict, 'chosen'>;
  formatIndex: number;
  order: number;
  plan?: AllocationPlan;
}

/** The allocators of a machine and the policy that picks one for merged constraints (see the top of this file). */
export class AllocatorPool {
  readonly allocators: readonly Allocator[];
  readonly missing: readonly MissingAllocator[];

  constructor(allocators: readonly Allocator[], missing: readonly MissingAllocator[] = []) {
    const names = new Set<string>();
    for (const a of allocators) {
      if (names.has(a.caps.name)) throw new Error(`allocator ${a.caps.name} given twice`);
      names.add(a.caps.name);
    }
    this.allocators = allocators;
    this.missing = missing;
  }

  get(name: string): Allocator | undefined {
    return this.allocators.find((a) => a.caps.name === name);
  }

  /** The dry run: could this be allocated, and how? Allocates nothing. */
  plan(setOrMerge: ConstraintSet | MergeResult, request: SizeRequest): Plan {
    const set = setOrMerge instanceof ConstraintSet ? setOrMerge : setOrMerge.set;
    const solution = solve(set, request);
    const evaluated = this.allocators.map((a, i) => this.#evaluate(a, i, set, solution));
    const usable = evaluated.filter((e) => e.verdict.ok);
    usable.sort((a, b) => a.formatIndex - b.formatIndex || a.verdict.score! - b.verdict.score! || a.order - b.order);
    const best = solution.ok ? usable[0] : undefined;
    const candidates: CandidateVerdict[] = [
      ...evaluated.map((e) => ({ ...e.verdict, chosen: e === best })),
      ...this.missing.map((m) => ({ allocator: m.name, kind: m.kind, ok: false, chosen: false, reasons: [r('UNAVAILABLE', m.name, `${m.name}: ${m.reason}`)] })),
    ];
    let reasons: Reason[] = [];
    if (!solution.ok) reasons = solution.reasons.filter((x) => x.format === undefined || solution.options.length === 0);
    else if (!best) {
      reasons = candidates.flatMap((c) => c.reasons);
      if (reasons.length === 0) reasons = [r('UNAVAILABLE', 'pool', 'no allocator is configured')];
    }
    const details = [...new Set(reasons.map((x) => x.detail))];
    const ranked = solution.ok ? usable.map((e) => e.plan!) : [];
    const plan: Plan = { ok: best !== undefined, solution, candidates, reasons, message: details.join('; '), ranked };
    if (best?.plan) (plan as { chosen?: AllocationPlan }).chosen = best.plan;
    return Object.freeze(plan);
  }

  /**
   * Allocates per plan() and checks the result against every member: a driver-laid-out buffer
   * (dumb, GBM) may come back with a pitch a member rejects. Such a buffer is freed and the next
   * allocator in the plan's order is tried. Throws ConstraintConflictError when the plan is not
   * ok or no allocator's result fits (with every allocator's reasons); `chosen` in the returned
   * plan is the allocation actually made.
   */
  allocate(setOrMerge: ConstraintSet | MergeResult, request: SizeRequest): { plan: Plan; backing: Backing } {
    const set = setOrMerge instanceof ConstraintSet ? setOrMerge : setOrMerge.set;
    const plan = this.plan(set, request);
    if (!plan.ok || !plan.chosen) throw new ConstraintConflictError('cannot allocate the buffer', plan.reasons);
    const misfits: Reason[] = [];
    for (const attempt of plan.ranked) {
      const allocator = this.get(attempt.allocator)!;
      const backing = allocator.allocate(attempt);
      const misfit = set.members.flatMap((m) => satisfies(m, backing.description));
      if (misfit.length === 0) {
        return { plan: attempt === plan.chosen ? plan : Object.freeze({ ...plan, chosen: attempt }), backing };
      }
      backing.close();
      misfits.push(...misfit.map((x) => ({ ...x, detail: `${allocator.caps.name} made a buffer that does not fit: ${x.detail}` })));
    }
    throw new ConstraintConflictError('no allocator made a buffer that fits', misfits);
  }

  #evaluate(a: Allocator, order: number, set: ConstraintSet, solution: Solution): Evaluated {
    const caps = a.caps;
    const name = caps.name;
    const reasons: Reason[] = [];
    const base = { allocator: name, kind: caps.kind };
    const fail = (): Evaluated => ({ verdict: { ...base, ok: false, reasons }, formatIndex: Infinity, order });
    if (set.allocateOn.length === 1 && caps.device !== set.allocateOn[0]) {
      const dev = set.allocateOn[0]!;
      const who = set.members.find((m) => m.allocateOn === dev)!;
      reasons.push(r('EXPORTER', name, `${name} does not allocate on ${dev}, and ${who.device} (${who.usage}) can only use buffers allocated on ${dev}`));
      return fail();
    }
    if (set.contiguous && !caps.contiguous) {
      const who = set.members.filter((m) => m.contiguous).map((m) => m.device);
      reasons.push(r('CONTIGUOUS', name, `${name} does not give physically contiguous memory, which ${who.join(', ')} need(s)`));
      return fail();
    }
    for (let i = 0; i < solution.options.length; i++) {
      const opt = solution.options[i]!;
      const accepted = opt.modifiers === 'any' ? [DRM_FORMAT_MOD_LINEAR] : opt.modifiers;
      const makeable = accepted.filter((m) => a.canAllocate(opt.format, m));
      if (makeable.length === 0) {
        const list = opt.modifiers === 'any' ? 'any modifier' : accepted.map((m) => modifierLabel(m)).join(', ');
        reasons.push(r('ALLOCATOR', name, `${name} cannot make ${formatName(opt.format)} with ${list} (what every device accepts)`, { format: opt.format }));
        continue;
      }
      // Prefer a non-linear modifier when one is makeable (tiling, compression), else LINEAR.
      const nonLinear = makeable.filter((m) => m !== DRM_FORMAT_MOD_LINEAR);
      const modifier = nonLinear.length > 0 ? nonLinear[0]! : DRM_FORMAT_MOD_LINEAR;
      let layout: Layout;
      try {
        layout = opt.linear && modifier === DRM_FORMAT_MOD_LINEAR ? opt.linear : linearLayout(set, solution.request.width, solution.request.height, opt.format, modifier);
      } catch (err) {
        reasons.push(r('ALLOCATOR', name, `${name}: no layout for ${fmtMod(opt.format, modifier)}: ${(err as Error).message}`, { format: opt.format }));
        continue;
      }
      if (caps.maxSize !== undefined && layout.size > caps.maxSize) {
        reasons.push(r('ALLOCATOR', name, `${name} allocates at most ${caps.maxSize} bytes; ${fmtMod(opt.format, modifier)} needs ${layout.size}`, { format: opt.format }));
        continue;
      }
      const terms: string[] = [];
      let score = 0;
      const scanoutDevices = set.members.filter((m) => m.usage === 'scanout').map((m) => m.device);
      if (caps.device !== undefined && scanoutDevices.includes(caps.device)) {
        score -= 30;
        terms.push(`allocates on the scanout device ${caps.device} (-30)`);
      }
      if (caps.kind === 'dumb' && !scanoutDevices.includes(caps.device!)) {
        score += 15;
        terms.push(`dumb buffers are meant for scanout, and ${caps.device} does not scan this one out (+15)`);
      }
      if (modifier !== DRM_FORMAT_MOD_LINEAR) {
        score -= 20;
        terms.push(`${modifierLabel(modifier)}, accepted by every device (-20)`);
      }
      if (caps.contiguous && !set.contiguous) {
        score += 20;
        terms.push('contiguous memory nobody needs (+20)');
      }
      if (set.writeCombine && caps.cpuCache === 'cached') {
        score += 10;
        terms.push(`a cached mapping while ${set.nonCoherent.join(', ')} is not coherent (+10)`);
      }
      if (caps.cpuCache !== 'cached' && (set.cpuAccess === 'read' || set.cpuAccess === 'readwrite')) {
        score += 10;
        terms.push(`${caps.cpuCache} mapping while the CPU reads (+10)`);
      }
      if (caps.kind === 'udmabuf') {
        score += 5;
        terms.push('udmabuf comes after the system heap (+5)');
      }
      reasons.push(r('CHOSEN', name, `${name} can make ${fmtMod(opt.format, modifier)}, ${layout.size} bytes, score ${score}${terms.length ? `: ${terms.join(', ')}` : ''}`, { format: opt.format, modifier }));
      const plan: AllocationPlan = {
        allocator: name,
        format: opt.format,
        modifier,
        width: solution.request.width,
        height: solution.request.height,
        layout,
        rules: { pitchAlign: set.pitchAlign, offsetAlign: set.offsetAlign, sizeAlign: set.sizeAlign, widthAlign: set.widthAlign, heightAlign: set.heightAlign },
        writeCombine: set.writeCombine,
      };
      return { verdict: { ...base, ok: true, score, format: opt.format, modifier, reasons }, formatIndex: i, order, plan };
    }
    if (solution.options.length === 0) reasons.push(r('ALLOCATOR', name, `${name}: no candidate format is accepted by every device`));
    return fail();
  }
}

/** A plan as JSON (for the CLI and logs). */
export function planToJSON(plan: Plan, reasonToJSON: (r: Reason) => unknown): Record<string, unknown> {
  const c = plan.chosen;
  return {
    ok: plan.ok,
    chosen: c
      ? {
          allocator: c.allocator,
          format: formatName(c.format),
          modifier: modifierLabel(c.modifier),
          width: c.width,
          height: c.height,
          allocWidth: c.layout.allocWidth,
          allocHeight: c.layout.allocHeight,
          planes: c.layout.planes.map((p) => ({ offset: Number(p.offset), pitch: Number(p.pitch) })),
          size: Number(c.layout.size),
          writeCombine: c.writeCombine,
        }
      : null,
    candidates: plan.candidates.map((x) => ({
      allocator: x.allocator,
      kind: x.kind,
      ok: x.ok,
      chosen: x.chosen,
      score: x.score ?? null,
      format: x.format === undefined ? null : formatName(x.format),
      modifier: x.modifier === undefined ? null : modifierLabel(x.modifier),
      reasons: x.reasons.map(reasonToJSON),
    })),
    reasons: plan.reasons.map(reasonToJSON),
  };
}
