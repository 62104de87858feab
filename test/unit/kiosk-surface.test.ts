// The kiosk's wl_surface (compositor-example/compositor.ts) and HiddenFrames (pacer.ts), server
// and client in one process (issue 18, fault 8): a surface that is not presented keeps at most
// MAX_PENDING_DAMAGE damage rectangles (merged, covering everything damaged), and its frame
// callbacks are answered at the throttled rate instead of piling up.
import t from 'tap';
import { WaylandConnection, WaylandServer, type WaylandProxy } from '../../src/wayland/index.js';
import { MAX_PENDING_DAMAGE, installCompositor, type Surface } from '../../compositor-example/compositor.js';
import { HiddenFrames } from '../../compositor-example/pacer.js';
import { until } from '../util/wait.js';

async function rig(): Promise<{ server: WaylandServer; conn: WaylandConnection; surf: WaylandProxy<'wl_surface'>; surface: () => Surface; close(): void }> {
  const server = new WaylandServer();
  let last: Surface | undefined;
  installCompositor(server, (s) => (last = s));
  const conn = WaylandConnection.fromFd(server.connectPair().fd);
  const { registry, globals } = await conn.globals();
  const comp = conn.bind(registry, globals.find((g) => g.interface === 'wl_compositor')!, 'wl_compositor', 5);
  const surf = comp.request('create_surface', {});
  await conn.roundtrip();
  return {
    server,
    conn,
    surf,
    surface: () => last!,
    close() {
      conn.close();
      server.close();
    },
  };
}

t.test('fault 8: a surface no longer presented keeps a bounded damage list that covers every damaged rectangle', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  r.surface().takeFrame(); // presented once (damage starts again from nothing), then hidden
  const rects = [];
  for (let i = 0; i < 1000; i++) {
    const rect = { x: (i * 37) % 2000, y: (i * 53) % 1500, width: 3, height: 2 };
    rects.push(rect);
    r.surf.request('damage_buffer', rect);
    r.surf.request('commit', {});
  }
  await r.conn.roundtrip();
  const damage = r.surface().damage!;
  t.ok(damage.length <= MAX_PENDING_DAMAGE, `${damage.length} rectangles kept after 1000 commits (at most ${MAX_PENDING_DAMAGE})`);
  const inside = (a: { x: number; y: number; width: number; height: number }) =>
    damage.some((d) => a.x >= d.x && a.y >= d.y && a.x + a.width <= d.x + d.width && a.y + a.height <= d.y + d.height);
  t.ok(rects.every(inside), 'every damaged rectangle is inside the merged damage');
});

t.test('fault 8: frame callbacks of a surface not shown are answered at the throttled rate', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  const hidden = new HiddenFrames({ intervalMs: 100, shown: () => false });
  t.teardown(() => hidden.close());
  hidden.watch(r.surface());
  // 200 commits with a frame callback each, nobody waiting: all answered within an interval
  let done = 0;
  for (let i = 0; i < 200; i++) {
    r.surf.request('frame', {}).on('done', () => void done++);
    r.surf.request('commit', {});
  }
  r.conn.flush();
  t.ok(await until(() => done === 200, 5000), `all 200 frame callbacks answered (${done})`);
  t.equal(r.surface().frames.length, 0, 'none left on the surface');
  // a client drawing on frame callbacks: one per interval, not one per commit
  let paced = 0;
  const end = Date.now() + 550;
  while (Date.now() < end) {
    const cb = new Promise<void>((resolve) => r.surf.request('frame', {}).on('done', () => resolve()));
    r.surf.request('commit', {});
    r.conn.flush();
    await cb;
    paced++;
  }
  t.ok(paced >= 2 && paced <= 7, `a paced client gets about one done per 100 ms (${paced} in 550 ms)`);
});

t.test('fault 8: a shown surface is left to the frame loop', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  const hidden = new HiddenFrames({ intervalMs: 20, shown: () => true });
  t.teardown(() => hidden.close());
  hidden.watch(r.surface());
  r.surf.request('frame', {});
  r.surf.request('commit', {});
  await r.conn.roundtrip();
  await new Promise((res) => setTimeout(res, 80));
  t.equal(r.surface().frames.length, 1, 'its callback waits for the presentation');
  t.equal(hidden.answered, 0);
});

t.test('a frame given back (releaseFrame) is reused without carrying anything into the next frame', async (t) => {
  const r = await rig();
  t.teardown(() => r.close());
  const s = r.surface();
  const commit = (x: number): void => {
    r.surf.request('damage_buffer', { x, y: 0, width: 10, height: 10 });
    r.surf.request('frame', {});
    r.surf.request('commit', {});
  };
  commit(1);
  await r.conn.roundtrip();
  const first = s.takeFrame();
  t.equal(first.frames.length, 1, 'the first commit: one frame callback');
  const firstFrames = first.frames;
  s.releaseFrame(first);
  t.equal(firstFrames.length, 0, 'given back: its arrays are emptied');
  commit(2);
  commit(3);
  await r.conn.roundtrip();
  const second = s.takeFrame();
  t.same(second.damage, [{ x: 2, y: 0, width: 10, height: 10 }, { x: 3, y: 0, width: 10, height: 10 }], 'the next frame: only the damage of its own commits');
  t.equal(second.frames.length, 2, 'and only their frame callbacks');
  t.ok(second.frames.every((f) => !f.destroyed), 'live callbacks');
  // a frame taken and not given back (a deferred one) is never touched by the surface again
  commit(4);
  await r.conn.roundtrip();
  t.equal(second.frames.length, 2, 'a frame not given back keeps what it took');
  const third = s.takeFrame();
  t.same(third.damage, [{ x: 4, y: 0, width: 10, height: 10 }], 'the third frame: its own damage');
  t.not(third.frames, second.frames, 'distinct arrays while the second frame is held');
});
