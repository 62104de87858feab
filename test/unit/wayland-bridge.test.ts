// The generic libwayland bridge, server and client in one process (no DRM needed): globals,
// binding, typed requests with every argument kind, events, destructors, destroy
// notifications, protocol errors, client credentials, sockets, wl_shm.
import t from 'tap';
import { until } from '../util/wait.js';
import { plainMemfd } from '../util/memfd.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OwnedFd } from '../../src/fd.js';
import { native } from '../../src/native.js';
import { WaylandConnection, WaylandServer, ProtocolError, type ServerResource, type WaylandProxy } from '../../src/wayland/index.js';

function pair(server: WaylandServer): WaylandConnection {
  const { fd } = server.connectPair();
  return WaylandConnection.fromFd(fd);
}

t.test('a client binds a global, sends typed requests and gets events', async (t) => {
  const server = new WaylandServer();
  const seen: string[] = [];
  let surface: ServerResource<'wl_surface'> | undefined;
  server.createGlobal('wl_compositor', 4, (res, client) => {
    seen.push(`bind v${res.version} pid ${client.pid}`);
    res.implement({
      create_surface: ({ id }) => {
        surface = id;
        id.implement({
          frame: ({ callback }) => {
            callback.send('done', { callback_data: 1234 });
            callback.destroy();
          },
          set_buffer_scale: ({ scale }) => seen.push(`scale ${scale}`),
          damage: ({ x, y, width, height }) => seen.push(`damage ${x},${y},${width}x${height}`),
          attach: ({ buffer, x, y }) => seen.push(`attach ${buffer === null ? 'null' : buffer.interface} ${x},${y}`),
        });
        id.onDestroy(() => seen.push('surface destroyed'));
      },
    });
  });
  const conn = pair(server);
  const { registry, globals } = await conn.globals();
  const g = globals.find((x) => x.interface === 'wl_compositor');
  t.ok(g, 'wl_compositor advertised');
  t.equal(g!.version, 4);
  const comp = conn.bind(registry, g!, 'wl_compositor', 4);
  const surf = comp.request('create_surface', {});
  t.equal(surf.interface, 'wl_surface');
  surf.request('set_buffer_scale', { scale: 2 });
  surf.request('damage', { x: -5, y: 7, width: 100, height: 50 });
  surf.request('attach', { buffer: null, x: 1, y: -1 });
  const done = new Promise<number>((resolve) => surf.request('frame', {}).on('done', ({ callback_data }) => resolve(callback_data)));
  t.equal(await done, 1234, 'event with a uint argument reached the client');
  await conn.roundtrip();
  t.ok(surface, 'server created the wl_surface resource');
  t.equal(surface!.interface, 'wl_surface');
  t.equal(surface!.version, 4, 'child resources inherit the version');
  t.equal(surface!.id, surf.id, 'same object id on both sides');
  t.same(seen, [`bind v4 pid ${process.pid}`, 'scale 2', 'damage -5,7,100x50', 'attach null 1,-1']);
  surf.request('destroy', {});
  await conn.roundtrip();
  t.ok(surface!.destroyed, 'destructor request destroyed the server resource');
  t.equal(seen.at(-1), 'surface destroyed');
  conn.close();
  server.close();
});

t.test('fd and array arguments: the server owns a duplicate of the file', async (t) => {
  const server = new WaylandServer();
  let received: OwnedFd | undefined;
  let indices: Uint8Array | undefined;
  server.createGlobal('zwp_linux_dmabuf_v1', 5, (res) => {
    res.implement({
      create_params: ({ params_id }) =>
        params_id.implement({
          add: ({ fd, plane_idx, offset, stride, modifier_hi, modifier_lo }) => {
            received = fd;
            t.same([plane_idx, offset, stride, modifier_hi, modifier_lo], [0, 16, 256, 0x00ffffff, 0xffffffff]);
          },
        }),
      get_default_feedback: ({ id }) => {
        id.send('tranche_formats', { indices: new Uint8Array([1, 0, 2, 0]) });
        id.send('done', {});
      },
    });
  });
  const conn = pair(server);
  const { registry, globals } = await conn.globals();
  const dmabuf = conn.bind(registry, globals.find((g) => g.interface === 'zwp_linux_dmabuf_v1')!, 'zwp_linux_dmabuf_v1', 5);
  const memfd = plainMemfd('plane', 4096);
  const params = dmabuf.request('create_params', {});
  params.request('add', { fd: memfd, plane_idx: 0, offset: 16, stride: 256, modifier_hi: 0x00ffffff, modifier_lo: 0xffffffff });
  const fb = dmabuf.request('get_default_feedback', {});
  fb.on('tranche_formats', ({ indices: i }) => {
    indices = i;
  });
  await conn.roundtrip();
  t.ok(received instanceof OwnedFd, 'handler got an OwnedFd');
  t.not(received!.fd, memfd.fd, 'a different fd number');
  t.equal(native.wlFdIdentity(received!.fd), native.wlFdIdentity(memfd.fd), 'for the same file');
  t.same(Array.from(indices ?? []), [1, 0, 2, 0], 'array argument arrived intact');
  received!.close();
  memfd.close();
  conn.close();
  server.close();
});

t.test('protocol errors reach the client with interface, object and code', async (t) => {
  const server = new WaylandServer();
  let clientGone = false;
  server.onClient((c) => c.onDestroy(() => (clientGone = true)));
  server.createGlobal('wl_compositor', 4, (res) =>
    res.implement({ create_region: ({ id }) => id.postError(0, 'region refused') }),
  );
  const conn = pair(server);
  const { registry, globals } = await conn.globals();
  const comp = conn.bind(registry, globals.find((g) => g.interface === 'wl_compositor')!, 'wl_compositor', 4);
  const region = comp.request('create_region', {});
  const err = await conn.roundtrip().then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof ProtocolError, 'roundtrip rejects with ProtocolError');
  const pe = err as ProtocolError;
  t.equal(pe.interface, 'wl_region');
  t.equal(pe.objectId, region.id);
  t.equal(pe.code, 0);
  t.equal(conn.error, pe, 'connection remembers the error');
  await until(() => clientGone);
  t.ok(clientGone, 'the server dropped the client');
  t.equal(server.clients.size, 0);
  conn.close();
  server.close();
});

t.test('a handler that throws becomes an implementation error, the server lives on', async (t) => {
  const errors: unknown[] = [];
  const server = new WaylandServer({ onHandlerError: (e) => errors.push(e) });
  server.createGlobal('wl_compositor', 4, (res) =>
    res.implement({
      create_surface: () => {
        throw new Error('boom');
      },
    }),
  );
  const conn = pair(server);
  const { registry, globals } = await conn.globals();
  conn.bind(registry, globals.find((g) => g.interface === 'wl_compositor')!, 'wl_compositor', 4).request('create_surface', {});
  const err = (await conn.roundtrip().catch((e: unknown) => e)) as ProtocolError;
  t.equal(err.interface, 'wl_display');
  t.equal(err.code, 3, 'wl_display.error.implementation');
  t.equal(errors.length, 1);
  const conn2 = pair(server);
  await conn2.roundtrip();
  t.pass('a second client is served');
  conn.close();
  conn2.close();
  server.close();
});

t.test('version checks: a request above the bound version is refused by libwayland', async (t) => {
  const server = new WaylandServer();
  server.createGlobal('zwp_linux_dmabuf_v1', 3, (res) => res.implement({}));
  const conn = pair(server);
  const { registry, globals } = await conn.globals();
  const g = globals.find((x) => x.interface === 'zwp_linux_dmabuf_v1')!;
  t.equal(g.version, 3);
  t.throws(() => conn.bind(registry, g, 'zwp_linux_dmabuf_v1', 4), 'binding above the advertised version is refused locally');
  const d = conn.bind(registry, g, 'zwp_linux_dmabuf_v1', 3);
  t.throws(() => d.request('get_default_feedback', {}), /needs version 4/, 'client side refuses too');
  conn.close();
  server.close();
});

t.test('named and automatic sockets, wl_display_connect, credentials', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'primebuf-xdg-'));
  const saved = process.env.XDG_RUNTIME_DIR;
  process.env.XDG_RUNTIME_DIR = dir;
  t.teardown(() => {
    process.env.XDG_RUNTIME_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  });
  const server = new WaylandServer();
  const auto = server.addSocket();
  t.match(auto, /^wayland-\d+$/);
  t.equal(server.addSocket('primebuf-test'), 'primebuf-test');
  const clients: Array<{ pid: number; uid: number }> = [];
  server.onClient((c) => clients.push({ pid: c.pid, uid: c.uid }));
  for (const name of [auto, 'primebuf-test']) {
    const conn = WaylandConnection.connect(name);
    await conn.roundtrip();
    conn.close();
  }
  t.same(clients, [
    { pid: process.pid, uid: process.getuid!() },
    { pid: process.pid, uid: process.getuid!() },
  ]);
  server.close();
});

t.test('objects of a disconnected client are all destroyed and reported', async (t) => {
  const server = new WaylandServer();
  const live = new Set<ServerResource>();
  server.createGlobal('wl_compositor', 4, (res) => {
    live.add(res);
    res.onDestroy(() => live.delete(res));
    res.implement({
      create_surface: ({ id }) => {
        live.add(id);
        id.onDestroy(() => live.delete(id));
      },
    });
  });
  const conn = pair(server);
  const { registry, globals } = await conn.globals();
  const comp = conn.bind(registry, globals.find((g) => g.interface === 'wl_compositor')!, 'wl_compositor', 4) as WaylandProxy<'wl_compositor'>;
  for (let i = 0; i < 10; i++) comp.request('create_surface', {});
  await conn.roundtrip();
  t.equal(live.size, 11);
  conn.close();
  await until(() => live.size === 0);
  t.equal(live.size, 0, 'every resource reported destroyed');
  t.equal(server.resourceCount, 0, 'bridge tracks nothing of the client');
  server.close();
});

t.test('closing the server from inside a request handler is deferred until libwayland returns', async (t) => {
  const server = new WaylandServer();
  let destroyedClients = 0;
  server.onClient((c) => c.onDestroy(() => destroyedClients++));
  server.createGlobal('wl_compositor', 4, (res) => res.implement({ create_surface: () => server.close() }));
  const conn = pair(server);
  const { registry, globals } = await conn.globals();
  conn.bind(registry, globals.find((g) => g.interface === 'wl_compositor')!, 'wl_compositor', 4).request('create_surface', {});
  const lost = new Promise<Error>((resolve) => conn.onError(resolve));
  // Requests already read in the same batch are still answered, then the display goes.
  await conn.roundtrip().catch(() => undefined);
  const err = await lost;
  t.match(err.name, /ConnectionError|ProtocolError/, `the client lost its server (${err.message})`);
  t.ok(server.closed);
  t.equal(destroyedClients, 1, 'the client was destroyed with the display');
  conn.close();
});
