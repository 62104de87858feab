/**
 * Copy throughput on the host (`npm run bench`): the copy fallback (src/scanout/copy.ts ->
 * native/copy.cc, through libuv's pool, promise round trip included) beside a plain memcpy of
 * the same bytes (Buffer.copy) in the same run, interleaved round by round. Prints JSON lines.
 *
 * - XRGB8888 -> XRGB8888 at 1920x1080 and 3840x2160, full frame (target: at least 0.95x a memcpy
 *   run as a pool job, `pool_ratio`) and a centred 10 % damage rectangle (target: its copy work at
 *   most 0.15 of the full frame's);
 * - XBGR8888 -> XRGB8888 and XBGR8888 -> RGB565, full frame, beside memcpy of the bytes written.
 *
 * `cache: "hot"` reuses one source and one destination (memcpy then writes cached lines, which no
 * write-combined scanout buffer ever is); `cache: "cold"` rotates over enough buffer pairs
 * (PRIMEBUF_BENCH_COLD_MB, default 512 MB) that every copy meets memory; `cache: "src-hot"` is the
 * compositor's case: one source (a frame its client just drew, still in the CPU's cache) copied
 * into destinations rotated over as much memory as "cold" (scanout buffers are never cached).
 * Beside Buffer.copy on the JS thread (the baseline the targets name), each copy line gives
 * `pool_ratio` against the same memcpy run as a pool job (testNative.poolMemcpy): the same round
 * trip and the same kind of thread as the copy, so it isolates the copy loop itself.
 * Each copy line splits its time: `work_us`, the copy loop's own time inside the job (the pool
 * thread's clock from the first byte to the store fence, testNative.copyWorkNs), and
 * `round_trip_us`, the rest (copyRects' checks, the pool hand-off, the promise); `copy-overhead`
 * times an empty job's round trip alone. The 10 % lines give `work_cost_vs_full`, the
 * damage-proportional part against a full frame's (target: at most 0.15), beside `cost_vs_full`,
 * the same ratio of whole wall times.
 * PRIMEBUF_BENCH_QUICK=1 runs fewer rounds.
 */
import { cpus, loadavg } from 'node:os';
import { fourcc } from '../src/formats/index.js';
import { native, testNative } from '../src/native.js';
import { copyRects, type CopySurface } from '../src/scanout/copy.js';
import type { Rect } from '../src/scanout/damage.js';
import { median, timeOps, type Timing } from './timing.js';

const XR24 = fourcc('XRGB8888');
const XB24 = fourcc('XBGR8888');
const RG16 = fourcc('RGB565');
const quick = process.env.PRIMEBUF_BENCH_QUICK === '1';
const ROUNDS = quick ? 3 : 9;
const coldBytes = Number(process.env.PRIMEBUF_BENCH_COLD_MB ?? 512) * 1024 * 1024;

interface Pair {
  src: Buffer;
  dst: Buffer;
}

/** `count` source/destination pairs; with `oneSource` every pair shares the first source. */
function pairs(count: number, srcBytes: number, dstBytes: number, oneSource: boolean): Pair[] {
  const first = Buffer.alloc(srcBytes, 0x11);
  return Array.from({ length: count }, (_, i) => ({ src: i === 0 || oneSource ? first : Buffer.alloc(srcBytes, 0x11 + i), dst: Buffer.alloc(dstBytes, 0) }));
}

interface Case {
  size: [number, number];
  from: number;
  to: number;
  damage: number;
  cache: 'hot' | 'cold' | 'src-hot';
}

const cpp = (f: number) => (f === RG16 ? 2 : 4);

function centred(w: number, h: number, fraction: number): Rect {
  const s = Math.sqrt(fraction);
  const rw = Math.round(w * s);
  const rh = Math.round(h * s);
  return { x: (w - rw) >> 1, y: (h - rh) >> 1, width: rw, height: rh };
}

interface Measure {
  copy: number;
  memcpy: number;
  /** the same memcpy as a pool job (testNative.poolMemcpy): the copy's round trip and thread */
  poolMemcpy: number;
  copyCpu: number;
  memcpyCpu: number;
  /** seconds per copy inside the job's copy loop (testNative.copyWorkNs) */
  work: number;
  bytes: number;
}

async function run(c: Case): Promise<Measure> {
  const [w, h] = c.size;
  const srcBytes = w * h * cpp(c.from);
  const dstBytes = w * h * cpp(c.to);
  const count = c.cache === 'hot' ? 1 : Math.max(2, Math.ceil(coldBytes / (c.cache === 'src-hot' ? dstBytes : srcBytes + dstBytes)));
  const bufs = pairs(count, srcBytes, dstBytes, c.cache === 'src-hot');
  const rect = c.damage >= 1 ? { x: 0, y: 0, width: w, height: h } : centred(w, h, c.damage);
  const bytes = rect.width * rect.height * cpp(c.to);
  const surf = (data: Buffer, format: number): CopySurface => ({ memory: data, format, width: w, height: h, stride: w * cpp(format) });
  const jobs = bufs.map((p) => ({ src: surf(p.src, c.from), dst: surf(p.dst, c.to) }));
  // enough operations per round for ~50 ms of work at 10 GB/s, at least one pass over the pairs
  const ops = Math.max(count, Math.ceil(0.05 / (bytes / 10e9)));
  const copyTimes: Timing[] = [];
  const memcpyTimes: Timing[] = [];
  const poolTimes: Timing[] = [];
  const workTimes: number[] = [];
  const copyOp = (i: number) => copyRects(jobs[i % count]!.src, jobs[i % count]!.dst, [rect]);
  const memcpyOp = (i: number) => void bufs[i % count]!.src.copy(bufs[i % count]!.dst, 0, 0, bytes);
  const poolViews = bufs.map((p) => ({ src: p.src.subarray(0, bytes), dst: p.dst.subarray(0, bytes) }));
  const poolOp = (i: number) => testNative.poolMemcpy(poolViews[i % count]!.src, poolViews[i % count]!.dst);
  await timeOps(count, copyOp); // warm-up: page in every buffer
  await timeOps(count, memcpyOp);
  await timeOps(count, poolOp);
  for (let r = 0; r < ROUNDS; r++) {
    const w0 = testNative.copyWorkNs();
    copyTimes.push(await timeOps(ops, copyOp));
    workTimes.push((testNative.copyWorkNs() - w0) / 1e9 / ops);
    memcpyTimes.push(await timeOps(ops, memcpyOp));
    poolTimes.push(await timeOps(ops, poolOp));
  }
  return {
    copy: median(copyTimes.map((x) => x.wall)),
    memcpy: median(memcpyTimes.map((x) => x.wall)),
    poolMemcpy: median(poolTimes.map((x) => x.wall)),
    copyCpu: median(copyTimes.map((x) => x.cpu)),
    memcpyCpu: median(memcpyTimes.map((x) => x.cpu)),
    work: median(workTimes),
    bytes,
  };
}

/** The same comparison by CPU time (robust on a loaded machine: waiting for a core is not counted). */
function cpuFigures(m: Measure): Record<string, number> {
  const gbps = m.bytes / m.copyCpu / 1e9;
  const base = m.bytes / m.memcpyCpu / 1e9;
  return { cpu_gbps: round(gbps), cpu_baseline_gbps: round(base), cpu_ratio: round(gbps / base) };
}

const name = (f: number) => (f === XR24 ? 'XRGB8888' : f === XB24 ? 'XBGR8888' : 'RGB565');
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const sizes: Array<[number, number]> = [
    [1920, 1080],
    [3840, 2160],
  ];
  const meta = { streaming: native.copyStreaming, store_bytes: native.copyStoreBytes, rounds: ROUNDS, cpus: cpus().length, loadavg: round(loadavg()[0]!) };
  // The floor of every copy: an empty job's trip through the brackets-free path, the pool and back.
  {
    const one = { memory: Buffer.alloc(64), format: XR24, width: 4, height: 4, stride: 16 };
    const times: Timing[] = [];
    await timeOps(100, () => copyRects(one, one, []));
    for (let r = 0; r < ROUNDS; r++) times.push(await timeOps(1000, () => copyRects(one, one, [])));
    console.log(JSON.stringify({
      bench: 'copy-overhead', what: 'empty job: copyRects -> libuv pool -> promise',
      us: round(median(times.map((x) => x.wall)) * 1e6, 1), cpu_us: round(median(times.map((x) => x.cpu)) * 1e6, 1), ...meta,
    }));
  }
  for (const cache of ['hot', 'src-hot', 'cold'] as const) {
    for (const size of sizes) {
      const full = await run({ size, from: XR24, to: XR24, damage: 1, cache });
      const part = await run({ size, from: XR24, to: XR24, damage: 0.1, cache });
      for (const [damage, m] of [[1, full], [0.1, part]] as const) {
        const gbps = m.bytes / m.copy / 1e9;
        const base = m.bytes / m.memcpy / 1e9;
        const line: Record<string, unknown> = {
          bench: 'copy', size: `${size[0]}x${size[1]}`, from: 'XRGB8888', to: 'XRGB8888', damage, cache,
          gbps: round(gbps), baseline: 'memcpy', baseline_gbps: round(base), ratio: round(gbps / base), ms: round(m.copy * 1e3, 3),
          // the second baseline: the memcpy as a pool job (same round trip, same kind of thread)
          pool_memcpy_gbps: round(m.bytes / m.poolMemcpy / 1e9), pool_ratio: round(m.poolMemcpy / m.copy),
          ...cpuFigures(m),
          // the copy loop's own time in the job, and the rest of the wall time (checks, pool, promise)
          work_us: round(m.work * 1e6, 1), round_trip_us: round((m.copy - m.work) * 1e6, 1),
        };
        if (damage === 1) line.target = 'pool_ratio>=0.95';
        else {
          // the damage-proportional part: the copy loop's time against the full frame's
          line.work_cost_vs_full = round(m.work / full.work, 3);
          line.cost_vs_full = round(m.copy / full.copy, 3);
          line.cpu_cost_vs_full = round(m.copyCpu / full.copyCpu, 3);
          line.target = 'work_cost_vs_full<=0.15';
        }
        console.log(JSON.stringify({ ...line, ...meta }));
      }
      for (const to of [XR24, RG16]) {
        const m = await run({ size, from: XB24, to, damage: 1, cache });
        const gbps = m.bytes / m.copy / 1e9;
        const base = m.bytes / m.memcpy / 1e9;
        console.log(JSON.stringify({
          bench: 'convert', size: `${size[0]}x${size[1]}`, from: 'XBGR8888', to: name(to), damage: 1, cache,
          gbps: round(gbps), baseline: 'memcpy of the bytes written', baseline_gbps: round(base), ratio: round(gbps / base),
          mpix_per_s: round((size[0] * size[1]) / m.copy / 1e6, 0), ms: round(m.copy * 1e3, 3), ...cpuFigures(m), ...meta,
        }));
      }
    }
  }
}

await main();
