// Damage rectangles and history: clipping, merging into a short list of non-overlapping
// rectangles that still covers every damaged pixel (checked pixel by pixel on random input), and
// the per-buffer age bookkeeping a copy ring needs (union of the last N frames, full frame when the
// age is unknown or too old).
import t from 'tap';
import fc from 'fast-check';
import { DamageHistory, clipRect, damageArea, fullDamage, mergeDamage, type Rect } from '../../src/scanout/damage.js';

function covered(rects: readonly Rect[], x: number, y: number): boolean {
  return rects.some((r) => x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height);
}

t.test('clipRect: inside, partly outside, wholly outside, bad input', async (t) => {
  t.same(clipRect({ x: 2, y: 3, width: 4, height: 5 }, 10, 10), { x: 2, y: 3, width: 4, height: 5 }, 'inside: unchanged');
  t.same(clipRect({ x: -2, y: 8, width: 5, height: 5 }, 10, 10), { x: 0, y: 8, width: 3, height: 2 }, 'clipped on two sides');
  t.equal(clipRect({ x: 10, y: 0, width: 5, height: 5 }, 10, 10), undefined, 'right of the surface');
  t.equal(clipRect({ x: 3, y: 3, width: 0, height: 5 }, 10, 10), undefined, 'empty');
  t.throws(() => clipRect({ x: 0, y: 0, width: -1, height: 1 }, 10, 10), RangeError, 'negative size');
  t.throws(() => clipRect({ x: 0.5, y: 0, width: 1, height: 1 }, 10, 10), TypeError, 'fractional');
});

t.test('mergeDamage: fixed cases', async (t) => {
  t.same(mergeDamage([], 10, 10), [], 'nothing');
  t.same(
    mergeDamage([{ x: 0, y: 0, width: 4, height: 4 }, { x: 2, y: 2, width: 4, height: 4 }], 100, 100),
    [{ x: 0, y: 0, width: 6, height: 6 }],
    'overlapping pair -> bounding box',
  );
  t.same(
    mergeDamage([{ x: 0, y: 0, width: 4, height: 2 }, { x: 0, y: 2, width: 4, height: 3 }], 100, 100),
    [{ x: 0, y: 0, width: 4, height: 5 }],
    'stacked with the same columns -> one rect, exactly the union',
  );
  t.same(
    mergeDamage([{ x: 50, y: 50, width: 2, height: 2 }, { x: 0, y: 0, width: 2, height: 2 }], 100, 100),
    [{ x: 0, y: 0, width: 2, height: 2 }, { x: 50, y: 50, width: 2, height: 2 }],
    'far apart stay apart, sorted top-down',
  );
  const many = Array.from({ length: 40 }, (_, i) => ({ x: (i % 8) * 10, y: Math.floor(i / 8) * 10, width: 3, height: 3 }));
  const merged = mergeDamage(many, 100, 100, 4);
  t.ok(merged.length <= 4, `40 rects squeezed to ${merged.length} <= 4`);
  t.ok(many.every((r) => covered(merged, r.x, r.y) && covered(merged, r.x + 2, r.y + 2)), 'still covers every input rect');
  t.same(mergeDamage([{ x: -5, y: -5, width: 200, height: 200 }], 100, 50), fullDamage(100, 50), 'clipped to the surface');
  t.throws(() => mergeDamage([], 10, 10, 0), RangeError, 'maxRects 0');
});

t.test('mergeDamage (property): covers the union, nothing outside the surface, disjoint, bounded count', async (t) => {
  const W = 48;
  const H = 32;
  const rect = fc.record({
    x: fc.integer({ min: -10, max: W + 5 }),
    y: fc.integer({ min: -10, max: H + 5 }),
    width: fc.integer({ min: 0, max: 30 }),
    height: fc.integer({ min: 0, max: 30 }),
  });
  fc.assert(
    fc.property(fc.array(rect, { maxLength: 40 }), fc.integer({ min: 1, max: 8 }), (input, max) => {
      const out = mergeDamage(input, W, H, max);
      if (out.length > max) return false;
      for (const r of out) if (r.x < 0 || r.y < 0 || r.x + r.width > W || r.y + r.height > H || r.width <= 0 || r.height <= 0) return false;
      let sum = 0;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const n = out.filter((r) => covered([r], x, y)).length;
          if (n > 1) return false; // disjoint
          sum += n;
          if (covered(input, x, y) && n === 0) return false; // every damaged pixel is covered
        }
      }
      return sum === damageArea(out);
    }),
    { numRuns: 300 },
  );
  t.pass('300 random damage lists');
});

t.test('DamageHistory: union of the frames a buffer missed; full when unknown or too old', async (t) => {
  const h = new DamageHistory(100, 100, { maxAge: 3 });
  const a = { x: 0, y: 0, width: 10, height: 10 };
  const b = { x: 50, y: 50, width: 10, height: 10 };
  const c = { x: 0, y: 10, width: 10, height: 5 };
  t.equal(h.frame, 0, 'no frame yet');
  t.same(h.since(undefined), fullDamage(100, 100), 'unknown content: full frame');
  t.equal(h.push([a]), 1, 'frame 1');
  t.equal(h.push([b]), 2, 'frame 2');
  t.equal(h.push([c]), 3, 'frame 3');
  t.equal(h.age(3), 0, 'a buffer holding frame 3 has age 0');
  t.equal(h.age(1), 2, 'frame 1: age 2');
  t.equal(h.age(undefined), undefined, 'unknown: no age');
  t.equal(h.age(4), undefined, 'a future frame is unknown content');
  t.same(h.since(3), [], 'holds the newest frame: nothing to copy');
  t.same(h.since(2), [c], 'one frame behind: that frame\'s damage');
  t.same(h.since(1), [c, b], 'two behind: the union of frames 2 and 3 (frame 1 it holds already)');
  t.same(h.since(0), fullDamage(100, 100), 'frame 0 (before the first push) is unknown content');
  t.equal(h.push([]), 4, 'frame 4 without damage');
  t.same(h.since(3), [], 'an undamaged frame costs nothing');
  t.same(h.since(1), [c, b], 'exactly maxAge (3) old: still the union of the kept frames');
  t.equal(h.push([a, c]), 5, 'frame 5: a and c');
  t.same(h.since(1), fullDamage(100, 100), 'older than maxAge: full frame');
  t.same(h.since(2), [{ x: 0, y: 0, width: 10, height: 15 }], 'frames 3-5: c with a joins into one rect');
  t.throws(() => new DamageHistory(0, 10), RangeError, 'zero width');
  t.throws(() => new DamageHistory(10, 10, { maxAge: 0 }), RangeError, 'maxAge 0');
});
