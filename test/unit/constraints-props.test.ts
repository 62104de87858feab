// Property tests of merge(): commutative, associative, idempotent; and whatever solve() says
// fits really satisfies every member (checked by satisfies(), an independent per-member check).
import fc from 'fast-check';
import t from 'tap';
import { DRM_FORMAT_MOD_LINEAR, FormatSet, fourcc } from '../../src/formats/index.js';
import { merge, satisfies, solve, type BufferDescription, type DeviceConstraint, type MergeResult } from '../../src/constraints/index.js';

const formats = ['XRGB8888', 'ARGB8888', 'NV12', 'RGB565', 'YUV420'].map((n) => fourcc(n));
const mods = [DRM_FORMAT_MOD_LINEAR, 0x0100000000000001n, 0x0100000000000002n, 0x0800000000000001n];
const runs = { numRuns: 300 };

const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });
const pairs = fc.array(fc.tuple(fc.constantFrom(...formats), fc.constantFrom(...mods)), { minLength: 1, maxLength: 12 });

const constraintArb: fc.Arbitrary<DeviceConstraint> = fc
  .record({
    device: fc.constantFrom('card0', 'card1', 'renderD128', 'encoder', 'camera', 'cpu'),
    usage: fc.constantFrom('scanout', 'texture', 'render', 'cpu', 'video-encode', 'camera') as fc.Arbitrary<DeviceConstraint['usage']>,
    plane: opt(fc.constantFrom(31, 35, 40)),
    formats: opt(pairs.map((p) => FormatSet.from(p))),
    modifiers: opt(fc.subarray(mods, { minLength: 1 })),
    pitchAlign: opt(fc.constantFrom(1, 2, 4, 16, 64, 96, 256)),
    offsetAlign: opt(fc.constantFrom(1, 64, 4096)),
    sizeAlign: opt(fc.constantFrom(1, 4096)),
    widthAlign: opt(fc.constantFrom(1, 2, 16)),
    heightAlign: opt(fc.constantFrom(1, 2, 16)),
    minWidth: opt(fc.integer({ min: 1, max: 64 })),
    maxWidth: opt(fc.integer({ min: 16, max: 4096 })),
    minHeight: opt(fc.integer({ min: 1, max: 64 })),
    maxHeight: opt(fc.integer({ min: 16, max: 4096 })),
    maxPitch: opt(fc.constantFrom(8192, 16384, 65536)),
    maxPlanes: opt(fc.constantFrom(1, 2, 3, 4)),
    contiguous: opt(fc.boolean()),
    coherent: opt(fc.boolean()),
    allocateOn: opt(fc.constantFrom('card0', 'card1')),
    cpuAccess: opt(fc.constantFrom('none', 'read', 'write', 'readwrite') as fc.Arbitrary<'none' | 'read' | 'write' | 'readwrite'>),
  })
  .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as DeviceConstraint);

const big = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v);
const view = (m: MergeResult) => JSON.stringify({ ok: m.ok, set: m.set.toJSON(), reasons: m.reasons, message: m.message }, big);

t.test('merge is commutative (set, verdict and reasons)', async (t) => {
  fc.assert(
    fc.property(constraintArb, constraintArb, (a, b) => view(merge(a, b)) === view(merge(b, a))),
    runs,
  );
  t.pass('300 random pairs');
});

t.test('merge is associative', async (t) => {
  fc.assert(
    fc.property(constraintArb, constraintArb, constraintArb, (a, b, c) => view(merge(merge(a, b), c)) === view(merge(a, merge(b, c)))),
    runs,
  );
  t.pass('300 random triples');
});

t.test('merge is idempotent: attaching the same constraint twice changes nothing', async (t) => {
  fc.assert(fc.property(constraintArb, constraintArb, (a, b) => view(merge(a, b, a)) === view(merge(a, b))), runs);
  t.pass('300 random pairs');
});

t.test('the merged set is never looser than a member', async (t) => {
  fc.assert(
    fc.property(constraintArb, constraintArb, (a, b) => {
      const s = merge(a, b).set;
      for (const m of [a, b]) {
        if (s.pitchAlign % (m.pitchAlign ?? 1) !== 0) return false;
        if (m.maxWidth !== undefined && s.maxWidth! > m.maxWidth) return false;
        if (m.contiguous && !s.contiguous) return false;
        for (const f of formats) {
          const sm = s.accepted(f);
          const mm = merge(m).set.accepted(f);
          if (mm !== 'any' && (sm === 'any' || sm.some((x) => !mm.includes(x)))) return false;
        }
      }
      return true;
    }),
    runs,
  );
  t.pass('300 random pairs');
});

t.test('a buffer laid out from a successful solve satisfies every attached constraint', async (t) => {
  let solved = 0;
  fc.assert(
    fc.property(
      fc.array(constraintArb, { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 16, max: 1920 }),
      fc.integer({ min: 16, max: 1080 }),
      fc.subarray(formats, { minLength: 1 }),
      (members, width, height, candidates) => {
        const m = merge(...members);
        const s = solve(m, { width, height, formats: candidates });
        if (!s.ok) return true;
        solved++;
        const set = m.set;
        for (const o of s.options) {
          if (!o.linear) continue;
          const buffer: BufferDescription = {
            ...o.linear,
            allocator: 'test',
            contiguous: set.contiguous,
            cpuCache: 'cached',
            ...(set.allocateOn.length === 1 ? { allocatedOn: set.allocateOn[0]! } : {}),
          };
          for (const c of members) {
            const r = satisfies(c, buffer);
            if (r.length > 0) throw new Error(`${c.device}: ${r.map((x) => x.detail).join('; ')}`);
          }
        }
        return true;
      },
    ),
    { numRuns: 500 },
  );
  t.ok(solved > 50, `${solved} of 500 random requests were solvable and checked`);
});
