/**
 * A compositor with primebuf's wl_shm (installShm: a pool keeps its fd, reads of an unsealed pool
 * are guarded against truncation) and a client of it, in one process (tests and bench): the client
 * puts pixels into an unsealed memfd pool, makes a wl_buffer there and attaches it; the
 * compositor's wl_compositor hands every attached wl_buffer over.
 */
import { writeSync } from 'node:fs';
import type { OwnedFd } from '../../src/fd.js';
import type { CopyOptions, CopySurface } from '../../src/scanout/copy.js';
import type { Rect } from '../../src/scanout/damage.js';
import { ShmBuffer, WaylandConnection, WaylandServer, installShm, wlShmFormat, type ServerResource, type WaylandProxy } from '../../src/wayland/index.js';
import { plainMemfd } from './memfd.js';

/** A compositor with primebuf's wl_shm (plus the extra formats) and a wl_compositor whose
 * surfaces hand every attached wl_buffer over (`attached`). */
export function compositor(extraFormats: number[] = []): { server: WaylandServer; attached: ServerResource[] } {
  const server = new WaylandServer();
  installShm(server, { formats: extraFormats });
  const attached: ServerResource[] = [];
  server.createGlobal('wl_compositor', 4, (res) =>
    res.implement({ create_surface: ({ id }) => id.implement({ attach: ({ buffer }) => buffer && attached.push(buffer) }) }),
  );
  return { server, attached };
}

export interface ShmClient {
  conn: WaylandConnection;
  memfd: OwnedFd;
  buffer: WaylandProxy<'wl_buffer'>;
  /** the server's side of `buffer` */
  res: ServerResource;
  /** the compositor's ShmBuffer of it */
  shm: ShmBuffer;
  /** Copies `rects` of the buffer into `dst` through its copySource (what the presenter's copy path calls). */
  copy(dst: CopySurface, rects: readonly Rect[], opts?: CopyOptions): Promise<number>;
}

/**
 * A client that puts `pixels` (rows of `stride` bytes) at `offset` of a memfd pool, creates a
 * wl_buffer there and attaches it to a surface; resolves when the server has seen it.
 */
export async function shmClient(
  server: WaylandServer,
  attached: ServerResource[],
  g: { width: number; height: number; stride: number; format: number; offset: number; pixels: Uint8Array },
): Promise<ShmClient> {
  const { fd } = server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  const { registry, globals } = await conn.globals();
  const shm = conn.bind(registry, globals.find((x) => x.interface === 'wl_shm')!, 'wl_shm', 1);
  const comp = conn.bind(registry, globals.find((x) => x.interface === 'wl_compositor')!, 'wl_compositor', 4);
  const size = g.offset + g.stride * g.height;
  const memfd = plainMemfd('shm-pool', size);
  writeSync(memfd.fd, g.pixels, 0, g.pixels.length, g.offset);
  const pool = shm.request('create_pool', { fd: memfd, size });
  const buffer = pool.request('create_buffer', {
    offset: g.offset,
    width: g.width,
    height: g.height,
    stride: g.stride,
    format: wlShmFormat(g.format),
  });
  pool.request('destroy', {}); // the buffer keeps the pool alive, as clients usually do it
  const before = attached.length;
  comp.request('create_surface', {}).request('attach', { buffer, x: 0, y: 0 });
  await conn.roundtrip();
  if (attached.length !== before + 1) throw new Error('the server did not see the attach');
  const res = attached[attached.length - 1]!;
  const ours = ShmBuffer.from(res);
  if (!ours) throw new Error('the attached buffer is not a wl_shm buffer of ours');
  const copy = async (dst: CopySurface, rects: readonly Rect[], opts: CopyOptions = {}): Promise<number> => ours.scanoutBuffer().copySource!.copyRects(dst, rects, opts);
  return { conn, memfd, buffer, res, shm: ours, copy };
}
