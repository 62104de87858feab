/**
 * primebuf's own wl_shm (src/wayland/shm.ts) and clients of it in one process (unit and vkms
 * tests, bench): the compositor side hands every created ShmBuffer and every attached wl_buffer
 * over; the client side makes pools from the kinds of file real clients use.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { F_SEAL_SEAL, F_SEAL_SHRINK } from '../../src/alloc/backends/udmabuf.js';
import { OwnedFd } from '../../src/fd.js';
import { native } from '../../src/native.js';
import { WaylandConnection, WaylandServer, installShm, wlShmFormat, type ServerResource, type ShmBuffer, type ShmGlobal, type ShmOptions, type WaylandProxy } from '../../src/wayland/index.js';

export interface OwnShmCompositor {
  server: WaylandServer;
  shm: ShmGlobal;
  /** every ShmBuffer created, in order */
  buffers: ShmBuffer[];
  /** every wl_buffer attached to a surface, in order */
  attached: ServerResource[];
}

export function ownShmCompositor(opts: ShmOptions = {}): OwnShmCompositor {
  const server = new WaylandServer();
  const buffers: ShmBuffer[] = [];
  const shm = installShm(server, { ...opts, onBuffer: (b) => buffers.push(b) });
  const attached: ServerResource[] = [];
  server.createGlobal('wl_compositor', 4, (res) =>
    res.implement({ create_surface: ({ id }) => id.implement({ attach: ({ buffer }) => buffer && attached.push(buffer) }) }),
  );
  return { server, shm, buffers, attached };
}

export interface OwnShmClient {
  conn: WaylandConnection;
  shm: WaylandProxy<'wl_shm'>;
  compositor: WaylandProxy<'wl_compositor'>;
  /** wl_shm format codes the server announced at bind */
  formats: number[];
}

export async function ownShmClient(server: WaylandServer): Promise<OwnShmClient> {
  const { fd } = server.connectPair();
  const conn = WaylandConnection.fromFd(fd);
  const { registry, globals } = await conn.globals();
  const shm = conn.bind(registry, globals.find((x) => x.interface === 'wl_shm')!, 'wl_shm', 1);
  const formats: number[] = [];
  shm.on('format', ({ format }) => formats.push(format));
  const compositor = conn.bind(registry, globals.find((x) => x.interface === 'wl_compositor')!, 'wl_compositor', 4);
  await conn.roundtrip();
  return { conn, shm, compositor, formats };
}

/** The kinds of pool file: a memfd sealed as Weston's clients seal it, a plain memfd, a file in a runtime dir. */
export type PoolKind = 'sealed' | 'unsealed' | 'file';

/** A pool file of `size` bytes holding `bytes` at `offset`. */
export function poolFile(kind: PoolKind, size: number, bytes?: Uint8Array, offset = 0): OwnedFd {
  let fd: OwnedFd;
  if (kind === 'file') {
    // as clients without memfd do it: a file in XDG_RUNTIME_DIR, unlinked at once
    const dir = mkdtempSync(join(process.env['XDG_RUNTIME_DIR'] ?? tmpdir(), 'primebuf-shm-'));
    const raw = openSync(join(dir, 'pool'), 'w+');
    rmSync(dir, { recursive: true });
    try {
      fd = new OwnedFd(native.dupFd(raw), 'shm pool file');
    } finally {
      closeSync(raw);
    }
  } else {
    fd = new OwnedFd(native.memfdCreate(`shm-pool-${kind}`, kind === 'sealed'), `shm pool memfd (${kind})`);
  }
  try {
    native.ftruncateFd(fd.fd, size);
    if (bytes) writeSync(fd.fd, bytes, 0, bytes.length, offset);
    if (kind === 'sealed') native.addSeals(fd.fd, F_SEAL_SHRINK | F_SEAL_SEAL);
  } catch (err) {
    fd.close();
    throw err;
  }
  return fd;
}

export interface ClientBuffer {
  pool: WaylandProxy<'wl_shm_pool'>;
  buffer: WaylandProxy<'wl_buffer'>;
  /** the compositor's ShmBuffer */
  shm: ShmBuffer;
}

/**
 * A pool over `fd` (`size` bytes), one buffer in it, attached to a new surface; resolves when
 * the compositor made the ShmBuffer. The pool proxy is kept (destroy it to test a pool's life).
 */
export async function clientBuffer(
  c: OwnShmClient,
  comp: OwnShmCompositor,
  fd: OwnedFd,
  size: number,
  g: { offset: number; width: number; height: number; stride: number; format: number },
): Promise<ClientBuffer> {
  const pool = c.shm.request('create_pool', { fd, size });
  const buffer = pool.request('create_buffer', { offset: g.offset, width: g.width, height: g.height, stride: g.stride, format: wlShmFormat(g.format) });
  c.compositor.request('create_surface', {}).request('attach', { buffer, x: 0, y: 0 });
  const before = comp.buffers.length;
  await c.conn.roundtrip();
  const shm = comp.buffers[comp.buffers.length - 1];
  if (comp.buffers.length !== before + 1 || !shm) throw new Error('the compositor made no ShmBuffer');
  return { pool, buffer, shm };
}

/** Pixels whose every byte differs: 32-bit words from a position hash. */
export function pattern(width: number, height: number, stride: number, seed: number): Uint8Array {
  const out = new Uint8Array(stride * height);
  const dv = new DataView(out.buffer);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) dv.setUint32(y * stride + x * 4, (Math.imul(x + 1, 0x9e3779b1) ^ Math.imul(y + seed, 0x85ebca6b)) >>> 0, true);
  return out;
}

/** The error a connection dies of at its next roundtrip (null when it lives). */
export function protocolError(conn: WaylandConnection): Promise<unknown> {
  return conn.roundtrip().then(
    () => null,
    (e: unknown) => e,
  );
}
