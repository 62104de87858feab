// The kiosk reads the KMS tree once at start-up: one KmsDeviceModel (src/kms/model.ts) from
// which the output, the verdicts' device, linux-dmabuf's formats, wl_shm's defaults and the
// camera's display description are derived. Counted at the native layer: every GETRESOURCES,
// GETPLANERESOURCES, GETPLANE, GETCRTC, GETENCODER and GETCONNECTOR on the kiosk's device fd
// while startKiosk runs (each object once; before the model the kiosk read the tree about eight
// times). Also: the plane offsets are probed through writeback at start-up and the finding logged
// (the rig's default vkms build applies them twice; `--vkms offsets` once).
import t from 'tap';
import { native } from '../../src/native.js';
import { startKiosk } from '../../compositor-example/kiosk.js';
import { requireVkms, privateRuntimeDir } from './devices-util.js';

t.setTimeout(600000);

const vkms = requireVkms(t);
privateRuntimeDir(t, 'primebuf-kiosk-startup-');

const COUNTED = ['drmGetResources', 'drmGetPlaneResources', 'drmGetPlane', 'drmGetCrtc', 'drmGetEncoder', 'drmGetConnector'] as const;
type Counted = (typeof COUNTED)[number];

t.test('start-up reads each KMS object of the device once', async (t) => {
  const calls: Array<{ name: Counted; fd: number; id: number | undefined }> = [];
  const table = native as unknown as Record<Counted, (...args: unknown[]) => unknown>;
  const originals = new Map<Counted, (...args: unknown[]) => unknown>();
  for (const name of COUNTED) {
    const orig = table[name];
    originals.set(name, orig);
    table[name] = (...args: unknown[]) => {
      calls.push({ name, fd: args[0] as number, id: args[1] as number | undefined });
      return orig.apply(native, args);
    };
  }
  const log: string[] = [];
  let kiosk: Awaited<ReturnType<typeof startKiosk>> | undefined;
  try {
    kiosk = await startKiosk({ device: vkms!.path, socket: 'pb-startup', log: (l) => log.push(l) });
  } finally {
    for (const [name, orig] of originals) table[name] = orig;
  }
  try {
    const fd = kiosk.device.fd;
    const mine = calls.filter((c) => c.fd === fd);
    const count = (name: Counted) => mine.filter((c) => c.name === name).length;
    const perId = (name: Counted) => {
      const m = new Map<number, number>();
      for (const c of mine) if (c.name === name) m.set(c.id!, (m.get(c.id!) ?? 0) + 1);
      return m;
    };
    const summary = COUNTED.map((n) => `${n} ${count(n)}`).join(', ');
    t.equal(count('drmGetResources'), 1, `one GETRESOURCES (${summary})`);
    t.equal(count('drmGetPlaneResources'), 1, 'one GETPLANERESOURCES');
    const ids = native.drmGetPlaneResources(fd);
    const planes = perId('drmGetPlane');
    t.same([...planes.keys()].sort((a, b) => a - b), [...ids].sort((a, b) => a - b), `every plane read (${ids.length} planes)`);
    t.same([...planes.values()].filter((n) => n !== 1), [], 'each plane once');
    for (const name of ['drmGetCrtc', 'drmGetEncoder', 'drmGetConnector'] as const) {
      t.same([...perId(name).values()].filter((n) => n !== 1), [], `${name}: each object once`);
    }
    // the rig's vkms builds: clone and stock apply a plane offset twice, offsets once (PRIMEBUF_VM_VKMS)
    const variant = process.env.PRIMEBUF_VM_VKMS ?? 'clone';
    const said = log.filter((l) => /plane offsets/.test(l)).join(' | ');
    if (variant === 'offsets') t.ok(log.some((l) => /plane offsets: honoured \(probe\)/.test(l)), `the start-up probe found plane offsets honoured on the fixed vkms (${said})`);
    else t.ok(log.some((l) => /plane offsets: not honoured.*\(probe\).*applies a plane offset twice/.test(l)), `the start-up probe found the ${variant} vkms's plane-offset quirk (${said})`);
  } finally {
    await kiosk.close();
  }
});
