/**
 * The output: the KMS device, connector, CRTC and preferred mode the kiosk drives, and the
 * wl_output (version 4) global that describes them to clients, with the output transform.
 */
import { Device, listDevices, preferredMode, type KmsResources, type ServerResource, type WaylandServer } from 'primebuf';
import { KmsDeviceModel } from 'primebuf/kms';

/** A Wayland output transform the kiosk offers (degrees counter-clockwise, as wl_output.transform 0-3). */
export type OutputTransform = 0 | 90 | 180 | 270;

export type RawMode = NonNullable<ReturnType<typeof preferredMode>>;

export interface KmsOutput {
  readonly device: Device;
  /** The device's facts, read once (the KMS tree with the connectors probed): everything else derives from it. */
  readonly model: KmsDeviceModel;
  /** model.resources */
  readonly resources: KmsResources;
  readonly crtcId: number;
  readonly connectorId: number;
  readonly connectorName: string;
  readonly mmWidth: number;
  readonly mmHeight: number;
  readonly mode: RawMode;
  /** The writeback connector that can capture the CRTC, when the device has one. */
  readonly writebackId?: number;
}

export class OutputError extends Error {
  override name = 'OutputError';
}

/** The model of a device with KMS planes (the one read of its tree); undefined for a node without KMS (vgem: EOPNOTSUPP). */
function kmsModel(device: Device): KmsDeviceModel | undefined {
  let model: KmsDeviceModel;
  try {
    model = KmsDeviceModel.read(device, { probe: true });
  } catch {
    return undefined;
  }
  return model.resources.planes.length > 0 ? model : undefined;
}

/**
 * Opens `path` (default: the first primary node with KMS planes) with `open` (default open(2)) and picks `connector` (default:
 * the first connected one that is no writeback connector), its CRTC and its preferred mode.
 */
export function openOutput(opts: { device?: string; connector?: string; open?: (path: string) => Device } = {}): KmsOutput {
  const open = opts.open ?? ((p: string) => Device.open(p)); // a session's (session.ts), or open(2)
  let device: Device | undefined;
  let model: KmsDeviceModel | undefined;
  if (opts.device) {
    device = open(opts.device);
    model = kmsModel(device);
    if (!model) {
      device.close();
      throw new OutputError(`${opts.device} has no KMS planes: pass a display device`);
    }
  } else {
    for (const info of listDevices()) {
      if (info.nodeType !== 'primary') continue;
      let d: Device;
      try {
        d = open(info.path);
      } catch {
        continue; // not openable: not a candidate
      }
      model = kmsModel(d);
      if (model) {
        device = d;
        break;
      }
      d.close();
    }
    if (!device || !model) throw new OutputError('no primary DRM node with KMS planes found (use --device)');
  }
  try {
    const resources = model.resources;
    const candidates = resources.connectors.filter((c) => !c.writeback && (opts.connector ? c.name === opts.connector : c.connection === 'connected'));
    const connector = candidates[0];
    if (!connector) {
      const names = resources.connectors.filter((c) => !c.writeback).map((c) => `${c.name} (${c.connection})`).join(', ');
      throw new OutputError(opts.connector ? `${device.path}: no connector ${opts.connector} (${names})` : `${device.path}: no connected connector (${names})`);
    }
    const mode = preferredMode(connector);
    if (!mode) throw new OutputError(`${device.path}: ${connector.name} has no mode`);
    const encoder = resources.encoders.find((e) => e.id === connector.encoderId) ?? resources.encoders.find((e) => connector.encoders.includes(e.id));
    const crtcId = encoder?.possibleCrtcs[0] ?? resources.crtcs[0]?.id;
    if (crtcId === undefined) throw new OutputError(`${device.path}: no CRTC for ${connector.name}`);
    const wb = resources.connectors.find((c) => c.writeback);
    return {
      device,
      model,
      resources,
      crtcId,
      connectorId: connector.id,
      connectorName: connector.name,
      mmWidth: connector.mmWidth,
      mmHeight: connector.mmHeight,
      mode,
      ...(wb ? { writebackId: wb.id } : {}),
    };
  } catch (err) {
    device.close();
    throw err;
  }
}

/** The output's size as clients see it: the mode, its sides swapped under a 90 or 270 transform. */
export function logicalSize(mode: RawMode, transform: OutputTransform): { width: number; height: number } {
  const swap = transform === 90 || transform === 270;
  return swap ? { width: mode.vdisplay, height: mode.hdisplay } : { width: mode.hdisplay, height: mode.vdisplay };
}

/** wl_output.mode's refresh in mHz. */
export function refreshMhz(mode: RawMode): number {
  return Math.round((mode.clock * 1_000_000) / (mode.htotal * mode.vtotal));
}

/** The wl_output global: every client's bound outputs are kept for wp_presentation's sync_output. */
export class OutputGlobal {
  readonly #bound = new Set<ServerResource<'wl_output'>>();

  constructor(server: WaylandServer, out: KmsOutput, transform: OutputTransform) {
    const m = out.mode;
    server.createGlobal('wl_output', 4, (o) => {
      this.#bound.add(o);
      o.onDestroy(() => this.#bound.delete(o));
      o.implement({ release: () => undefined });
      o.send('geometry', {
        x: 0,
        y: 0,
        physical_width: out.mmWidth,
        physical_height: out.mmHeight,
        subpixel: 0,
        make: out.device.version.name,
        model: out.connectorName,
        transform: transform / 90,
      });
      o.send('mode', { flags: 3 /* current | preferred */, width: m.hdisplay, height: m.vdisplay, refresh: refreshMhz(m) });
      if (o.version >= 2) o.send('scale', { factor: 1 });
      if (o.version >= 4) {
        o.send('name', { name: out.connectorName });
        o.send('description', { description: `${out.device.path} ${out.connectorName} ${m.hdisplay}x${m.vdisplay}` });
      }
      if (o.version >= 2) o.send('done', {});
    });
  }

  /** The wl_output objects `client` bound. */
  of(client: ServerResource['client']): ServerResource<'wl_output'>[] {
    return [...this.#bound].filter((o) => o.client === client && !o.destroyed);
  }
}
