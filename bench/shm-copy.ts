/**
 * wl_shm copy cost on the host (`node dist/bench/shm-copy.js` after a build): a client's
 * 1920x1080 XRGB8888 wl_shm buffer (server and client in this process) copied into a destination
 *  - by the buffer's copySource (primebuf's wl_shm: from the pool, on libuv's pool, under the
 *    SIGBUS guard: the pool is an unsealed memfd),
 *  - by copyRects from this process's own mapping of the same memfd (the same kind of memory,
 *    unguarded: the guard's cost is the difference), and from a Buffer holding the same bytes,
 * full frame and a centred 10 % damage rectangle, interleaved round by round. Prints JSON lines:
 * median wall seconds per copy.
 * PRIMEBUF_BENCH_QUICK=1 runs fewer rounds.
 */
import { Mapping } from '../src/dmabuf/mapping.js';
import { fourcc } from '../src/formats/index.js';
import { copyRects, type CopySurface } from '../src/scanout/copy.js';
import type { Rect } from '../src/scanout/damage.js';
import { compositor, shmClient } from '../test/util/shm-client.js';
import { median } from './timing.js';

const XR24 = fourcc('XRGB8888');
const W = 1920, H = 1080, STRIDE = W * 4;
const ROUNDS = process.env.PRIMEBUF_BENCH_QUICK === '1' ? 5 : 21;
const OPS = 20;

async function secondsPerOp(op: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) await op();
  return Number(process.hrtime.bigint() - t0) / 1e9 / OPS;
}

const pixels = Buffer.alloc(STRIDE * H, 0x37);
const { server, attached } = compositor();
const { conn, memfd, copy } = await shmClient(server, attached, { width: W, height: H, stride: STRIDE, format: XR24, offset: 0, pixels });

const plainSrc: CopySurface = { memory: pixels, format: XR24, stride: STRIDE, width: W, height: H };
const memfdMap = Mapping.map(memfd.fd, 0, pixels.length, false, 'bench memfd');
const mappedSrc: CopySurface = { ...plainSrc, memory: memfdMap };
const dst: CopySurface = { memory: Buffer.alloc(STRIDE * H), format: XR24, stride: STRIDE, width: W, height: H };
const damages: Array<[string, Rect[]]> = [
  ['full', [{ x: 0, y: 0, width: W, height: H }]],
  ['10%', [{ x: Math.round(W * 0.342), y: Math.round(H * 0.342), width: Math.round(W * 0.316), height: Math.round(H * 0.316) }]],
];
for (const [damage, rects] of damages) {
  const shmTimes: number[] = [], mappedTimes: number[] = [], plainTimes: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    shmTimes.push(await secondsPerOp(() => copy(dst, rects)));
    mappedTimes.push(await secondsPerOp(() => copyRects(mappedSrc, dst, rects)));
    plainTimes.push(await secondsPerOp(() => copyRects(plainSrc, dst, rects)));
  }
  const line = {
    bench: 'shm-copy',
    size: `${W}x${H}`,
    damage,
    shm_copySource_s: median(shmTimes),
    copyRects_same_memfd_unguarded_s: median(mappedTimes),
    copyRects_from_Buffer_s: median(plainTimes),
    rounds: ROUNDS,
  };
  console.log(JSON.stringify(line));
}
conn.close();
server.close();
memfdMap.close();
memfd.close();
