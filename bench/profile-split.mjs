// Where a .cpuprofile's time went after its first S seconds (past start-up), per frame:
//   node bench/profile-split.mjs DIR FPS [S]
// FPS: the frame rate over the window (the benchmark's fps), in the profile's clock: the window's
// frames are its length times FPS.
// Categories: idle; the garbage collector; JavaScript by where its code lives (primebuf's src/,
// the kiosk's compositor-example/, Node's own); native functions (an addon's or Node's C++ called
// from JavaScript, e.g. the atomic commit, libwayland's dispatch: their system calls included,
// which the profile cannot tell from user time); (program): V8 and the event loop outside any
// function.
import { readFileSync, readdirSync } from 'node:fs';

const [dir, fpsArg, afterArg] = process.argv.slice(2);
const fps = Number(fpsArg);
const after = Number(afterArg ?? 5) * 1e6;
for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
  const p = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const cat = new Map();
  const fns = new Map();
  let t = 0;
  let span = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < after) return;
    span += dt;
    const n = byId.get(id);
    const { functionName: name, url } = n.callFrame;
    let c;
    if (name === '(idle)') c = 'idle';
    else if (name === '(garbage collector)') c = 'gc';
    else if (name === '(program)') c = 'program';
    else if (url.includes('/dist/src/')) c = 'js primebuf';
    else if (url.includes('/compositor-example/')) c = 'js kiosk';
    else if (url === '') c = 'native';
    else c = 'js node';
    cat.set(c, (cat.get(c) ?? 0) + dt);
    if (c === 'native' || c.startsWith('js')) fns.set(`${c}: ${name || '(anon)'} ${url.split('/').slice(-2).join('/')}`, (fns.get(`${c}: ${name || '(anon)'} ${url.split('/').slice(-2).join('/')}`) ?? 0) + dt);
  });
  const busy = span - (cat.get('idle') ?? 0);
  const frames = Math.round((span / 1e6) * fps);
  console.log(JSON.stringify({ profile: f, windowMs: +(span / 1000).toFixed(1), busyMs: +(busy / 1000).toFixed(1), frames, busyMsPerFrame: +(busy / 1000 / frames).toFixed(4) }));
  for (const [k, v] of [...cat].sort((a, b) => b[1] - a[1])) if (k !== 'idle') console.log(`${k.padEnd(12)} ${(v / 1000 / frames).toFixed(4)} ms/frame  ${((v / busy) * 100).toFixed(1)} %`);
  for (const [k, v] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${(v / 1000 / frames).toFixed(4)}  ${k}`);
}
