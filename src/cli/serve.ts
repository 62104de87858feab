/**
 * `primebuf serve`: a Wayland server with only what a buffer client needs (wl_compositor and
 * wl_surface enough to ask for surface feedback, wl_shm, one wl_output, xdg_wm_base enough for
 * a toplevel, linux-dmabuf v5), which imports every dma-buf through PRIME on the main device and logs every
 * buffer a client creates (format, modifier, planes, verdict of validation and import). Runs
 * until SIGINT/SIGTERM. Client developers test their dma-buf paths against the real kernel.
 */
import { parseArgs } from 'node:util';
import { Device, listDevices } from '../kms/index.js';
import { formatName } from '../formats/index.js';
import { WaylandServer } from '../wayland/server.js';
import { ShmBuffer, installShm } from '../wayland/shm.js';
import { LinuxDmabuf, type BufferVerdict } from '../wayland/linux-dmabuf.js';
import { installMinimalShell } from '../wayland/minimal-shell.js';
import { kmsFormats } from '../wayland/kms-formats.js';

const HELP = `usage: primebuf serve [--device /dev/dri/cardN] [--socket NAME] [--output WxH] [--log] [--json]

A Wayland server for testing dma-buf clients against the real kernel: wl_compositor, wl_shm,
one wl_output, xdg_wm_base and zwp_linux_dmabuf_v1 version 5 (feedback with the device's render
tranche and, for surfaces given a buffer, a scanout tranche from the KMS primary plane). Every
buffer a client creates is validated, imported through PRIME on the device and logged. Nothing
is displayed: the wl_output only tells clients what size to render.

  --device PATH   DRM device with KMS planes (default: the first primary node with planes)
  --socket NAME   socket name in $XDG_RUNTIME_DIR (default: first free wayland-N)
  --output WxH    the mode of the advertised wl_output (default 1024x768; clients that size
                  their buffers to the output render less with a small one)
  --log           log every buffer and client (default: buffers only)
  --json          one JSON object per log line
  --help          this text`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      device: { type: 'string' },
      socket: { type: 'string' },
      output: { type: 'string', default: '1024x768' },
      log: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const size = /^(\d+)x(\d+)$/.exec(values.output ?? '');
  if (!size || Number(size[1]) < 1 || Number(size[2]) < 1) {
    console.error(`primebuf serve: --output ${values.output}: expected WIDTHxHEIGHT`);
    return 2;
  }
  if (!process.env.XDG_RUNTIME_DIR) {
    console.error('primebuf serve: XDG_RUNTIME_DIR is not set (the socket lives there)');
    return 1;
  }
  let device: Device;
  if (values.device) {
    try {
      device = Device.open(values.device);
    } catch (err) {
      console.error(`primebuf serve: ${values.device}: ${(err as Error).message}`);
      return 1;
    }
    if (planeCount(device) === 0) {
      console.error(`primebuf serve: ${values.device} (${device.version.name}) has no KMS planes; pass a display device`);
      device.close();
      return 1;
    }
  } else {
    const found = openFirstWithPlanes();
    if (!found) {
      console.error('primebuf serve: no primary DRM node with KMS planes found (use --device)');
      return 1;
    }
    device = found;
  }
  const path = device.path;
  const { all, primary } = kmsFormats(device);
  if (all.isEmpty) {
    console.error(`primebuf serve: ${path} reports no plane formats`);
    device.close();
    return 1;
  }
  const json = values.json;
  const emit = (kind: string, text: string, data: Record<string, unknown>): void => {
    if (json) console.log(JSON.stringify({ time: new Date().toISOString(), kind, ...data }));
    else console.log(`[${new Date().toISOString()}] ${kind}: ${text}`);
  };

  const server = new WaylandServer();
  // primebuf's own wl_shm (ARGB8888 and XRGB8888, every buffer a copy source: nothing is shown)
  installShm(server);
  const seenShm = new WeakSet<ShmBuffer>();
  const dmabuf = LinuxDmabuf.forKmsDevice(server, device, {
    onVerdict: (v: BufferVerdict) => {
      const who = `client ${v.client.pid}`;
      const what = v.attributes ? describe(v.attributes) : '';
      const text = `${who} ${v.request} ${what} -> ${v.outcome}${v.problem ? ` ${v.problem.error}` : ''}: ${v.detail}`;
      emit('buffer', text, {
        client: { pid: v.client.pid, uid: v.client.uid },
        request: v.request,
        outcome: v.outcome,
        error: v.problem?.error ?? null,
        detail: v.detail,
        buffer: v.attributes ?? null,
        importer: v.importer,
      });
    },
  });
  installMinimalShell(server, {
    // The one surface a buffer client shows would be fullscreen on the primary plane: eligible
    // for scanout as soon as it shows a buffer.
    onSurfaceBuffer: (surface, buffer) => {
      dmabuf.setScanoutEligible(surface, true);
      // wl_shm buffers: logged the first time a surface shows one
      const shm = ShmBuffer.from(buffer);
      if (shm && !seenShm.has(shm)) {
        seenShm.add(shm);
        const fmt = formatName(shm.format);
        const { width, height, stride, offset } = shm;
        const sealed = shm.pool.sealedShrink;
        emit('buffer', `client ${buffer.client.pid} wl_shm ${width}x${height} ${fmt} stride ${stride} offset ${offset}${sealed ? ' (pool sealed against shrinking)' : ''} -> attached`, {
          client: { pid: buffer.client.pid, uid: buffer.client.uid },
          request: 'wl_shm',
          outcome: 'attached',
          buffer: { width, height, format: fmt, stride, offset, sealed },
        });
      }
    },
    output: { width: Number(size[1]), height: Number(size[2]), refreshMhz: 60000, name: 'primebuf-1' },
  });
  if (values.log) {
    server.onClient((c) => {
      emit('client', `connected pid ${c.pid} uid ${c.uid}`, { event: 'connected', pid: c.pid, uid: c.uid });
      c.onDestroy(() => emit('client', `disconnected pid ${c.pid}`, { event: 'disconnected', pid: c.pid }));
    });
  }
  // the signal handlers before 'ready': a caller may signal as soon as it reads that line
  const signalled = new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  const socket = server.addSocket(values.socket);
  emit('ready', `WAYLAND_DISPLAY=${socket} on ${path} (${device.version.name}), ${all.size} format/modifier pairs, ${primary.size} on the primary plane`, {
    socket,
    device: path,
    driver: device.version.name,
    devId: `0x${device.devId.toString(16)}`,
    formats: all.toJSON(),
    scanout: primary.toJSON(),
  });

  await signalled;
  emit('exit', 'signalled: closing', {});
  dmabuf.close();
  server.close();
  device.close();
  return 0;
}

/** KMS planes of a device; 0 for a node without KMS (vgem, render-only SoC cards: EOPNOTSUPP). */
function planeCount(device: Device): number {
  try {
    return device.resourceIds().planes.length;
  } catch {
    return 0;
  }
}

/** The first primary node (in name order) that opens and has KMS planes, open; the rest closed. */
function openFirstWithPlanes(): Device | undefined {
  for (const info of listDevices()) {
    if (info.nodeType !== 'primary') continue;
    let device: Device;
    try {
      device = Device.open(info.path);
    } catch {
      continue; // not openable (permissions, gone): not a candidate
    }
    if (planeCount(device) > 0) return device;
    device.close();
  }
  return undefined;
}

function describe(a: object): string {
  const x = a as { width: number; height: number; format: string; modifierName: string; planes: Array<{ offset: number; stride: number }> };
  return `${x.width}x${x.height} ${x.format} ${x.modifierName} planes [${x.planes.map((p) => `${p.offset}/${p.stride}`).join(', ')}]`;
}

