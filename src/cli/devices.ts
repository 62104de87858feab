/**
 * `primebuf devices [--json] [--node PATH]`: every DRM node with its discovery facts, caps,
 * planes (type, formats x modifiers), CRTCs and connectors: a focused drm_info.
 */
import { parseArgs } from 'node:util';
import { modifierName } from '../formats/index.js';
import { describeDevices, describeDevice, type DeviceJSON } from '../kms/describe.js';
import { listDevices } from '../kms/discovery.js';

const HELP = `usage: primebuf devices [--json] [--node PATH]

Lists every DRM node (/dev/dri/card*, renderD*) with its dev_t, driver, bus, paired nodes,
DMA coherence, caps, and for KMS devices the CRTCs, connectors and planes with their
format x modifier sets (IN_FORMATS).

  --json        machine-readable output (the shape of test/fixtures/vkms-devices.json)
  --node PATH   only this node
  --props       also print every property (text output)
  --probe       force a connector detection cycle first (slow on real hardware; like modetest)
  -h, --help    this help`;

function text(d: DeviceJSON, props: boolean): string {
  const lines: string[] = [];
  const hex = `0x${d.devId.toString(16)}`;
  lines.push(`${d.path}  ${d.nodeType}  dev ${d.major}:${d.minor} (${hex})  driver ${d.driver ?? '?'}`);
  if (d.version) lines.push(`  version: ${d.version.name} ${d.version.major}.${d.version.minor}.${d.version.patchlevel} (${d.version.desc})`);
  const bus = d.bus as { type?: string; slot?: string; name?: string; vendorId?: number; deviceId?: number } | null;
  if (bus) {
    lines.push(
      bus.type === 'pci'
        ? `  bus: pci ${bus.slot} [${(bus.vendorId ?? 0).toString(16).padStart(4, '0')}:${(bus.deviceId ?? 0).toString(16).padStart(4, '0')}]`
        : `  bus: ${bus.type} ${bus.name ?? ''}`,
    );
  }
  lines.push(`  nodes: primary ${d.primaryNode ?? '-'}, render ${d.renderNode ?? '-'}; DMA coherent: ${d.coherent} (${d.coherentSource})`);
  if (d.error) {
    lines.push(`  error: ${d.error}`);
    return lines.join('\n');
  }
  if (d.caps) {
    lines.push(`  caps: ${Object.entries(d.caps).filter(([, v]) => v !== null).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
  if (d.clientCaps) lines.push(`  client caps: ${d.clientCaps.join(' ') || '-'}`);
  const k = d.kms;
  if (!k) {
    lines.push('  no KMS');
    return lines.join('\n');
  }
  lines.push(`  fb size: [${k.minWidth}, ${k.maxWidth}] x [${k.minHeight}, ${k.maxHeight}]; cursor ${k.cursorWidth ?? '?'}x${k.cursorHeight ?? '?'}`);
  for (const c of k.crtcs) {
    lines.push(`  CRTC ${c.id} (index ${c.index}): ${c.active ? 'active' : 'inactive'}${c.mode ? ` ${c.mode.name}@${c.mode.vrefresh}` : ''} fb ${c.fbId}`);
    if (props) for (const [n, p] of Object.entries(c.properties)) lines.push(`      ${n} = ${p.enumValue ?? p.value} (${p.type})`);
  }
  for (const c of k.connectors) {
    const modes = c.modes.slice(0, 4).map((m) => `${m.name}@${m.vrefresh}`).join(', ');
    lines.push(`  connector ${c.id} ${c.name}: ${c.connection}${c.writeback ? ' (writeback)' : ''} crtc ${c.crtcId}${modes ? `; modes ${modes}${c.modes.length > 4 ? ', ...' : ''}` : ''}`);
    if (c.writebackFormats) lines.push(`      writeback formats: ${c.writebackFormats.join(' ')}`);
    if (props) for (const [n, p] of Object.entries(c.properties)) lines.push(`      ${n} = ${p.enumValue ?? p.value} (${p.type})`);
  }
  for (const e of k.encoders) lines.push(`  encoder ${e.id}: type ${e.type} crtc ${e.crtcId} possible CRTCs ${e.possibleCrtcs.join(',')}`);
  for (const p of k.planes) {
    lines.push(`  plane ${p.id} ${p.type}: CRTCs ${p.possibleCrtcs.join(',')}; crtc ${p.crtcId} fb ${p.fbId}`);
    for (const f of p.formats) {
      lines.push(`      ${f.format}: ${f.modifiers.map((m) => modifierLabel(m)).join(' ')}`);
    }
    if (props) for (const [n, pr] of Object.entries(p.properties)) lines.push(`      ${n} = ${pr.enumValue ?? pr.value} (${pr.type})`);
  }
  return lines.join('\n');
}

function modifierLabel(hex: string): string {
  try {
    return modifierName(BigInt(hex));
  } catch {
    return hex;
  }
}

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean', default: false },
        node: { type: 'string' },
        props: { type: 'boolean', default: false },
        probe: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`primebuf devices: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let devices: DeviceJSON[];
  if (values.node) {
    const info = listDevices().find((d) => d.path === values.node || d.name === values.node);
    if (!info) {
      console.error(`primebuf devices: no DRM node ${values.node}`);
      return 1;
    }
    devices = [describeDevice(info, { probe: values.probe ?? false })];
  } else {
    devices = describeDevices({ probe: values.probe ?? false });
  }
  if (values.json) {
    console.log(JSON.stringify({ devices }, null, 2));
  } else if (devices.length === 0) {
    console.log('no DRM devices (/dev/dri is empty or missing)');
  } else {
    console.log(devices.map((d) => text(d, values.props ?? false)).join('\n\n'));
  }
  return 0;
}

