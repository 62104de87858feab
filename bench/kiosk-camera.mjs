#!/usr/bin/env node
// The kiosk showing a camera, for the benchmark's kiosk-camera case (bench/kiosk-vs-weston.mjs):
// the kiosk's own startKiosk (what `npm run kiosk -- --camera DEV` runs) in this process, and on
// SIGUSR2 the camera frames presented so far written to --probe FILE as JSON (with the signal's
// sequence number), so the benchmark can count the frames of its window from outside while it
// reads this process's CPU time from /proc. Nothing else runs here: the handler's cost (a
// stats() call and a small write, a few times a second) lands in the figure and is negligible
// against hundreds of frames.
//   node bench/kiosk-camera.mjs --device /dev/dri/card0 --camera /dev/video0 --socket NAME --probe FILE
import { renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { startKiosk } = await import(join(root, 'dist/compositor-example/kiosk.js'));
const { values } = parseArgs({ options: { device: { type: 'string' }, camera: { type: 'string' }, socket: { type: 'string' }, probe: { type: 'string' } } });
if (!values.camera || !values.probe) {
  console.error('usage: node bench/kiosk-camera.mjs --camera /dev/videoN --probe FILE [--device PATH] [--socket NAME]');
  process.exit(2);
}
// The handler goes in before the kiosk starts: the benchmark may signal as soon as the socket
// exists, and SIGUSR2 without a handler would end the process. Until the kiosk is up it says 0.
let kiosk;
let seq = 0;
process.on('SIGUSR2', () => {
  const c = kiosk?.stats().camera ?? { frames: 0, direct: 0, copied: 0, dropped: 0 };
  const tmp = `${values.probe}.tmp`;
  writeFileSync(tmp, JSON.stringify({ seq: ++seq, ...c }));
  renameSync(tmp, values.probe); // the reader never sees half a file
});
kiosk = await startKiosk({
  ...(values.device ? { device: values.device } : {}),
  ...(values.socket ? { socket: values.socket } : {}),
  camera: values.camera,
  log: (line) => console.log(`kiosk: ${line}`),
});
console.log(`WAYLAND_DISPLAY=${kiosk.socket}`);
await new Promise((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
await kiosk.close();
