// composeLayers variants under icount: CPU per job (process.cpuUsage, sequential jobs)
import { composeLayers } from '../dist/src/scanout/compose.js';
import { fourcc } from '../dist/src/formats/index.js';
import { readFileSync } from 'node:fs';
const AR24 = fourcc('ARGB8888'), XR24 = fourcc('XRGB8888');
const surf = (w, h, f, v) => { const px = new Uint32Array(w * h); for (let i = 0; i < px.length; i++) px[i] = (v ^ Math.imul(i, 0x9e3779b1) & 0x7f7f7f7f) >>> 0 | 0x80000000; return { memory: px, format: f, stride: w * 4, width: w, height: h }; };
const target = surf(1024, 768, XR24, 0);
const top = surf(1024, 768, AR24, 1);
const sub = surf(384, 384, AR24, 2);
const clip = [{ x: 640, y: 384, width: 384, height: 384 }];
const L = {
  top: { kind: 'image', source: top, dst: { x: 0, y: 0, width: 1024, height: 768 }, rotation: 1 },
  topOpaque: { kind: 'image', source: top, dst: { x: 0, y: 0, width: 1024, height: 768 }, rotation: 1, opaque: true },
  sub: { kind: 'image', source: sub, dst: { x: 640, y: 384, width: 384, height: 384 }, rotation: 1 },
  subG: { kind: 'image', source: sub, guarded: true, dst: { x: 640, y: 384, width: 384, height: 384 }, rotation: 1 },
};
const cases = { empty: [], top: [L.top], topOpaque: [L.topOpaque], sub: [L.sub], subG: [L.subG], top_sub: [L.top, L.sub], top_subG: [L.top, L.subG] };
const N = 40;
for (const [name, layers] of Object.entries(cases)) {
  for (let i = 0; i < 5; i++) await composeLayers({ target, layers, clip });
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await composeLayers({ target, layers, clip });
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ name, msPerJob: +((c.user + c.system) / 1000 / N).toFixed(3), user: +(c.user / 1000 / N).toFixed(3), sys: +(c.system / 1000 / N).toFixed(3) }));
}
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1];
console.log('model', readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:(.*)$/m)?.[1]);
console.log('flags', flags);
