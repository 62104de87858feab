// Benchmark: camera to screen (issue 13). vivid's 640x480 XR24 frames shown on vkms's primary
// plane through the presenter, zero-copy (the camera's buffer on the plane) against the copy path
// (the presenter's forceCopy: every frame copied into its ring). Per path, one JSON line:
// latency to the page flip's timestamp (CLOCK_MONOTONIC) that showed the frame, from the buffer's
// V4L2 timestamp and from the moment DQBUF returned it (both CLOCK_MONOTONIC), and the process's
// CPU time per frame (user + system, process.cpuUsage), with the bytes copied. vivid stamps a
// frame with its nominal schedule (frame period x sequence from the stream start), not with the
// time it finished drawing: under emulation, where it draws late, the V4L2 stamp can lie after
// the flip (negative latency); the DQBUF-to-flip figure is the one primebuf is responsible for.
// Needs vivid and vkms (the VM rig), after `npm run build`:
//   node scripts/vkms-vm.mjs run -- node dist/bench/camera.js [frames]
// Under emulation vivid draws a few frames a second: the latency includes none of that (the
// timestamp is taken when the frame is done), the CPU per frame includes vivid's drawing only as
// far as it runs in this process's system time (it does not: it runs in a kernel thread).
import { loadavg } from 'node:os';
import { CameraSource, Device, Presenter, V4l2Device, listDevices, preferredMode, readResources } from 'primebuf';
import { openSystemAllocators } from 'primebuf/alloc';
import { describeKmsDevice } from 'primebuf/constraints';

const FRAMES = Number(process.argv[2] ?? 30);
/** The clock of the figures (bench/clock.mjs): "icount" under the rig's --icount (npm run bench:camera). */
const CLOCK = process.env.PRIMEBUF_VM_CLOCK === 'icount' ? 'icount' : 'wall';
const W = 640;
const H = 480;

function openVkms(): Device {
  for (const d of listDevices()) {
    if (d.nodeType !== 'primary') continue;
    const dev = Device.open(d.path);
    if (dev.version.name === 'vkms') return dev;
    dev.close();
  }
  throw new Error('no vkms device (run in the VM rig)');
}

async function run(path: 'zero-copy' | 'copy'): Promise<Record<string, unknown>> {
  const vkms = openVkms();
  const sys = openSystemAllocators();
  const cam = V4l2Device.open('/dev/video0');
  const res = readResources(vkms, { probe: true });
  const conn = res.connectors.find((c) => !c.writeback)!;
  const mode = preferredMode(conn)!;
  const presenter = new Presenter({ device: vkms, crtcId: res.crtcs[0]!.id, connectorId: conn.id, mode, forceCopy: path === 'copy' });
  const src = CameraSource.open({ camera: cam, display: describeKmsDevice(vkms), pool: sys.pool, width: W, height: H });
  const dst = { x: (mode.hdisplay - W) / 2, y: (mode.vdisplay - H) / 2, width: W, height: H };
  const latencies: number[] = [];
  const fromDqbuf: number[] = [];
  let prev: Awaited<ReturnType<CameraSource['next']>> | undefined;
  let cpu: NodeJS.CpuUsage | undefined;
  let counted = 0;
  try {
    for (let i = 0; i < FRAMES + 2; i++) {
      const f = await src.next();
      if (i === 2) cpu = process.cpuUsage(); // the first frames make the imports and the modeset
      const r = await presenter.present({ buffer: f.buffer, placement: { dst }, constraints: src.constraints });
      prev?.release();
      prev = f;
      if (i < 2) continue;
      counted++;
      if (r.presentation) {
        latencies.push(Number(r.presentation.timestampNs / 1000n) - f.timestampUs);
        fromDqbuf.push(Number((r.presentation.timestampNs - f.dequeuedNs) / 1000n));
      }
    }
    const used = process.cpuUsage(cpu);
    const st = presenter.stats;
    const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]! / 1000;
    const stats = (xs: number[]) => ({ p50: q(xs, 0.5), p90: q(xs, 0.9), max: q(xs, 1) });
    return {
      bench: 'camera-to-screen', path, clock: CLOCK, frames: counted, size: `${W}x${H}`, format: 'XRGB8888', memory: src.memory,
      v4l2TimestampToFlipMs: stats(latencies), dqbufToFlipMs: stats(fromDqbuf),
      cpuUsPerFrame: { user: Math.round(used.user / counted), system: Math.round(used.system / counted) },
      bytesCopiedPerFrame: Math.round(st.bytesCopied / Math.max(1, st.frames)), directFrames: st.directFrames, copiedFrames: st.copiedFrames,
      load: loadavg()[0], emulated: true,
    };
  } finally {
    presenter.close();
    src.stop();
    cam.close();
    sys.close();
    vkms.close();
  }
}

for (const path of ['zero-copy', 'copy'] as const) console.log(JSON.stringify(await run(path)));
