// Conformance: primebuf/input on real kernel input devices. uinput devices (a keyboard, a pointer,
// a multitouch touchscreen: test/util/uinput.ts) are made after udevd starts in the guest, so udev
// tags them for seat0 as on a real machine. Proves: openInput on seat0 sees them with their
// capabilities; keys typed arrive in order with xkb's keysyms and text (shift+a is A, and the
// shift key carries the modifiers); pointer motion, buttons and wheel clicks (value120); touch
// down/motion/up/frame at 0..1 positions; device-removed when a device goes (hotplug through
// udev); libinput's path backend on explicit nodes; the opener called for every device opened and
// every fd closed (also across suspend/resume); no fd left open after close(). Fails (never skips)
// without /dev/uinput or udevd.
import t from 'tap';
import { openInput, type DeviceOpener, type InputContext, type InputEvent } from '../../src/input/index.js';
import { testNative } from '../../src/native.js';
import { closeSync, existsSync, openSync } from 'node:fs';
import { BTN_LEFT, BTN_RIGHT, VirtualInput } from '../util/uinput.js';
import { until } from '../util/wait.js';
import type { TapTest } from './leak.js';

t.setTimeout(600000);

const XKB = { h: 0x68, i: 0x69, A: 0x41, x: 0x78, Shift_L: 0xffe1 };
const KEY = { H: 35, I: 23, A: 30, X: 45, LEFTSHIFT: 42 };

type KeyEvent = Extract<InputEvent, { type: 'key' }>;

/** Collects a context's events. */
function collect(input: InputContext): InputEvent[] {
  const events: InputEvent[] = [];
  input.onEvent((e) => events.push(e));
  return events;
}

async function waitFor(t: TapTest, events: InputEvent[], what: string, pred: (e: InputEvent[]) => boolean, ms = 30_000): Promise<boolean> {
  const ok = await until(() => pred(events), ms, 10);
  if (!ok) t.fail(`${what}: not seen in ${ms} ms; got ${JSON.stringify(events.slice(-20))}`);
  return ok;
}

const of = <T extends InputEvent['type']>(events: InputEvent[], type: T) =>
  events.filter((e): e is Extract<InputEvent, { type: T }> => e.type === type);

t.test('seat0: the virtual devices, keys, pointer, touch and removal', async (t) => {
  const vi = await VirtualInput.create('primebuf-seat');
  const fdsBefore = testNative.countOpenFds();
  const input = openInput({ keymap: { layout: 'us' } });
  const events = collect(input);
  try {
    const mine = input.devices.filter((d) => d.name.startsWith('primebuf-seat '));
    const byName = new Map(mine.map((d) => [d.name, d]));
    t.equal(mine.length, 3, `seat0 has the three virtual devices (all: ${input.devices.map((d) => d.name).join(', ')})`);
    const kbd = byName.get('primebuf-seat keyboard');
    const ptr = byName.get('primebuf-seat pointer');
    const touch = byName.get('primebuf-seat touch');
    t.same(kbd?.capabilities, ['keyboard'], 'the keyboard is a keyboard');
    t.same(ptr?.capabilities, ['pointer'], 'the pointer is a pointer');
    t.same(touch?.capabilities, ['touch'], 'the touchscreen is touch');
    t.equal(kbd?.sysname, vi.keyboard.sysname, "the keyboard's sysname is its event node");
    t.equal(touch?.sysname, vi.touch.sysname, "the touchscreen's too");
    t.equal(new Set(mine.map((d) => d.id)).size, 3, 'distinct ids');
    await until(() => of(events, 'device-added').length >= input.devices.length, 5000);
    t.same(
      of(events, 'device-added').map((e) => e.device.id).sort(),
      input.devices.map((d) => d.id).sort(),
      'the first listener got a device-added for every device present at open',
    );

    // keys: "hi", then shift+a
    await vi.type('hi');
    await vi.type('A');
    if (!(await waitFor(t, events, '8 key events', (ev) => of(ev, 'key').length >= 8))) return;
    const keys = of(events, 'key');
    const brief = keys.map((k) => [k.key, k.pressed, k.keysym, k.utf8]);
    t.same(
      brief,
      [
        [KEY.H, true, XKB.h, 'h'],
        [KEY.H, false, XKB.h, 'h'],
        [KEY.I, true, XKB.i, 'i'],
        [KEY.I, false, XKB.i, 'i'],
        [KEY.LEFTSHIFT, true, XKB.Shift_L, ''],
        [KEY.A, true, XKB.A, 'A'],
        [KEY.A, false, XKB.A, 'A'],
        [KEY.LEFTSHIFT, false, XKB.Shift_L, ''],
      ],
      'keys in order with their keysyms and text: h, i, shift, A',
    );
    t.ok(keys.every((k) => k.device === kbd?.id), 'every key from the keyboard');
    t.same(keys[4]!.modifiers, { depressed: 1, latched: 0, locked: 0, group: 0 }, 'shift pressed carries the modifiers (Shift depressed)');
    t.same(keys[7]!.modifiers, { depressed: 0, latched: 0, locked: 0, group: 0 }, 'shift released carries them back to 0');
    t.ok(keys.filter((_, i) => i !== 4 && i !== 7).every((k) => k.modifiers === undefined), 'the other keys carry no modifiers');
    t.ok(keys.every((k, i) => i === 0 || k.timeUs >= keys[i - 1]!.timeUs), 'times do not go back');
    t.equal(keys[0]!.seatKeyCount, 1, 'a press: seat key count 1');
    t.equal(keys[1]!.seatKeyCount, 0, 'its release: 0');

    // pointer
    await vi.move(5, -3);
    await vi.click(BTN_LEFT);
    await vi.button(BTN_RIGHT, true);
    await vi.button(BTN_RIGHT, false);
    await vi.wheel(-1);
    await vi.wheel(2);
    await vi.hwheel(1);
    // libinput's button debouncing may hold a quick release back on a timer, so the wheel can be
    // heard before it (seen in a loaded guest): wait for the four buttons as well as the axes
    if (!(await waitFor(t, events, 'pointer events', (ev) => of(ev, 'pointer-axis').length >= 3 && of(ev, 'pointer-button').length >= 4))) return;
    const motion = of(events, 'pointer-motion');
    t.equal(motion.length, 1, 'one motion');
    t.equal(motion[0]?.dxUnaccelerated, 5, 'dx 5 before acceleration');
    t.equal(motion[0]?.dyUnaccelerated, -3, 'dy -3 before acceleration');
    t.ok(motion[0]!.dx > 0 && motion[0]!.dy < 0, `accelerated motion in the same direction (${motion[0]!.dx}, ${motion[0]!.dy})`);
    t.equal(motion[0]?.device, ptr?.id, 'from the pointer');
    t.same(
      of(events, 'pointer-button').map((b) => [b.button, b.pressed]),
      [[BTN_LEFT, true], [BTN_LEFT, false], [BTN_RIGHT, true], [BTN_RIGHT, false]],
      'buttons in order',
    );
    const axes = of(events, 'pointer-axis');
    t.same(axes.map((a) => a.source), ['wheel', 'wheel', 'wheel'], 'wheel source');
    t.equal(axes[0]?.vertical?.value120, 120, 'one click towards the user: value120 +120');
    t.equal(axes[0]?.horizontal, undefined, 'no horizontal axis on a vertical click');
    t.ok(axes[0]!.vertical!.value > 0, 'scrolling down: a positive value');
    t.equal(axes[1]?.vertical?.value120, -240, 'two clicks away: -240');
    t.equal(axes[2]?.horizontal?.value120, 120, 'a horizontal click right: +120');
    t.equal(axes[2]?.vertical, undefined, 'and no vertical axis');

    // touch
    await vi.touchDown(0, 0.5, 0.25);
    await vi.touchMove(0, 0.75, 0.5);
    await vi.touchDown(1, 0.1, 0.9);
    await vi.touchUp(0);
    await vi.touchUp(1);
    if (!(await waitFor(t, events, 'touch events', (ev) => of(ev, 'touch-up').length >= 2 && ev.at(-1)?.type === 'touch-frame'))) return;
    const touches = events.filter((e) => e.type.startsWith('touch-'));
    t.same(
      touches.map((e) => e.type),
      ['touch-down', 'touch-frame', 'touch-motion', 'touch-frame', 'touch-down', 'touch-frame', 'touch-up', 'touch-frame', 'touch-up', 'touch-frame'],
      'down, motion, a second finger, both up, each a frame',
    );
    const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) < 1e-3;
    const down = of(events, 'touch-down');
    t.ok(near(down[0]?.x, 0.5) && near(down[0]?.y, 0.25), `first finger down at 0.5, 0.25 (${down[0]?.x}, ${down[0]?.y})`);
    const mv = of(events, 'touch-motion')[0];
    t.ok(near(mv?.x, 0.75) && near(mv?.y, 0.5), `moved to 0.75, 0.5 (${mv?.x}, ${mv?.y})`);
    t.ok(near(down[1]?.x, 0.1) && near(down[1]?.y, 0.9), 'second finger at 0.1, 0.9');
    t.not(down[0]?.slot, down[1]?.slot, 'the two fingers have their own slots');
    t.same(of(events, 'touch-up').map((u) => u.slot), [down[0]?.slot, down[1]?.slot], 'each lifted in its slot');
    t.ok(touches.every((e) => e.device === touch?.id), 'all from the touchscreen');

    // hotplug: the touchscreen goes
    await vi.remove('touch');
    if (!(await waitFor(t, events, 'device-removed', (ev) => of(ev, 'device-removed').length >= 1))) return;
    const removed = of(events, 'device-removed');
    t.equal(removed[0]?.device.id, touch?.id, 'device-removed names the touchscreen');
    t.notOk(input.devices.some((d) => d.id === touch?.id), 'it is gone from devices');
    t.ok(input.devices.some((d) => d.id === kbd?.id), 'the keyboard stays');
  } finally {
    input.close();
    input.close();
    t.equal(testNative.countOpenFds(), fdsBefore, 'open fds back where they were after close (libinput, udev, every device)');
    await vi.close();
  }
});

t.test('the path backend on explicit device nodes', async (t) => {
  const vi = await VirtualInput.create('primebuf-path');
  const fdsBefore = testNative.countOpenFds();
  const input = openInput({ devices: [vi.keyboard.node, vi.pointer.node] });
  const events = collect(input);
  try {
    t.same(input.devices.map((d) => d.sysname).sort(), [vi.keyboard.sysname, vi.pointer.sysname].sort(), 'exactly the two nodes given');
    await vi.type('x');
    await vi.click(BTN_LEFT);
    await waitFor(t, events, 'x and a click', (ev) => of(ev, 'key').length >= 2 && of(ev, 'pointer-button').length >= 2);
    t.same(of(events, 'key').map((k) => [k.key, k.pressed, k.keysym, k.utf8]), [[KEY.X, true, XKB.x, 'x'], [KEY.X, false, XKB.x, 'x']], 'x typed');
    t.same(of(events, 'pointer-button').map((b) => [b.button, b.pressed]), [[BTN_LEFT, true], [BTN_LEFT, false]], 'the click');
    await vi.touchDown(0, 0.5, 0.5);
    await vi.touchUp(0);
    await vi.type('x');
    await waitFor(t, events, 'the next key', (ev) => of(ev, 'key').length >= 4);
    t.equal(events.filter((e) => e.type.startsWith('touch-')).length, 0, 'no touch: the touchscreen was not given');
    // a path device that goes is removed by libinput itself (ENODEV on read)
    await vi.remove('pointer');
    await waitFor(t, events, 'device-removed', (ev) => of(ev, 'device-removed').length >= 1);
    t.equal(of(events, 'device-removed')[0]?.device.sysname, vi.pointer.sysname, 'the pointer removed');
  } finally {
    input.close();
    t.equal(testNative.countOpenFds(), fdsBefore, 'open fds back where they were');
    await vi.close();
  }
});

t.test('the opener: called for every device, each fd closed once, across suspend and resume', async (t) => {
  const vi = await VirtualInput.create('primebuf-opener');
  const fdsBefore = testNative.countOpenFds();
  const open = new Map<number, string>();
  const log: string[] = [];
  let opens = 0;
  let closes = 0;
  const opener: DeviceOpener = {
    open(path, flags) {
      const fd = openSync(path, flags);
      opens++;
      open.set(fd, path);
      log.push(`open ${path}`);
      return fd;
    },
    close(fd) {
      closes++;
      t.ok(open.has(fd), `close(${fd}): an fd the opener gave`);
      log.push(`close ${open.get(fd)}`);
      open.delete(fd);
      closeSync(fd);
    },
  };
  const nodes = [vi.keyboard.node, vi.pointer.node, vi.touch.node];
  const input = openInput({ devices: nodes, opener });
  const events = collect(input);
  try {
    t.equal(opens, 3, 'three devices opened through the opener');
    t.same([...open.values()].sort(), [...nodes].sort(), 'each node once');
    input.suspend();
    t.equal(open.size, 0, 'suspend: every device closed through the opener');
    t.equal(closes, 3, 'three closes');
    input.resume();
    t.equal(open.size, 3, 'resume: all three opened again');
    t.equal(opens, 6, 'six opens so far');
    await vi.type('i');
    await waitFor(t, events, 'a key after resume', (ev) => of(ev, 'key').length >= 2);
    t.equal(of(events, 'key')[0]?.utf8, 'i', 'keys flow after resume');
  } finally {
    input.close();
    t.equal(testNative.countOpenFds(), fdsBefore, 'open fds back where they were');
    await vi.close();
  }
  t.equal(closes, opens, `opens (${opens}) and closes (${closes}) equal at close`);
  t.equal(open.size, 0, 'no fd the opener gave is left open');

  // on the udev seat too: a device that appears later is opened through the opener
  const seatFds = testNative.countOpenFds();
  let seatOpens = 0;
  let seatCloses = 0;
  const seatOpener: DeviceOpener = {
    open(path, flags) {
      const fd = openSync(path, flags);
      seatOpens++;
      return fd;
    },
    close(fd) {
      seatCloses++;
      closeSync(fd);
    },
  };
  const seat = openInput({ opener: seatOpener });
  const seatEvents = collect(seat);
  const before = seatOpens;
  t.equal(before, seat.devices.length, 'one open per seat0 device at open');
  const late = await VirtualInput.create('primebuf-late');
  await waitFor(t, seatEvents, 'the late devices added', (ev) => of(ev, 'device-added').filter((e) => e.device.name.startsWith('primebuf-late ')).length >= 3);
  t.equal(seatOpens, before + 3, 'the three hotplugged devices opened through the opener');
  await late.close();
  await waitFor(t, seatEvents, 'the late devices removed', (ev) => of(ev, 'device-removed').filter((e) => e.device.name.startsWith('primebuf-late ')).length >= 3);
  seat.close();
  t.equal(seatCloses, seatOpens, `seat0: opens (${seatOpens}) and closes (${seatCloses}) equal at close`);
  t.equal(testNative.countOpenFds(), seatFds, 'open fds back where they were');
});

t.test('udevd, started for the virtual devices, stops with the last of them', async (t) => {
  t.notOk(existsSync('/run/udev/control'), 'no udev control socket: the tests after this one run on the rig as it boots');
});
