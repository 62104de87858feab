/**
 * wp_presentation (version 1): CLOCK_MONOTONIC, and per commit a feedback that is `presented`
 * with the presenter's flags (VSYNC, HW_CLOCK, HW_COMPLETION, and ZERO_COPY when the client's
 * own buffer was on the plane) after the flip that showed it, preceded by sync_output for each
 * wl_output the client bound; or `discarded` when a later commit replaced it first or its
 * surface went away.
 */
import type { ServerResource, WaylandServer } from 'primebuf';
import type { FeedbackSink, PresentedInfo, Surface } from './compositor.js';
import type { OutputGlobal } from './output.js';

const CLOCK_MONOTONIC = 1;

class Feedback implements FeedbackSink {
  constructor(
    readonly resource: ServerResource<'wp_presentation_feedback'>,
    readonly outputs: OutputGlobal,
  ) {}

  presented(p: PresentedInfo): void {
    const r = this.resource;
    if (r.destroyed) return;
    for (const o of this.outputs.of(r.client)) r.send('sync_output', { output: o });
    const sec = BigInt(p.tvSec);
    const seq = BigInt(p.sequence);
    r.send('presented', {
      tv_sec_hi: Number(sec >> 32n),
      tv_sec_lo: Number(sec & 0xffffffffn),
      tv_nsec: p.tvNsec,
      refresh: p.refreshNs,
      seq_hi: Number(seq >> 32n),
      seq_lo: Number(seq & 0xffffffffn),
      flags: p.flags,
    });
    r.destroy();
  }

  discarded(): void {
    if (this.resource.destroyed) return;
    this.resource.send('discarded', {});
    this.resource.destroy();
  }
}

export function installPresentation(server: WaylandServer, surfaceOf: (r: ServerResource<'wl_surface'>) => Surface | undefined, outputs: OutputGlobal): void {
  server.createGlobal('wp_presentation', 1, (res) => {
    res.implement({
      feedback: ({ surface, callback }) => {
        const fb = new Feedback(callback, outputs);
        const s = surfaceOf(surface);
        if (s) s.addFeedback(fb);
        else fb.discarded();
      },
    });
    res.send('clock_id', { clk_id: CLOCK_MONOTONIC });
  });
}
