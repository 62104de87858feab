/** The host benchmarks' clock work (bench/copy.ts, bench/compose.ts, bench/shm-copy.ts). */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

export interface Timing {
  /** wall-clock seconds per operation */
  wall: number;
  /** CPU seconds per operation, every thread of the process (the pool's included) */
  cpu: number;
}

/** Seconds per operation over `ops` sequential operations. */
export async function timeOps(ops: number, op: (i: number) => Promise<unknown> | void): Promise<Timing> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) await op(i);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9 / ops;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 / ops };
}
