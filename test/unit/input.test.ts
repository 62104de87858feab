// primebuf/input without devices: xkb keymaps compiled from names (and XKB_DEFAULT_*), keys
// through the xkb state (keysym and text in the state before the key, modifiers when a key
// changes them), typed errors for names xkb cannot compile and for device paths libinput cannot
// take. (libinput's path backend, like its udev backend, takes only devices udev has initialized:
// the opener and real devices are proven in the VM with udevd, test/vkms/input.test.ts.)
import t from 'tap';
import { InputError, KeyState, KeymapError, openInput, KEY } from '../../src/input/index.js';
import { testNative } from '../../src/native.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { ClosedError } from '../../src/errors.js';

const XKB_KEY_h = 0x68;
const XKB_KEY_i = 0x69;
const XKB_KEY_A = 0x41;
const XKB_KEY_Shift_L = 0xffe1;
const XKB_KEY_z = 0x7a;
const XKB_KEY_y = 0x79;
const KEY_H = 35;
const KEY_I = 23;
const KEY_A = 30;
const KEY_Y = 21;

t.test('a us keymap: text v1, keys typed give their keysyms and text', async (t) => {
  const ks = new KeyState({ layout: 'us' });
  t.match(ks.keymap, /^xkb_keymap \{/, 'the keymap is XKB text v1');
  t.match(ks.keymap, /xkb_symbols/, 'with its symbols');
  const h = ks.key(KEY_H, true);
  t.same(h, { keysym: XKB_KEY_h, utf8: 'h' }, 'h pressed: keysym h, text "h", no modifiers change');
  t.same(ks.key(KEY_H, false), { keysym: XKB_KEY_h, utf8: 'h' }, 'h released');
  t.same(ks.key(KEY_I, true), { keysym: XKB_KEY_i, utf8: 'i' }, 'i');
  ks.key(KEY_I, false);
  const shift = ks.key(KEY.LEFTSHIFT, true);
  t.equal(shift.keysym, XKB_KEY_Shift_L, 'shift is Shift_L');
  t.equal(shift.utf8, '', 'shift has no text');
  t.same(shift.modifiers, { depressed: 1, latched: 0, locked: 0, group: 0 }, 'shift down changes the modifiers: Shift depressed');
  t.same(ks.key(KEY_A, true), { keysym: XKB_KEY_A, utf8: 'A' }, 'a with shift held is A, the modifiers unchanged');
  ks.key(KEY_A, false);
  t.same(ks.key(KEY.LEFTSHIFT, false).modifiers, { depressed: 0, latched: 0, locked: 0, group: 0 }, 'shift up: modifiers back to 0');
  const caps = ks.key(KEY.CAPSLOCK, true);
  t.equal(caps.modifiers?.depressed, 2, 'caps lock down: Lock depressed');
  t.equal(caps.modifiers?.locked, 2, 'and locked');
  ks.key(KEY.CAPSLOCK, false);
  t.same(ks.key(KEY_A, true), { keysym: XKB_KEY_A, utf8: 'A' }, 'a with caps lock is A');
  ks.close();
  ks.close();
  t.throws(() => ks.key(KEY_A, true), ClosedError, 'a closed KeyState refuses keys');
});

t.test('the layout decides: de swaps y and z', async (t) => {
  const us = new KeyState({ layout: 'us' });
  const de = new KeyState({ layout: 'de' });
  t.equal(us.key(KEY_Y, true).keysym, XKB_KEY_y, 'us: the Y key is y');
  t.equal(de.key(KEY_Y, true).keysym, XKB_KEY_z, 'de: the Y key is z');
  t.not(us.keymap, de.keymap, 'the two keymaps differ');
  us.close();
  de.close();
});

t.test('unset names come from XKB_DEFAULT_*', async (t) => {
  const saved = process.env.XKB_DEFAULT_LAYOUT;
  process.env.XKB_DEFAULT_LAYOUT = 'de';
  try {
    const ks = new KeyState();
    t.equal(ks.key(KEY_Y, true).utf8, 'z', 'XKB_DEFAULT_LAYOUT=de with no layout given: the Y key types z');
    ks.close();
    const named = new KeyState({ layout: 'us' });
    t.equal(named.key(KEY_Y, true).utf8, 'y', 'a layout given wins over XKB_DEFAULT_LAYOUT');
    named.close();
  } finally {
    if (saved === undefined) delete process.env.XKB_DEFAULT_LAYOUT;
    else process.env.XKB_DEFAULT_LAYOUT = saved;
  }
});

t.test('names xkb cannot compile: KeymapError with the names and xkb log', async (t) => {
  const err = t.throws(() => new KeyState({ layout: 'no-such-layout' })) as unknown as KeymapError;
  t.ok(err instanceof KeymapError, 'KeymapError');
  t.equal(err.code, 'ERR_PRIMEBUF_KEYMAP');
  t.same(err.names, { layout: 'no-such-layout' }, 'the names asked for');
  t.match(err.log, /no-such-layout/, "xkb's log names the layout");
  t.match(err.message, /layout="no-such-layout"/, 'the message names it');
  const fromOpen = t.throws(() => openInput({ devices: [], keymap: { layout: 'no-such-layout' } }));
  t.ok(fromOpen instanceof KeymapError, 'openInput throws the same KeymapError before touching any device');
  t.throws(() => new KeyState({ layout: 3 as unknown as string }), InvalidArgumentError, 'a non-string name: InvalidArgumentError');
});

t.test('a device path that does not exist: InputError naming it, nothing left open', async (t) => {
  const before = testNative.countOpenFds();
  const err = t.throws(() => openInput({ devices: ['/nonexistent/event99'] })) as unknown as InputError;
  t.ok(err instanceof InputError, 'InputError');
  t.equal(err.reason, 'device');
  t.equal(err.path, '/nonexistent/event99', 'the path');
  t.match(err.message, /\/nonexistent\/event99/, 'the message names it');
  t.equal(testNative.countOpenFds(), before, 'no fd left open');
});

t.test('an opener must have open and close', async (t) => {
  t.throws(() => openInput({ devices: [], opener: { open: 1 } as unknown as { open(): number; close(): void } }), InvalidArgumentError, 'an opener without functions: InvalidArgumentError');
  t.throws(() => openInput({ devices: ['' ] }), InvalidArgumentError, 'an empty device path: InvalidArgumentError');
});

t.test('a path context with no devices: open, keymap, suspend/resume, close twice', async (t) => {
  const before = testNative.countOpenFds();
  const input = openInput({ devices: [], keymap: { layout: 'us' } });
  t.same(input.devices, [], 'no devices');
  t.match(input.keymap, /^xkb_keymap \{/, 'its keymap');
  input.suspend();
  input.resume();
  input.close();
  input.close();
  t.throws(() => input.suspend(), ClosedError, 'closed');
  t.equal(testNative.countOpenFds(), before, "libinput's fds closed");
});
