/**
 * primebuf/input: libinput and libxkbcommon for a compositor (issue 21). The shapes are in
 * types.ts; openInput (the native context) comes with the input work.
 */
export type * from './types.js';
