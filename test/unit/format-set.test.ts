// FormatSet: immutable, canonical, and a lawful set algebra (property tests with fast-check).
import fc from 'fast-check';
import t from 'tap';
import {
  DRM_FORMAT_MOD_INVALID,
  DRM_FORMAT_MOD_LINEAR,
  FormatSet,
  fourcc,
  type FormatModifier,
} from '../../src/formats/index.js';
import { InvalidArgumentError } from '../../src/errors.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const NV12 = fourcc('NV12');
const Y_TILED = 0x0100000000000002n;
const X_TILED = 0x0100000000000001n;

// Small pools so that random sets overlap often.
const formatPool = [XR24, AR24, NV12, fourcc('P010'), fourcc('YUV420'), 0xffffffff, 0];
const modifierPool = [DRM_FORMAT_MOD_LINEAR, X_TILED, Y_TILED, 0x0100000000000004n, DRM_FORMAT_MOD_INVALID, (1n << 64n) - 1n, 0x020000000000a901n];
const pairArb = fc.tuple(fc.constantFrom(...formatPool), fc.constantFrom(...modifierPool));
const setArb = fc.array(pairArb, { maxLength: 20 }).map((pairs) => FormatSet.from(pairs));
const runs = { numRuns: 300 };

const eq = (a: FormatSet, b: FormatSet) => a.equals(b);

t.test('construction: duplicates collapse, order does not matter, bad pairs throw', async (t) => {
  const a = FormatSet.from([[XR24, Y_TILED], [NV12, 0n], [XR24, 0n], [XR24, Y_TILED]]);
  const b = FormatSet.from([{ format: NV12, modifier: 0n }, { format: XR24, modifier: 0n }, { format: XR24, modifier: Y_TILED }]);
  t.equal(a.size, 3);
  t.ok(a.equals(b));
  t.same(a.formats(), [XR24, NV12].sort((x, y) => x - y));
  t.same(a.modifiers(XR24), [0n, Y_TILED]);
  t.same(a.modifiers(AR24), []);
  t.ok(a.has(XR24, Y_TILED));
  t.notOk(a.has(XR24, X_TILED));
  t.notOk(a.has(AR24, 0n));
  t.ok(a.hasFormat(NV12));
  t.notOk(a.hasFormat(AR24));
  t.ok(FormatSet.of(XR24, 0n, Y_TILED).equals(FormatSet.from([[XR24, Y_TILED], [XR24, 0n]])));
  t.throws(() => FormatSet.from([[XR24, -1n]]), InvalidArgumentError);
  t.throws(() => FormatSet.from([[XR24, 1n << 64n]]), InvalidArgumentError);
  t.throws(() => FormatSet.from([[-1, 0n]]), InvalidArgumentError);
  t.throws(() => FormatSet.from([[XR24, 0 as unknown as bigint]]), InvalidArgumentError, 'a number is not a modifier');
});

t.test('immutability: frozen, accessors return frozen arrays, operations return new sets', async (t) => {
  const a = FormatSet.of(XR24, 0n);
  t.ok(Object.isFrozen(a));
  t.ok(Object.isFrozen(a.formats()));
  t.ok(Object.isFrozen(a.modifiers(XR24)));
  t.throws(() => (a.modifiers(XR24) as bigint[]).push(5n));
  const b = a.union(FormatSet.of(NV12, 0n));
  t.equal(a.size, 1, 'union did not change its operand');
  t.equal(b.size, 2);
  t.throws(() => {
    (a as unknown as { size: number }).size = 7;
  });
});

t.test('empty results are values, never exceptions', async (t) => {
  const scanout = FormatSet.of(XR24, X_TILED);
  const camera = FormatSet.of(NV12, 0n);
  const both = scanout.intersect(camera);
  t.ok(both.isEmpty);
  t.equal(both.size, 0);
  t.ok(both.equals(FormatSet.empty));
  t.same([...both], []);
  t.same(both.toJSON(), []);
  t.ok(FormatSet.from([]).isEmpty);
  t.ok(scanout.subtract(scanout).isEmpty);
  t.equal(String(FormatSet.empty), 'FormatSet {}');
});

t.test('iteration and toJSON are canonical: format ascending, then modifier ascending', async (t) => {
  const s = FormatSet.from([[NV12, Y_TILED], [XR24, DRM_FORMAT_MOD_INVALID], [NV12, 0n], [XR24, X_TILED], [AR24, 0n]]);
  const pairs = [...s];
  const formats = [XR24, AR24, NV12].sort((a, b) => a - b);
  t.same(pairs.map((p) => p.format), formats.flatMap((f) => s.modifiers(f).map(() => f)));
  t.same(s.toJSON(), formats.map((f) => ({
    format: f === XR24 ? 'XRGB8888' : f === AR24 ? 'ARGB8888' : 'NV12',
    modifiers: s.modifiers(f).map((m) => `0x${m.toString(16).padStart(16, '0')}`),
  })));
  t.same(s.modifiers(XR24), [DRM_FORMAT_MOD_INVALID, X_TILED], "INVALID (0x00ff..) sorts before Intel (0x01..)");
  t.same(JSON.parse(JSON.stringify(s))[0].modifiers[0].length, 18);
  t.ok(FormatSet.fromJSON(s.toJSON()).equals(s), 'toJSON -> fromJSON round-trips');
  t.ok(FormatSet.fromJSON([{ format: 'XR24', modifiers: ['LINEAR', 'I915_FORMAT_MOD_Y_TILED'] }]).equals(FormatSet.of(XR24, 0n, Y_TILED)));
  t.throws(() => FormatSet.fromJSON([{ format: 'NOPE', modifiers: [] }]), InvalidArgumentError);
});

t.test('property: iteration is sorted, duplicate-free and consistent with has/size', async () => {
  fc.assert(
    fc.property(fc.array(pairArb, { maxLength: 30 }), (pairs) => {
      const s = FormatSet.from(pairs);
      const seen: FormatModifier[] = [...s];
      for (let i = 1; i < seen.length; i++) {
        const [p, q] = [seen[i - 1], seen[i]];
        if (!(p.format < q.format || (p.format === q.format && p.modifier < q.modifier))) return false;
      }
      const distinct = new Set(pairs.map(([f, m]) => `${f}:${m}`));
      return seen.length === s.size && s.size === distinct.size && pairs.every(([f, m]) => s.has(f, m));
    }),
    runs,
  );
});

t.test('property: building order never matters (canonical form)', async () => {
  fc.assert(
    fc.property(fc.array(pairArb, { maxLength: 20 }), (pairs) => {
      const a = FormatSet.from(pairs);
      const b = FormatSet.from([...pairs].reverse());
      return a.equals(b) && JSON.stringify(a) === JSON.stringify(b);
    }),
    runs,
  );
});

t.test('property: commutativity of intersect and union', async () => {
  fc.assert(fc.property(setArb, setArb, (a, b) => eq(a.intersect(b), b.intersect(a)) && eq(a.union(b), b.union(a))), runs);
});

t.test('property: associativity of intersect and union', async () => {
  fc.assert(
    fc.property(setArb, setArb, setArb, (a, b, c) =>
      eq(a.intersect(b).intersect(c), a.intersect(b.intersect(c))) && eq(a.union(b).union(c), a.union(b.union(c)))),
    runs,
  );
});

t.test('property: distributivity both ways', async () => {
  fc.assert(
    fc.property(setArb, setArb, setArb, (a, b, c) =>
      eq(a.intersect(b.union(c)), a.intersect(b).union(a.intersect(c))) &&
      eq(a.union(b.intersect(c)), a.union(b).intersect(a.union(c)))),
    runs,
  );
});

t.test('property: idempotence and absorption', async () => {
  fc.assert(
    fc.property(setArb, setArb, (a, b) =>
      eq(a.intersect(a), a) && eq(a.union(a), a) && eq(a.union(a.intersect(b)), a) && eq(a.intersect(a.union(b)), a)),
    runs,
  );
});

t.test('property: identities of empty', async () => {
  fc.assert(
    fc.property(setArb, (a) =>
      eq(a.union(FormatSet.empty), a) && a.intersect(FormatSet.empty).isEmpty && eq(a.subtract(FormatSet.empty), a) &&
      FormatSet.empty.subtract(a).isEmpty && a.subtract(a).isEmpty),
    runs,
  );
});

t.test('property: subtract/intersect identities', async () => {
  fc.assert(
    fc.property(setArb, setArb, setArb, (a, b, c) =>
      // A = (A - B) ∪ (A ∩ B), and the two parts are disjoint
      eq(a.subtract(b).union(a.intersect(b)), a) &&
      a.subtract(b).intersect(a.intersect(b)).isEmpty &&
      a.subtract(b).intersect(b).isEmpty &&
      // A - B = A - (A ∩ B)
      eq(a.subtract(b), a.subtract(a.intersect(b))) &&
      // De Morgan relative to A
      eq(a.subtract(b.union(c)), a.subtract(b).intersect(a.subtract(c))) &&
      eq(a.subtract(b.intersect(c)), a.subtract(b).union(a.subtract(c))) &&
      // sizes: |A ∪ B| = |A| + |B| - |A ∩ B|
      a.union(b).size === a.size + b.size - a.intersect(b).size),
    runs,
  );
});

t.test('property: membership agrees with the pairwise definition', async () => {
  fc.assert(
    fc.property(setArb, setArb, pairArb, (a, b, [f, m]) =>
      a.intersect(b).has(f, m) === (a.has(f, m) && b.has(f, m)) &&
      a.union(b).has(f, m) === (a.has(f, m) || b.has(f, m)) &&
      a.subtract(b).has(f, m) === (a.has(f, m) && !b.has(f, m)) &&
      a.intersect(b).isSubsetOf(a) && a.isSubsetOf(a.union(b))),
    runs,
  );
});

t.test('property: equals is structural and JSON round-trips', async () => {
  fc.assert(
    fc.property(setArb, setArb, (a, b) => {
      const same = JSON.stringify(a) === JSON.stringify(b);
      return a.equals(b) === same && FormatSet.fromJSON(a.toJSON()).equals(a);
    }),
    runs,
  );
});

t.test('filter keeps what the predicate accepts', async (t) => {
  const s = FormatSet.from([[XR24, 0n], [XR24, Y_TILED], [NV12, 0n]]);
  t.ok(s.filter((p) => p.modifier === DRM_FORMAT_MOD_LINEAR).equals(FormatSet.from([[XR24, 0n], [NV12, 0n]])));
  t.ok(s.filter(() => false).isEmpty);
});
