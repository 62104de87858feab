// The kiosk's VblankPacer (compositor-example/pacer.ts): frame callbacks and presentation
// feedback of commits that put nothing new on screen wait for the next vblank, a flip's or one
// predicted from the last flip and the refresh period (issue 18, fault 5; the kiosk itself is
// checked on vkms in test/vkms/kiosk-frames.test.ts).
import t from 'tap';
import { PRESENTATION_HW_CLOCK, PRESENTATION_HW_COMPLETION, PRESENTATION_VSYNC, PRESENTATION_ZERO_COPY, type Presentation, type ServerResource } from '../../src/index.js';
import { VblankPacer } from '../../compositor-example/pacer.js';
import type { FeedbackSink, PresentedInfo } from '../../compositor-example/compositor.js';

/** A wl_callback stand-in that records its done. */
function callback(log: number[]): ServerResource<'wl_callback'> {
  let destroyed = false;
  const cb = {
    get destroyed() {
      return destroyed;
    },
    send: (_e: string, a: { callback_data: number }) => void log.push(a.callback_data),
    destroy: () => void (destroyed = true),
  };
  return cb as unknown as ServerResource<'wl_callback'>;
}

function feedback(): FeedbackSink & { got: PresentedInfo | 'discarded' | undefined } {
  const f = {
    got: undefined as PresentedInfo | 'discarded' | undefined,
    presented(info: PresentedInfo) {
      f.got = info;
    },
    discarded() {
      f.got = 'discarded';
    },
  };
  return f;
}

const PERIOD = 20_000_000; // 20 ms

function flip(ns: bigint, sequence: number, flags = PRESENTATION_VSYNC | PRESENTATION_HW_CLOCK | PRESENTATION_HW_COMPLETION): Presentation {
  return { timestampNs: ns, tvSec: Number(ns / 1_000_000_000n), tvUsec: Number((ns % 1_000_000_000n) / 1000n), sequence, refreshNs: PERIOD, flags };
}

t.test('a client committing only frame callbacks gets one done per refresh period, on the vblank grid', async (t) => {
  const pacer = new VblankPacer<string>({ refreshNs: PERIOD, shown: () => true });
  t.teardown(() => pacer.close());
  const start = process.hrtime.bigint();
  pacer.flipped(flip(start, 100, PRESENTATION_VSYNC | PRESENTATION_HW_CLOCK | PRESENTATION_HW_COMPLETION | PRESENTATION_ZERO_COPY));
  const dones: number[] = [];
  const infos: PresentedInfo[] = [];
  const end = Date.now() + 300;
  while (Date.now() < end) {
    const log: number[] = [];
    const fb = feedback();
    const answered = new Promise<void>((resolve) => {
      const cb = callback(log);
      const send = cb.send.bind(cb);
      (cb as unknown as { send: typeof send }).send = (e, a) => {
        send(e, a);
        resolve();
      };
      pacer.defer({ surface: 's', frames: [cb], feedbacks: [fb] });
    });
    await answered;
    dones.push(log[0]!);
    if (fb.got === 'discarded' || fb.got === undefined) return t.fail('the feedback is presented');
    infos.push(fb.got);
  }
  t.ok(dones.length <= 300 / 20 + 2, `no more than one done per period (${dones.length} in 300 ms at 20 ms)`);
  t.ok(dones.length >= 5, `dones keep coming (${dones.length})`);
  const seqs = infos.map((i) => i.sequence);
  t.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), `each at a later vblank (${seqs.join(', ')})`);
  for (const i of infos) {
    const ns = BigInt(i.tvSec) * 1_000_000_000n + BigInt(i.tvNsec);
    const periods = (ns - start) / BigInt(PERIOD);
    if ((ns - start) % BigInt(PERIOD) !== 0n || Number(periods) !== i.sequence - 100) return t.fail(`on the grid of the last flip: ${ns - start} ns, sequence ${i.sequence}`);
    if (i.flags !== (PRESENTATION_VSYNC | PRESENTATION_ZERO_COPY)) return t.fail(`predicted vblanks say VSYNC (and the flip's ZERO_COPY), not a hardware clock: 0x${i.flags.toString(16)}`);
  }
  t.pass('every predicted vblank is on the grid of the last flip, its sequence counted from it, flags VSYNC|ZERO_COPY');
});

t.test('a flip before the predicted vblank answers with the flip', async (t) => {
  const pacer = new VblankPacer<string>({ refreshNs: 1_000_000_000, shown: () => true }); // a 1 s period: the timer never fires in this test
  t.teardown(() => pacer.close());
  const log: number[] = [];
  const fb = feedback();
  pacer.defer({ surface: 's', frames: [callback(log)], feedbacks: [fb] });
  t.equal(pacer.waiting, 1);
  const at = process.hrtime.bigint();
  pacer.flipped(flip(at, 7));
  t.same(log, [Number(at / 1_000_000n) >>> 0], 'done with the flip time');
  t.match(fb.got, { sequence: 7, flags: PRESENTATION_VSYNC | PRESENTATION_HW_CLOCK | PRESENTATION_HW_COMPLETION });
  t.equal(pacer.waiting, 0);
});

t.test('superseded or no longer shown: the feedback is discarded, the frame callbacks still done', async (t) => {
  const shown = true;
  const pacer = new VblankPacer<string>({ refreshNs: 1_000_000_000, shown: (s) => shown && s === 'a' });
  t.teardown(() => pacer.close());
  const log: number[] = [];
  const a = feedback();
  const b = feedback();
  pacer.defer({ surface: 'a', frames: [callback(log)], feedbacks: [a] });
  pacer.defer({ surface: 'b', frames: [callback(log)], feedbacks: [b] });
  pacer.supersede('a');
  t.equal(a.got, 'discarded', 'a newer commit of a replaced the waiting one');
  pacer.flipped(flip(process.hrtime.bigint(), 1));
  t.equal(b.got, 'discarded', 'b is not what the screen shows');
  t.equal(log.length, 2, 'both frame callbacks done');
});

t.test('close drops what waits; a bad period is refused', async (t) => {
  const pacer = new VblankPacer<string>({ refreshNs: 5_000_000, shown: () => true });
  const log: number[] = [];
  pacer.defer({ surface: 's', frames: [callback(log)], feedbacks: [] });
  pacer.close();
  await new Promise((r) => setTimeout(r, 30));
  t.same(log, [], 'no done after close');
  t.throws(() => new VblankPacer({ refreshNs: 0, shown: () => true }), RangeError);
});
