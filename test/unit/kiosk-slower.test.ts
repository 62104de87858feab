// The kiosk's test-only slowdown (compositor-example/slower.ts, PRIMEBUF_KIOSK_SLOWER): off unless
// asked, and on it adds its fraction of the process's own CPU per frame, whatever a frame costs.
import t from 'tap';
import { FrameSlowdown } from '../../compositor-example/slower.js';

const cpuUs = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
/** A frame's own work: `us` of this process's CPU. */
const work = (us: number): void => {
  const t0 = cpuUs();
  while (cpuUs() - t0 < us);
};

t.test('off by default', async (t) => {
  t.equal(FrameSlowdown.fromEnv({}), undefined, 'unset: none');
  t.equal(FrameSlowdown.fromEnv({ PRIMEBUF_KIOSK_SLOWER: '' }), undefined, 'empty: none');
  t.equal(FrameSlowdown.fromEnv({ PRIMEBUF_KIOSK_SLOWER: '0' }), undefined, '0: none');
  t.throws(() => FrameSlowdown.fromEnv({ PRIMEBUF_KIOSK_SLOWER: 'fast' }), RangeError, 'not a number: refused');
  t.throws(() => FrameSlowdown.fromEnv({ PRIMEBUF_KIOSK_SLOWER: '-0.2' }), RangeError, 'negative: refused');
  const s = FrameSlowdown.fromEnv({ PRIMEBUF_KIOSK_SLOWER: '0.2' });
  t.equal(s?.fraction, 0.2, '0.2: on');
});

for (const frameUs of [2000, 6000]) {
  t.test(`adds 20 % to frames of ${frameUs / 1000} ms, measured without its own spin`, async (t) => {
    const s = new FrameSlowdown(0.2);
    const frames = 200;
    const c0 = cpuUs();
    for (let i = 0; i < frames; i++) {
      s.frame();
      work(frameUs);
    }
    const total = cpuUs() - c0;
    const w = s.summary();
    // the process's CPU in all: each frame's work, and 20 % more in the frames after the first window
    const expected = frames * frameUs * (1 + (0.2 * (frames - 32)) / frames);
    t.ok(total > expected * 0.97 && total < expected * 1.08, `the process spent ${(total / 1000).toFixed(1)} ms, ${(expected / 1000).toFixed(1)} ms expected`);
    t.equal(w.frames, frames - 32, 'the first window only measures');
    const share = w.spunMs / w.baseMs;
    t.ok(share > 0.17 && share < 0.23, `spun ${w.spunMs.toFixed(1)} ms = ${(share * 100).toFixed(1)} % of ${w.baseMs.toFixed(1)} ms (${(w.usPerIteration * 1000).toFixed(2)} ns an iteration)`);
    const perFrame = w.baseMs / w.frames;
    t.ok(perFrame > (frameUs / 1000) * 0.95 && perFrame < (frameUs / 1000) * 1.3, `the base per frame, ${perFrame.toFixed(3)} ms, is the frame's own work (${frameUs / 1000} ms), not the spin's`);
  });
}
