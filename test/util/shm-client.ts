/**
 * A compositor with libwayland's wl_shm and a client of it, in one process (tests and bench):
 * the client puts pixels into a memfd pool, makes a wl_buffer there and attaches it; the
 * compositor's wl_compositor hands every attached wl_buffer over.
 */
import { writeSync } from 'node:fs';
import type { OwnedFd } from '../../src/fd.js';
import { fourcc } from '../../src/formats/index.js';
import { WaylandConnection, WaylandServer, type ServerResource, type WaylandProxy } from '../../src/wayland/index.js';
import { plainMemfd } from './memfd.js';

const XR24 = fourcc('XRGB8888');
const AR24 = fourcc('ARGB8888');

/** wl_shm's own codes for its two core formats; every other wl_shm format is the fourcc */
const wlShmCode = (f: number): number => (f === AR24 ? 0 : f === XR24 ? 1 : f);

/** A compositor with libwayland's wl_shm (plus the extra formats) and a wl_compositor whose
 * surfaces hand every attached wl_buffer over (`attached`). */
export function compositor(extraFormats: number[] = []): { server: WaylandServer; attached: ServerResource[] } {
  const server = new WaylandServer();
  server.initShm(extraFormats);
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
    format: wlShmCode(g.format),
  });
  pool.request('destroy', {}); // the buffer keeps the pool alive, as clients usually do it
  const before = attached.length;
  comp.request('create_surface', {}).request('attach', { buffer, x: 0, y: 0 });
  await conn.roundtrip();
  if (attached.length !== before + 1) throw new Error('the server did not see the attach');
  return { conn, memfd, buffer, res: attached[attached.length - 1]! };
}
