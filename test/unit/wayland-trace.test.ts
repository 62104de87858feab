// The WAYLAND_DEBUG trace reader (test/util/wayland-trace.ts) on lines recorded from Debian 12's
// GStreamer 1.22 waylandsink and weston-subsurfaces under Weston 10 in the vkms guest: globals
// bound, subsurfaces with their position and sync mode, viewport destinations, wl_shm and
// linux-dmabuf buffers (create and created), attaches, commits per surface, configures, errors.
import t from 'tap';
import { WaylandTrace } from '../util/wayland-trace.js';

const WAYLANDSINK = `[ 533689.320]  -> wl_registry@2.bind(1, "wl_compositor", 4, new id [unknown]@4)
[ 533699.674]  -> wl_registry@2.bind(2, "wl_subcompositor", 1, new id [unknown]@5)
[ 533710.643]  -> wl_registry@2.bind(3, "wp_viewporter", 1, new id [unknown]@6)
[ 533726.348]  -> wl_registry@2.bind(10, "wl_shm", 1, new id [unknown]@7)
[ 533738.262]  -> wl_registry@2.bind(15, "xdg_wm_base", 1, new id [unknown]@8)
(gst-launch-1.0:251): GStreamer-Wayland-WARNING **: 03:50:18.479: Could not bind to zwp_linux_dmabuf_v1
[ 533962.859]  -> wl_subcompositor@5.get_subsurface(new id wl_subsurface@10, wl_surface@9, wl_surface@3)
[ 533967.627]  -> wl_subsurface@10.set_desync()
[ 533972.539]  -> wp_viewporter@6.get_viewport(new id wp_viewport@11, wl_surface@3)
[ 533978.291]  -> wp_viewporter@6.get_viewport(new id wp_viewport@12, wl_surface@9)
[ 534005.873]  -> wl_surface@3.commit()
[ 534018.302] xdg_toplevel@15.configure(1024, 768, array[8])
[ 534058.453]  -> wl_shm_pool@13.create_buffer(new id wl_buffer@16, 0, 320, 240, 1280, 1)
[ 534079.656]  -> wl_subsurface@10.set_sync()
[ 534088.372]  -> wp_viewport@12.set_destination(1024, 768)
[ 534091.791]  -> wl_subsurface@10.set_position(0, 0)
[ 534147.721]  -> wl_surface@9.attach(wl_buffer@16, 0, 0)
[ 534159.608]  -> wl_surface@9.commit()
[ 534166.269]  -> wp_viewport@11.set_destination(1024, 768)
[ 534183.597]  -> wl_shm_pool@20.create_buffer(new id wl_buffer@21, 0, 1, 1, 4, 1)
[ 534191.758]  -> wl_surface@3.attach(wl_buffer@21, 0, 0)
[ 534199.672]  -> wl_surface@3.commit()
[ 534207.672]  -> wl_subsurface@10.set_desync()
[ 534210.000]  -> wl_surface@9.commit()
`;

t.test('waylandsink: a toplevel with a 1x1 buffer, a desynchronized video subsurface, both scaled by viewports', async (t) => {
  const tr = new WaylandTrace();
  // fed in odd chunks: lines split across pushes are joined
  for (let i = 0; i < WAYLANDSINK.length; i += 97) tr.push(WAYLANDSINK.slice(i, i + 97));
  t.same(tr.bound, ['wl_compositor', 'wl_subcompositor', 'wp_viewporter', 'wl_shm', 'xdg_wm_base']);
  t.same([...tr.subsurfaces.values()], [{ subsurface: 10, surface: 9, parent: 3, x: 0, y: 0, desync: true }]);
  t.same(tr.roots(), [3], 'surface 3 is the root');
  t.same(tr.destination.get(9), { width: 1024, height: 768 });
  t.same(tr.destination.get(3), { width: 1024, height: 768 });
  t.same(tr.attachedBuffer.get(9), { id: 16, kind: 'shm', width: 320, height: 240, format: 1 });
  t.same(tr.attachedBuffer.get(3), { id: 21, kind: 'shm', width: 1, height: 1, format: 1 });
  t.equal(tr.commitsOf(9), 2);
  t.equal(tr.commitsOf(3), 2);
  t.same(tr.configures, [{ width: 1024, height: 768 }]);
  t.same(tr.errors, []);
  t.equal(tr.other.length, 1, 'the client\'s own warning is kept apart');
});

t.test('linux-dmabuf: create, then the created event names the wl_buffer', async (t) => {
  const tr = new WaylandTrace();
  tr.push(`[ 652044.820]  -> zwp_linux_dmabuf_v1@8.create_params(new id zwp_linux_buffer_params_v1@14)
[ 652062.221]  -> zwp_linux_buffer_params_v1@14.add(fd 22, 0, 0, 7680, 0, 0)
[ 652067.010]  -> zwp_linux_buffer_params_v1@14.create(3840, 2160, 1448695129, 0)
[ 652093.013] zwp_linux_buffer_params_v1@14.created(new id wl_buffer@4278190080)
[ 652103.541]  -> zwp_linux_buffer_params_v1@14.destroy()
[ 652213.428]  -> wl_surface@10.attach(wl_buffer@4278190080, 0, 0)
[ 652300.000]  -> zwp_linux_buffer_params_v1@15.create_immed(new id wl_buffer@40, 640, 480, 875713112, 0)
[ 652400.000]  -> wl_surface@10.attach(wl_buffer@40, 0, 0)
[ 652500.000]  -> wl_surface@10.attach(nil, 0, 0)
[ 652600.000] wl_display@1.error(wl_surface@10, 2, "bad things")
`);
  t.same(tr.created, [
    { id: 4278190080, kind: 'dmabuf', width: 3840, height: 2160, format: 1448695129 },
    { id: 40, kind: 'dmabuf', width: 640, height: 480, format: 875713112 },
  ]);
  t.equal(tr.attached.get(10), 0, 'a null attach');
  t.equal(tr.attachedBuffer.get(10), undefined);
  t.equal(tr.errors.length, 1);
  t.match(tr.errors[0], /bad things/);
});

t.test('weston-subsurfaces: two subsurfaces of one parent, positions, commits counted per surface', async (t) => {
  const tr = new WaylandTrace();
  tr.push(`[ 509605.182]  -> wl_subcompositor@5.get_subsurface(new id wl_subsurface@20, wl_surface@19, wl_surface@15)
[ 509606.394]  -> wl_subcompositor@5.get_subsurface(new id wl_subsurface@22, wl_surface@21, wl_surface@15)
[ 509692.557]  -> wl_shm_pool@26.create_buffer(new id wl_buffer@27, 0, 101, 101, 404, 808669761)
[ 512337.047]  -> wl_surface@21.attach(wl_buffer@27, 0, 0)
[ 512338.680]  -> wl_surface@21.commit()
[ 512340.666]  -> wl_subsurface@22.set_position(261, 161)
[ 512344.367]  -> wl_subsurface@20.set_position(261, -59)
[ 512760.345]  -> wl_subsurface@22.set_desync()
[ 512806.931]  -> wl_surface@21.commit()
[ 512806.932]  -> wl_surface@15.commit()
`);
  t.same(tr.subsurfaces.get(21), { subsurface: 22, surface: 21, parent: 15, x: 261, y: 161, desync: true });
  t.same(tr.subsurfaces.get(19), { subsurface: 20, surface: 19, parent: 15, x: 261, y: -59, desync: false });
  t.equal(tr.commitsOf(21), 2);
  t.same(tr.roots(), [15]);
  t.equal(tr.attachedBuffer.get(21)?.format, 808669761);
});

t.test('waylandsinkLayout and fitCentred: the window configured or the video\'s size, the video fitted and centred in it', async (t) => {
  const { fitCentred, waylandsinkLayout } = await import('../util/real-clients.js');
  t.same(fitCentred({ width: 320, height: 120 }, { x: 0, y: 0, width: 1024, height: 768 }), { x: 0, y: 192, width: 1024, height: 384 }, 'wider: letterboxed (as Weston showed it)');
  t.same(fitCentred({ width: 480, height: 640 }, { x: 0, y: 0, width: 1024, height: 768 }), { x: 224, y: 0, width: 576, height: 768 }, 'taller: pillarboxed');
  t.same(fitCentred({ width: 640, height: 480 }, { x: 0, y: 0, width: 1024, height: 768 }), { x: 0, y: 0, width: 1024, height: 768 });
  const trace = (lines: string): WaylandTrace => {
    const tr = new WaylandTrace();
    tr.push(lines);
    return tr;
  };
  // the layout of the first test above: configured 1024x768, video 320x240 at 1024x768
  const fitted = waylandsinkLayout(trace(WAYLANDSINK), { width: 320, height: 240 });
  t.same(fitted.problems, []);
  t.same(fitted.window, { width: 1024, height: 768 });
  // the window at the video's size after a late configure: also waylandsink's own layout
  const own = waylandsinkLayout(trace(WAYLANDSINK.replaceAll('set_destination(1024, 768)', 'set_destination(320, 240)')), { width: 320, height: 240 });
  t.same(own.problems, []);
  t.same(own.expected, { x: 0, y: 0, width: 320, height: 240 });
  const wrong = waylandsinkLayout(trace(WAYLANDSINK.replace('wp_viewport@12.set_destination(1024, 768)', 'wp_viewport@12.set_destination(1024, 700)')), { width: 320, height: 240 });
  t.match(wrong.problems, [/the video subsurface is 1024x700 at 0,0; expected 1024x768 at 0,0/]);
  const noSub = waylandsinkLayout(trace(WAYLANDSINK.replace(/.*get_subsurface.*\n/, '').replace(/.*wl_registry@2.bind\(2.*\n/, '')), { width: 320, height: 240 });
  t.match(noSub.problems, ['wl_subcompositor not bound', '0 subsurfaces (one expected)']);
});

t.test('input events: the seat\'s capabilities, the pointer where the client heard it, keyboard enters', async (t) => {
  const tr = new WaylandTrace();
  t.equal(tr.capabilities, undefined);
  t.equal(tr.pointer, undefined);
  tr.push([
    '[ 100.000] wl_seat@4.capabilities(7)',
    '[ 100.100] wl_keyboard@12.enter(31, wl_surface@3, array[0])',
    '[ 100.200] wl_pointer@11.enter(32, wl_surface@3, 580.00000000, 384.00000000)',
    '[ 100.300] wl_pointer@11.motion(4567, 575.50390625, 380.00000000)',
    '[ 100.400]  -> wl_pointer@11.set_cursor(32, wl_surface@9, 0, 0)',
    '',
  ].join('\n'));
  t.equal(tr.capabilities, 7, 'pointer, keyboard and touch');
  t.equal(tr.keyboardEnters, 1);
  t.same(tr.pointer, { surface: 3, x: 575.50390625, y: 380 }, 'the motion\'s position on the surface the pointer entered');
  t.equal(tr.pointerEvents, 2, 'an enter and a motion (the request does not count)');
});

t.test('a buffer committed on an xdg_surface before any ack_configure is found, with how long the client waited', async (t) => {
  const lines = (ack: boolean): string => `[ 100000.000]  -> xdg_wm_base@8.get_xdg_surface(new id xdg_surface@14, wl_surface@3)
[ 100001.000]  -> xdg_surface@14.get_toplevel(new id xdg_toplevel@15)
[ 100002.500]  -> wl_surface@3.commit()
[ 100010.000]  -> wl_surface@9.attach(wl_buffer@16, 0, 0)
[ 100011.000]  -> wl_surface@9.commit()
${ack ? '[ 100050.000] xdg_surface@14.configure(7)\n[ 100051.000]  -> xdg_surface@14.ack_configure(7)\n' : ''}[ 100105.000]  -> wl_surface@3.attach(wl_buffer@21, 0, 0)
[ 100106.000]  -> wl_surface@3.commit()
[ 100200.000] xdg_surface@14.configure(7)
`;
  const raced = new WaylandTrace();
  raced.push(lines(false));
  t.same(raced.unconfiguredCommit, { surface: 3, waitedMs: 103.5 }, 'the toplevel surface committed its buffer 103.5 ms after its initial commit, unacked (a subsurface\'s buffer does not count)');
  const fine = new WaylandTrace();
  fine.push(lines(true));
  t.equal(fine.unconfiguredCommit, undefined, 'acked first: nothing found');
});
