/**
 * Input from libinput with key state from libxkbcommon (`primebuf/input`). The shapes are in
 * types.ts; openInput (the native context) comes with the input work of issue 21 (at merge this
 * file is the input branch's, a superset of this one).
 */
export type * from './types.js';

/** Linux evdev codes the tests and simple policies name (linux/input-event-codes.h). */
export const KEY = {
  ESC: 1,
  BACKSPACE: 14,
  TAB: 15,
  ENTER: 28,
  LEFTCTRL: 29,
  LEFTSHIFT: 42,
  RIGHTSHIFT: 54,
  LEFTALT: 56,
  SPACE: 57,
  CAPSLOCK: 58,
  RIGHTCTRL: 97,
  RIGHTALT: 100,
  LEFTMETA: 125,
} as const;

/** Mouse buttons (BTN_*): what pointer-button events carry. */
export const BTN = { LEFT: 0x110, RIGHT: 0x111, MIDDLE: 0x112 } as const;
