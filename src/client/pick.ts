/**
 * Which (format, modifier) a client allocates for a size, from the feedback it received: the
 * scanout tranches first (a buffer a KMS plane can show directly saves the compositor a copy),
 * then the main device's tranches, then the rest, each in the server's order; inside a tranche,
 * the client's formats in its order, then its modifiers in its order. Pure: the caller says what
 * it can draw and allocate, the answer says why.
 */
import { DRM_FORMAT_MOD_LINEAR, formatInfo, formatName, minPitch } from '../formats/index.js';
import { modifierLabel } from '../constraints/types.js';
import type { DmabufFeedback, FeedbackTranche } from './feedback.js';

export interface PickRequest {
  readonly width: number;
  readonly height: number;
  /** Formats the client can draw, best first (e.g. [XRGB8888, ARGB8888]). */
  readonly formats: readonly number[];
  /** Modifiers the client can produce, best first (default: LINEAR only: CPU drawing). */
  readonly modifiers?: readonly bigint[];
  /** Whether some allocator of the client can make this pair for this target device (default: yes). */
  readonly canAllocate?: (format: number, modifier: bigint, device: bigint | null) => boolean;
}

export type PickReasonCode = 'BAD_SIZE' | 'UNKNOWN_FORMAT' | 'NOT_OFFERED' | 'NO_MODIFIER' | 'NO_ALLOCATOR' | 'CHOSEN';

export interface PickReason {
  readonly code: PickReasonCode;
  /** index of the tranche in the feedback, when the reason is about one */
  readonly tranche?: number;
  readonly format?: number;
  readonly modifier?: bigint;
  readonly detail: string;
}

/** The choice, with its tranche, or why nothing fits. */
export type Pick =
  | {
      readonly ok: true;
      readonly format: number;
      readonly modifier: bigint;
      /** index in feedback.tranches */
      readonly tranche: number;
      /** the tranche's target device (null in the version 3 fallback) */
      readonly device: bigint | null;
      /** chosen from a scanout tranche */
      readonly scanout: boolean;
      readonly reasons: readonly PickReason[];
    }
  | { readonly ok: false; readonly reasons: readonly PickReason[] };

/** Tranche indices in the order pickFormat() tries them: scanout, then the main device's, then the rest. */
export function trancheOrder(feedback: DmabufFeedback): number[] {
  const rank = (t: FeedbackTranche): number => (t.scanout ? 0 : t.device === feedback.mainDevice ? 1 : 2);
  return feedback.tranches.map((t, i) => ({ i, r: rank(t) })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.i);
}

function kind(t: FeedbackTranche, main: bigint | null): string {
  return t.scanout ? 'scanout tranche' : t.device === main ? 'main-device tranche' : 'tranche';
}

/** Picks (format, modifier) for `req` from `feedback`; see the top of this file for the order. */
export function pickFormat(feedback: DmabufFeedback, req: PickRequest): Pick {
  const reasons: PickReason[] = [];
  const { width, height } = req;
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    return { ok: false, reasons: [{ code: 'BAD_SIZE', detail: `invalid size ${width}x${height}` }] };
  }
  const modifiers = req.modifiers ?? [DRM_FORMAT_MOD_LINEAR];
  const drawable = req.formats.filter((f) => {
    if (formatInfo(f) !== undefined && minPitch(f, width, 0) > 0n) return true;
    reasons.push({ code: 'UNKNOWN_FORMAT', format: f, detail: `${formatName(f)}: no layout known for ${width}x${height}` });
    return false;
  });
  for (const ti of trancheOrder(feedback)) {
    const t = feedback.tranches[ti]!;
    const what = `${kind(t, feedback.mainDevice)} ${ti}${t.device !== null ? ` (dev_t ${t.device})` : ''}`;
    for (const f of drawable) {
      if (!t.formats.hasFormat(f)) {
        reasons.push({ code: 'NOT_OFFERED', tranche: ti, format: f, detail: `${what} does not offer ${formatName(f)}` });
        continue;
      }
      const offered = t.formats.modifiers(f);
      const usable = modifiers.filter((m) => offered.includes(m));
      if (usable.length === 0) {
        reasons.push({
          code: 'NO_MODIFIER',
          tranche: ti,
          format: f,
          detail: `${what} offers ${formatName(f)} only as ${offered.map(modifierLabel).join(', ')}; the client makes ${modifiers.map(modifierLabel).join(', ')}`,
        });
        continue;
      }
      for (const m of usable) {
        if (req.canAllocate && !req.canAllocate(f, m, t.device)) {
          reasons.push({ code: 'NO_ALLOCATOR', tranche: ti, format: f, modifier: m, detail: `${what}: no allocator of the client makes ${formatName(f)} as ${modifierLabel(m)}` });
          continue;
        }
        reasons.push({ code: 'CHOSEN', tranche: ti, format: f, modifier: m, detail: `${formatName(f)} as ${modifierLabel(m)} from the ${what}, ${width}x${height}` });
        return { ok: true, format: f, modifier: m, tranche: ti, device: t.device, scanout: t.scanout, reasons };
      }
    }
  }
  if (feedback.tranches.length === 0) reasons.push({ code: 'NOT_OFFERED', detail: 'the feedback has no tranche' });
  return { ok: false, reasons };
}
