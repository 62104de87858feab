/**
 * Software composition on the host (`npm run bench:compose`): composeLayers (src/scanout/compose.ts
 * -> native/compose.cc, pixman on libuv's pool, promise round trip included) of a 1920x1080
 * XRGB8888 frame made of three layers, the way a desktop's planeless surfaces look:
 *   - an XRGB8888 fullscreen surface (the background application),
 *   - an ARGB8888 1280x720 window over it (premultiplied alpha noise: every pixel blends),
 *   - an ARGB8888 256x256 small surface (a popup, a cursor-sized overlay),
 * for the whole frame and for a centred 10 % damage rectangle, and the same with the window
 * scaled (bilinear) from 960x540. Beside each figure, in the same run and interleaved round by
 * round, its baseline: the existing copy (copyRects, XRGB8888 -> XRGB8888) of the same target
 * bytes, i.e. what showing one unblended surface costs. Prints JSON lines: ms and CPU ms per
 * frame (median of the rounds), the baseline's, `ratio` = compose / copy, and the bytes written.
 * PRIMEBUF_BENCH_QUICK=1 runs fewer rounds.
 */
import { cpus, loadavg } from 'node:os';
import { fourcc } from '../src/formats/index.js';
import { native } from '../src/native.js';
import { composeLayers } from '../src/scanout/compose.js';
import { copyRects, type CopySurface } from '../src/scanout/copy.js';
import type { Rect } from '../src/scanout/placement.js';
import type { ComposeLayer } from '../src/scanout/scene-types.js';
import { median, timeOps, type Timing } from './timing.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');
const quick = process.env.PRIMEBUF_BENCH_QUICK === '1';
const ROUNDS = quick ? 3 : 9;
const W = 1920;
const H = 1080;

function surface(w: number, h: number, format: number, fill: (i: number) => number): CopySurface {
  const px = new Uint32Array(w * h);
  for (let i = 0; i < px.length; i++) px[i] = fill(i) >>> 0;
  return { memory: px, format, stride: w * 4, width: w, height: h };
}

/** premultiplied ARGB noise */
function argb(i: number): number {
  const h = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  const a = h >>> 24;
  const c = (k: number) => ((h >>> k) & 0xff) % (a + 1);
  return (a << 24) | (c(16) << 16) | (c(8) << 8) | c(0);
}

function centred(fraction: number): Rect {
  const s = Math.sqrt(fraction);
  const rw = Math.round(W * s);
  const rh = Math.round(H * s);
  return { x: (W - rw) >> 1, y: (H - rh) >> 1, width: rw, height: rh };
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const meta = { clock: 'host wall', pixman: native.pixmanVersion, rounds: ROUNDS, cpus: cpus().length, loadavg: round(loadavg()[0]!, 2) };
  const screen = surface(W, H, XR24, (i) => Math.imul(i, 0x01000193));
  const window = surface(1280, 720, AR24, argb);
  const small = surface(256, 256, AR24, (i) => argb(i + 7));
  const halfWindow = surface(960, 540, AR24, argb);
  const target = surface(W, H, XR24, () => 0);
  const copyTarget = surface(W, H, XR24, () => 0);
  const win = { x: 320, y: 180, width: 1280, height: 720 };
  const layers: ComposeLayer[] = [
    { kind: 'image', source: screen, dst: { x: 0, y: 0, width: W, height: H } },
    { kind: 'image', source: window, dst: win },
    { kind: 'image', source: small, dst: { x: 1500, y: 120, width: 256, height: 256 } },
  ];
  const scaled: ComposeLayer[] = [layers[0]!, { kind: 'image', source: halfWindow, dst: win }, layers[2]!];
  for (const [what, ls] of [['3 layers', layers], ['3 layers, the window scaled 960x540 -> 1280x720 (bilinear)', scaled]] as const) {
    for (const damage of [1, 0.1]) {
      const clip = damage >= 1 ? { x: 0, y: 0, width: W, height: H } : centred(damage);
      const bytes = clip.width * clip.height * 4;
      const composeOp = () => composeLayers({ target, layers: ls, clip: [clip] });
      const copyOp = () => copyRects(screen, copyTarget, [clip]);
      const ops = damage >= 1 ? (quick ? 5 : 20) : quick ? 20 : 100;
      await timeOps(3, composeOp); // warm-up
      await timeOps(3, copyOp);
      const c: Timing[] = [];
      const b: Timing[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        c.push(await timeOps(ops, composeOp));
        b.push(await timeOps(ops, copyOp));
      }
      const ms = median(c.map((x) => x.wall)) * 1e3;
      const base = median(b.map((x) => x.wall)) * 1e3;
      const cpuMs = median(c.map((x) => x.cpu)) * 1e3;
      const baseCpu = median(b.map((x) => x.cpu)) * 1e3;
      console.log(JSON.stringify({
        bench: 'compose', what, size: `${W}x${H}`, target: 'XRGB8888', damage, bytes,
        ms: round(ms), cpu_ms: round(cpuMs), mpix_per_s: round((clip.width * clip.height) / ms / 1e3, 0),
        baseline: 'copyRects XRGB8888 -> XRGB8888 of the same bytes', baseline_ms: round(base), baseline_cpu_ms: round(baseCpu),
        ratio: round(ms / base, 2), cpu_ratio: round(cpuMs / baseCpu, 2), ...meta,
      }));
    }
  }
}

await main();
