#!/usr/bin/env node
// `npm run demo`: the kiosk compositor (compositor-example/kiosk.ts) with the demo client
// (compositor-example/demo-client.ts) on a real KMS device, then weston-simple-shm beside it,
// then a second demo client with a subsurface over its toplevel (--overlay: a semi-transparent
// ARGB8888 square that the kiosk must blend over the animation; its capture is checked against
// the blend computed here, and the demo fails when it differs); screenshots through the
// writeback connector, and a report (report.json, report.md) of what went to the plane directly
// and what was copied, in a folder it prints.
//
// It installs and builds what it needs the way `npm test` does (apt packages, npm ci, the
// addon, tsc). With a KMS device this machine can drive (a /dev/dri/card* with a connected
// connector) it runs there; without one it runs in the vkms VM (scripts/vkms-vm.mjs), which
// writes the results into the host folder through a writable virtio-9p share.
//
//   npm run demo [-- --out DIR] [--vm] [--seconds S]
//   node scripts/demo.mjs --run-here DIR [--device /dev/dri/cardN] [--seconds S]   (the session itself)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { root, step } from './lib.mjs';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    vm: { type: 'boolean' },
    'run-here': { type: 'string' },
    device: { type: 'string' },
    seconds: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

const T0 = Date.now();
const progress = (line) => process.stderr.write(`[demo +${((Date.now() - T0) / 1000).toFixed(1)}s] ${line}\n`);
const dist = (p) => join(root, 'dist', p);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** How long each phase of the session shows a client, in seconds of frames at the mode's rate. */
const PHASE_SECONDS = Number(values.seconds ?? 3);

// ---------------------------------------------------------------------------------------------
// The session: kiosk + clients + captures, on the device at hand (the VM's vkms, or this machine's).

function commandExists(cmd) {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, cmd)));
}

/** Spawns a Wayland client of the kiosk; its output goes to `logFile`'s lines. */
function client(cmd, args, socket, lines) {
  const child = spawn(cmd, args, { env: { ...process.env, WAYLAND_DISPLAY: socket }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  for (const s of [child.stdout, child.stderr]) s.on('data', (d) => lines.push(...d.toString().trimEnd().split('\n').map((l) => `${cmd}: ${l}`)));
  return { child, exited };
}

function cpuMs(stats) {
  return (stats.cpu.userUs + stats.cpu.systemUs) / 1000;
}

/** The counters between two kiosk.stats() snapshots, and the kiosk's CPU per frame over it. */
function window(name, a, b, seconds) {
  const frames = b.frames - a.frames;
  return {
    name,
    frames,
    fps: frames / seconds,
    direct: b.direct - a.direct,
    copied: b.copied - a.copied,
    bytesCopied: b.bytesCopied - a.bytesCopied,
    commits: b.commits - a.commits,
    imports: b.imports - a.imports,
    addfb2: b.addfb2 - a.addfb2,
    allocations: b.allocations - a.allocations,
    kioskCpuMsPerFrame: frames > 0 ? (cpuMs(b) - cpuMs(a)) / frames : null,
  };
}

async function session(out) {
  const { startKiosk } = await import(dist('compositor-example/kiosk.js'));
  const { writeScreenshot } = await import(dist('compositor-example/screenshot.js'));
  const { frameShown, sceneMismatches, overlayMismatches, overlayRect } = await import(dist('compositor-example/demo-client-scene.js'));
  mkdirSync(out, { recursive: true });
  process.env.XDG_RUNTIME_DIR ??= `/run/user/${process.getuid?.() ?? 0}`;
  mkdirSync(process.env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });

  const kioskLog = [];
  const clientLog = [];
  // No default cursor: every screenshot is checked pixel for pixel against what the clients drew,
  // and the arrow at the output's centre would lie over the subsurface step's square.
  const kiosk = await startKiosk({ ...(values.device ? { device: values.device } : {}), socket: 'primebuf-demo', hideCursor: true, log: (l) => kioskLog.push(l) });
  const mode = { width: kiosk.output?.mode?.hdisplay ?? null, height: kiosk.output?.mode?.vdisplay ?? null };
  progress(`kiosk on ${kiosk.device.path ?? values.device ?? 'the first KMS device'}, socket ${kiosk.socket}`);
  let frames = 0;
  let last = null;
  const waiters = [];
  kiosk.onFrame((info) => {
    frames++;
    last = info;
    for (const w of waiters.filter((x) => frames >= x.target)) {
      waiters.splice(waiters.indexOf(w), 1);
      clearTimeout(w.timer);
      w.resolve(true);
    }
  });
  /** Resolves with true after `n` more frames were shown, false when `ms` passed first. */
  const afterFrames = (n, ms = 30000) =>
    new Promise((resolve) => {
      const w = { target: frames + n, resolve, timer: null };
      waiters.push(w);
      w.timer = setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) waiters.splice(i, 1);
        resolve(false);
      }, ms);
    });
  const shots = [];
  const capture = async (name, check) => {
    try {
      const c = await kiosk.capture();
      const file = `${String(shots.length + 1).padStart(2, '0')}-${name}.png`;
      const shot = { file, width: c.width, height: c.height, showing: last?.buffer ?? null, path: last?.path ?? null, raw: c };
      if (check) Object.assign(shot, check(c));
      shots.push(shot);
      progress(`captured ${file}${shot.frame !== undefined ? ` (demo frame ${shot.frame}, ${shot.exact ? 'every pixel as drawn' : `${shot.mismatches} pixels differ`})` : ''}`);
    } catch (err) {
      progress(`capture ${name} failed: ${err.message}`);
      shots.push({ file: null, name, error: err.message });
    }
  };
  const pixelOf = (c) => {
    const v = new DataView(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength);
    return (x, y) => v.getUint32(y * c.stride + x * 4, true);
  };
  const demoCheck = (c) => {
    const px = pixelOf(c);
    const frame = frameShown(c.width, c.height, px);
    if (frame === null) return { frame: null, exact: false };
    const m = sceneMismatches(frame, c.width, c.height, px);
    return { frame, exact: m.count === 0, mismatches: m.count };
  };
  /** The overlay client's frame with its subsurface blended over it (within one step a channel). */
  const overlayCheck = (c) => {
    const px = pixelOf(c);
    const frame = frameShown(c.width, c.height, px);
    const overlay = overlayRect(c.width, c.height);
    if (frame === null) return { frame: null, exact: false, overlay, blend: false, firstMismatches: ['no frame counter in the corner'] };
    const m = overlayMismatches(frame, c.width, c.height, px);
    return { frame, exact: m.count === 0, mismatches: m.count, overlay, blend: m.count === 0, firstMismatches: m.first };
  };

  const windows = [];
  const measured = async (name, fn) => {
    const a = kiosk.stats();
    const t = Date.now();
    await fn();
    windows.push(window(name, a, kiosk.stats(), (Date.now() - t) / 1000));
  };

  // 1. the demo client: dumb buffers from the scanout tranche, on the plane with no copy
  const clientReport = join(out, 'demo-client.json');
  progress('starting the demo client');
  const demo = client(process.execPath, [dist('compositor-example/demo-client.js'), '--frames', '1000000', '--report', clientReport], kiosk.socket, clientLog);
  await afterFrames(30);
  await capture('demo-client', demoCheck);
  await measured('demo client', () => afterFrames(Math.round(60 * PHASE_SECONDS), 4000 * PHASE_SECONDS));
  await capture('demo-client', demoCheck);

  // 2. weston-simple-shm on top: wl_shm; its sealed pools go to the plane through udmabuf (zero copy)
  let shm = null;
  if (commandExists('weston-simple-shm')) {
    progress('starting weston-simple-shm (wl_shm with sealed pools: the kiosk scans them out through udmabuf, or copies them when it cannot)');
    shm = client('weston-simple-shm', [], kiosk.socket, clientLog);
    const shmShown = () => kiosk.stats().buffers.some((b) => b.client === shm.child.pid);
    for (const end = Date.now() + 30000; !shmShown() && Date.now() < end; ) await afterFrames(1, 1000);
    if (!shmShown()) progress('weston-simple-shm: no buffer of it reached the kiosk');
    await afterFrames(30, 10000);
    await capture('weston-simple-shm');
    await measured('weston-simple-shm', () => afterFrames(Math.round(60 * PHASE_SECONDS), 4000 * PHASE_SECONDS));
    shm.child.kill('SIGINT');
    const e = await Promise.race([shm.exited, sleep(10000).then(() => null)]);
    if (!e) shm.child.kill('SIGKILL');
    shm.exit = e;
    progress(`weston-simple-shm stopped (${e ? `exit ${e.code ?? e.signal}` : 'killed'}); the demo client is back`);
    await afterFrames(30, 10000);
    await capture('demo-client-again', demoCheck);
  } else {
    progress('weston-simple-shm is not installed (Debian package weston): the wl_shm client is left out');
  }

  // 3. a subsurface: a second demo client with --overlay on top (the kiosk shows the newest
  // toplevel), its semi-transparent square blended over its animation by the kiosk
  const overlayReport = join(out, 'demo-client-overlay.json');
  progress('starting the demo client with a subsurface over its toplevel (--overlay: a semi-transparent ARGB8888 square)');
  const ov = client(process.execPath, [dist('compositor-example/demo-client.js'), '--frames', '1000000', '--overlay', '--report', overlayReport], kiosk.socket, clientLog);
  // mapped by the kiosk (its log; a scene frame is not listed in stats().buffers)
  const ovShown = () => kioskLog.some((l) => new RegExp(`^client ${ov.child.pid}: toplevel( \\S+)? mapped`).test(l));
  for (const end = Date.now() + 30000; !ovShown() && ov.child.exitCode === null && Date.now() < end; ) await afterFrames(1, 1000);
  let overlayOk = false;
  if (ovShown()) {
    await afterFrames(30, 10000);
    await capture('demo-client-subsurface', overlayCheck);
    const shot = shots.at(-1);
    overlayOk = shot?.blend === true;
    progress(overlayOk ? 'the subsurface is blended over the demo client exactly' : `the subsurface capture differs from the expected blend${shot?.firstMismatches ? `: ${shot.firstMismatches.join('; ')}` : ''}`);
    await measured('demo client with a subsurface', () => afterFrames(Math.round(60 * PHASE_SECONDS), 4000 * PHASE_SECONDS));
  } else progress('the demo client with --overlay showed nothing (see clients.log)');
  ov.child.kill('SIGTERM');
  const ovExit = await Promise.race([ov.exited, sleep(20000).then(() => null)]);
  if (!ovExit) ov.child.kill('SIGKILL');
  await afterFrames(30, 10000);

  demo.child.kill('SIGTERM');
  const demoExit = await Promise.race([demo.exited, sleep(20000).then(() => null)]);
  if (!demoExit) demo.child.kill('SIGKILL');
  const stats = kiosk.stats();
  await kiosk.close();

  for (const s of shots) {
    if (!s.raw) continue;
    writeScreenshot(join(out, s.file), s.raw);
    delete s.raw;
  }
  const demoReport = existsSync(clientReport) ? JSON.parse(readFileSync(clientReport, 'utf8')) : null;
  const overlayClient = existsSync(overlayReport) ? JSON.parse(readFileSync(overlayReport, 'utf8')) : null;
  writeFileSync(join(out, 'kiosk.log'), `${kioskLog.join('\n')}\n`);
  writeFileSync(join(out, 'clients.log'), `${clientLog.join('\n')}\n`);
  const w = mode.width ?? shots.find((s) => s.width)?.width ?? 0;
  const h = mode.height ?? shots.find((s) => s.height)?.height ?? 0;
  const report = {
    date: new Date().toISOString(),
    device: kiosk.device.path ?? values.device ?? null,
    mode: { width: w, height: h },
    framesShown: stats.frames,
    direct: stats.direct,
    copied: stats.copied,
    bytesCopied: stats.bytesCopied,
    commits: stats.commits,
    imports: stats.imports,
    addfb2: stats.addfb2,
    allocations: stats.allocations,
    kioskCpuMs: cpuMs(stats),
    kioskCpuMsPerFrame: stats.frames > 0 ? cpuMs(stats) / stats.frames : null,
    // every direct frame is a full-screen copy a copying compositor would have made
    copiesAvoided: stats.direct,
    bytesNotCopied: stats.direct * w * h * 4,
    windows,
    buffers: stats.buffers,
    screenshots: shots,
    demoClient: demoReport,
    demoClientExit: demoExit ? (demoExit.code ?? demoExit.signal) : 'killed',
    simpleShm: shm ? { exit: shm.exit ? (shm.exit.code ?? shm.exit.signal) : 'killed' } : 'not installed',
    subsurface: { blended: overlayOk, client: overlayClient, exit: ovExit ? (ovExit.code ?? ovExit.signal) : 'killed' },
  };
  writeFileSync(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, 'report.md'), markdown(report));
  progress(`report written: ${stats.frames} frames, ${stats.direct} direct, ${stats.copied} copied`);
  return demoExit?.code === 0 && demoReport?.error === null && overlayOk && overlayClient?.error === null ? 0 : 1;
}

const f1 = (x) => (x === null || x === undefined ? 'n/a' : Number(x).toFixed(1));
const f2 = (x) => (x === null || x === undefined ? 'n/a' : Number(x).toFixed(2));
const mb = (x) => `${(x / 1e6).toFixed(1)} MB`;

function markdown(r) {
  const d = r.demoClient;
  const lines = [
    `# primebuf kiosk demo (${r.date})`,
    '',
    `Device ${r.device}, mode ${r.mode.width}x${r.mode.height}.`,
    '',
    '| | |',
    '|---|---|',
    `| frames shown | ${r.framesShown} |`,
    `| direct (client buffer on the plane) | ${r.direct} |`,
    `| copied | ${r.copied} (${mb(r.bytesCopied)}) |`,
    `| copies avoided | ${r.copiesAvoided} full-screen copies (${mb(r.bytesNotCopied)}) |`,
    `| kiosk CPU | ${f1(r.kioskCpuMs)} ms in all, ${f2(r.kioskCpuMsPerFrame)} ms per frame |`,
    `| atomic commits, imports, AddFB2, allocations | ${r.commits}, ${r.imports}, ${r.addfb2}, ${r.allocations} |`,
    ...(d ? [`| demo client | ${d.frames} frames, ${d.presented} presented (${d.zeroCopy} ZERO_COPY), ${d.discarded} discarded, ${f1(d.fps)} fps, ${d.width}x${d.height} ${d.format} ${d.modifier} (${d.allocators.join(', ')}) |`] : []),
    '',
    '## Per client',
    '',
    '| client | frames | frame rate | direct | copied | bytes copied per frame | kiosk CPU per frame |',
    '|---|---|---|---|---|---|---|',
    ...r.windows.map((w) => `| ${w.name} | ${w.frames} | ${f1(w.fps)} fps | ${w.direct} | ${w.copied} | ${w.frames ? Math.round(w.bytesCopied / w.frames) : 0} | ${f2(w.kioskCpuMsPerFrame)} ms |`),
    '',
    '## Buffers',
    '',
    '| buffer | kind | size | format | modifier | path | why |',
    '|---|---|---|---|---|---|---|',
    ...r.buffers.map((b) => `| ${b.name} | ${b.kind} | ${b.width}x${b.height} | ${b.format} | ${b.modifier} | ${b.path} | ${[...new Set(b.reasons)].join('; ') || '-'} |`),
    '',
    '## Screenshots (writeback)',
    '',
    ...r.screenshots.map((s) => (s.file ? `- ${s.file}: ${s.showing ?? 'black'} (${s.path})${s.frame !== undefined ? `, demo frame ${s.frame}${s.exact ? (s.overlay ? ', the subsurface blended over it exactly' : ', every pixel as drawn') : s.overlay ? `, ${s.mismatches ?? 'all'} pixels differ from the expected blend` : ''}` : ''}\n\n  ![${s.file}](${s.file})` : `- ${s.name}: no capture (${s.error})`)),
    '',
    '## Subsurface',
    '',
    r.subsurface.blended
      ? `The demo client's subsurface (a semi-transparent ARGB8888 square, ${r.subsurface.client?.overlay ? `${r.subsurface.client.overlay.width}x${r.subsurface.client.overlay.height} at ${r.subsurface.client.overlay.x},${r.subsurface.client.overlay.y}, ${r.subsurface.client.overlay.format} ${r.subsurface.client.overlay.modifier}` : ''}) is blended over its toplevel as expected.`
      : `FAILED: the demo client's subsurface is not blended over its toplevel as expected (${r.subsurface.client?.error ?? 'see the screenshot'}).`,
    '',
  ];
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The host side: build, find a device, run the session here or in the VM.

/** A /dev/dri/card* with a connected (non-writeback) connector, or null. */
async function drivableDevice() {
  if (!existsSync('/dev/dri')) return null;
  const pb = await import(dist('src/index.js'));
  for (const d of pb.listDevices().filter((x) => x.nodeType === 'primary')) {
    let card;
    try {
      card = pb.Device.open(d.path);
      const res = pb.readResources(card, { probe: true });
      if (res.connectors.some((c) => !c.writeback && c.connection === 'connected')) return d.path;
    } catch {
      // not a KMS device we may drive
    } finally {
      card?.close();
    }
  }
  return null;
}

async function host() {
  const { prepareBuild } = await import('./test.mjs');
  prepareBuild();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d\d\dZ$/, 'Z');
  const out = resolve(values.out ?? join(root, 'demo-output', stamp));
  mkdirSync(out, { recursive: true });
  const device = values.vm ? null : await drivableDevice();
  let code;
  if (device) {
    step(`demo on ${device}`);
    values.device = device;
    code = await session(out);
  } else {
    step('demo in the vkms VM (no KMS device with a connected display here)');
    if (/\s|,/.test(out)) throw new Error(`${out}: the VM shares the output folder by path; no spaces or commas`);
    const { runInVm } = await import('./vm/run.mjs');
    const mnt = '/run/primebuf-demo';
    process.env.PRIMEBUF_VM_QEMU_ARGS = [process.env.PRIMEBUF_VM_QEMU_ARGS ?? '',
      `-fsdev local,id=demoout,path=${out},security_model=none -device virtio-9p-pci,fsdev=demoout,mount_tag=demoout`].join(' ').trim();
    const inner = `mkdir -p ${mnt} && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 demoout ${mnt} && exec node --single-threaded-gc --no-memory-reducer scripts/demo.mjs --run-here ${mnt} --seconds ${PHASE_SECONDS}`;
    code = await runInVm(['/bin/sh', '-c', inner], { cwd: root, timeout: 900 });
  }
  const md = join(out, 'report.md');
  if (existsSync(md)) {
    process.stdout.write(`\n${readFileSync(md, 'utf8')}\n`);
    console.log(`demo output: ${relative(process.cwd(), out) || '.'} (report.md, report.json, PNG screenshots, logs)`);
  } else {
    console.error(`demo: no report in ${out} (exit ${code})`);
    code ||= 1;
  }
  return code;
}

if (values.help) {
  console.log('usage: npm run demo [-- --out DIR] [--vm] [--seconds S]');
  process.exit(0);
}
(values['run-here'] ? session(resolve(values['run-here'])) : host()).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`demo: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
