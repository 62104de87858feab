/**
 * primebuf solve: merge the constraints of the devices a buffer will visit, solve them for a
 * size and candidate formats, and choose an allocator (a dry run: nothing is allocated).
 *
 *   primebuf solve --use card0:scanout --use renderD128:texture --size 1920x1080 \
 *                  --format XRGB8888,NV12 [--device-file [name=]path.json]... [--declare JSON|@file]...
 *                  [--allocators auto|dumb@card0,dma-heap:system,udmabuf,...] [--json]
 *
 * --use DEV:USAGE[:SEL]  scanout (primary plane), scanout:overlay, scanout:cursor,
 *                        scanout:<plane id>, scanout:any (any non-cursor plane); texture;
 *                        render; and `cpu` or cpu:read|write|readwrite; a V4L2 node
 *                        /dev/videoN:capture or /dev/videoN:output (read live: src/v4l2).
 * Devices are described by --device-file (a recorded description, see
 * src/constraints/import-drm-info.ts), so the command works on a machine without /dev/dri.
 * Devices primebuf cannot query (an encoder) come with --declare (src/constraints/json.ts).
 * A live render node's texture/render constraint comes from EGL's dma-buf import queries when
 * libEGL answers for it, else from a declared description; its `source` says which.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatName, fourcc } from '../formats/index.js';
import { InvalidArgumentError } from '../errors.js';
import {
  anyPlaneConstraint,
  constraintFromJSON,
  cpuConstraint,
  importDrmInfo,
  importDevicesJSON,
  merge,
  reasonToJSON,
  liveRenderNodeConstraint,
  renderNodeConstraint,
  scanoutConstraint,
  type DeviceConstraint,
  type KmsDeviceDescription,
  type Reason,
} from '../constraints/index.js';
import { modifierLabel, subject } from '../constraints/types.js';
import { Device, listDevices } from '../kms/index.js';
import { describeKmsDevice } from '../constraints/live.js';
import { V4l2Device } from '../v4l2/device.js';
import { AllocatorPool, findSystemAllocators, udmabufSizeLimit, type Allocator, type MissingAllocator } from '../alloc/index.js';
import { planToJSON } from '../alloc/pool.js';
import { describedAllocator, dumbCaps, heapCaps, udmabufCaps } from '../alloc/catalog.js';

const HELP = `usage: primebuf solve --use DEV:USAGE[:SEL] [--use ...] --size WxH --format F1[,F2...]
                     [--device-file [NAME=]PATH]... [--declare JSON|@FILE]... [--allocators auto|LIST] [--json]

Merges the constraints of every device a buffer will visit, solves them for the size and the
candidate formats (in order of preference) and picks an allocator. Nothing is allocated.

  --use DEV:USAGE[:SEL]   card0:scanout (primary plane), card0:scanout:overlay|cursor|any|<plane id>,
                          renderD128:texture, renderD128:render, cpu (or cpu:read|write|readwrite),
                          /dev/video0:capture (a V4L2 camera), /dev/video1:output (a V4L2 output node)
  --device-file [N=]PATH  a recorded device description: normalized drm_info JSON (named N, else by
                          its "node" basename) or \`primebuf devices --json\` output (every KMS node in it)
  --declare JSON|@FILE    a device primebuf cannot query, e.g.
                          '{"device":"encoder","usage":"video-encode","formats":[{"format":"NV12","modifiers":["LINEAR"]}],"heightAlign":16}'
  --allocators auto|LIST  allocators to consider: auto (those present here; with device files and no
                          /dev/dri: dumb on each described device, dma-heap:system, udmabuf), or a list
                          like dumb@card0,dma-heap:system,dma-heap:linux,cma,udmabuf
  --json                  machine-readable output
`;

function parseSize(s: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/i.exec(s.trim());
  if (!m) throw new InvalidArgumentError(`--size must look like 1920x1080, got '${s}'`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

function readJSONArg(v: string): unknown {
  const text = v.startsWith('@') ? readFileSync(v.slice(1), 'utf8') : v;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`--declare: not JSON (${(err as Error).message})`);
  }
}

/** Driver names of recorded nodes without KMS (render nodes), from `primebuf devices --json` files. */
const nodeDrivers = new Map<string, string>();

/**
 * Texture/render constraints of live nodes (not described by a device file), derived from
 * EGL's dma-buf import queries where they answer, else declared (the source says which).
 */
async function liveRenderConstraints(uses: readonly string[], devices: Map<string, KmsDeviceDescription>): Promise<Map<string, DeviceConstraint>> {
  const out = new Map<string, DeviceConstraint>();
  for (const use of uses) {
    const [dev = '', usage = ''] = use.split(':');
    if ((usage !== 'texture' && usage !== 'render') || out.has(use)) continue;
    if (devices.has(dev) || nodeDrivers.has(dev) || !/^(card|renderD)\d+$/.test(dev) || !existsSync(`/dev/dri/${dev}`)) continue;
    const r = await liveRenderNodeConstraint(dev, liveDriver(dev) ?? 'unknown', { usage });
    out.set(use, r.constraint);
  }
  return out;
}

/**
 * Constraints of live V4L2 nodes (`/dev/videoN:capture|output`) for the request's size: TRY_FMT
 * per format (src/v4l2/device.ts); with one candidate format, that format's own constraint.
 */
function v4l2Constraints(uses: readonly string[], size: { width: number; height: number }, formats: readonly number[]): Map<string, DeviceConstraint> {
  const out = new Map<string, DeviceConstraint>();
  for (const use of uses) {
    const m = /^(\/dev\/[^:]+):(capture|output)$/.exec(use);
    if (!m) continue;
    const dev = V4l2Device.open(m[1]!);
    try {
      if (dev.direction !== m[2]) throw new InvalidArgumentError(`${m[1]} is a V4L2 ${dev.direction} node, not ${m[2]}`);
      out.set(use, dev.constraintFor(size, formats.length === 1 ? { format: formats[0]! } : {}));
    } finally {
      dev.close();
    }
  }
  return out;
}

function useConstraint(use: string, devices: Map<string, KmsDeviceDescription>, live: Map<string, DeviceConstraint> = new Map()): DeviceConstraint {
  const fromLive = live.get(use);
  if (fromLive) return fromLive;
  const [dev, usage = '', sel] = use.split(':');
  if (dev === 'cpu' && (usage === '' || ['read', 'write', 'readwrite'].includes(usage))) {
    return cpuConstraint((usage || 'readwrite') as 'read' | 'write' | 'readwrite');
  }
  if (!dev || !usage) throw new InvalidArgumentError(`--use wants DEV:USAGE, got '${use}'`);
  const desc = devices.get(dev);
  if (usage === 'scanout') {
    if (!desc) {
      throw new InvalidArgumentError(`no description of ${dev}: no /dev/dri/${dev} here; give --device-file ${dev}=PATH (a recorded description)`);
    }
    if (sel === undefined || sel === 'primary') return scanoutConstraint(desc, { type: 'primary' });
    if (sel === 'overlay' || sel === 'cursor') return scanoutConstraint(desc, { type: sel });
    if (sel === 'any') return anyPlaneConstraint(desc);
    if (/^\d+$/.test(sel)) return scanoutConstraint(desc, { plane: Number(sel) });
    throw new InvalidArgumentError(`unknown plane selector '${sel}' (primary, overlay, cursor, any or a plane id)`);
  }
  if (usage === 'texture' || usage === 'render') {
    return renderNodeConstraint(dev, desc?.driver ?? nodeDrivers.get(dev) ?? liveDriver(dev) ?? 'unknown', usage);
  }
  throw new InvalidArgumentError(`usage '${usage}' of ${dev} cannot be queried: describe it with --declare`);
}

/** The driver of a live node, from DRM_IOCTL_VERSION (sysfs does not name every driver, e.g. vgem). */
function liveDriver(node: string): string | undefined {
  if (!/^(card|renderD)\d+$/.test(node) || !existsSync(`/dev/dri/${node}`)) return undefined;
  try {
    const d = Device.open(`/dev/dri/${node}`);
    try {
      return d.version.name;
    } finally {
      d.close();
    }
  } catch {
    return listDevices().find((d) => d.name === node)?.driver ?? undefined;
  }
}

function allocatorsFor(spec: string, devices: Map<string, KmsDeviceDescription>): { allocators: Allocator[]; missing: MissingAllocator[]; assumed: boolean } {
  const allocators: Allocator[] = [];
  const missing: MissingAllocator[] = [];
  const add = (name: string) => {
    if (name.startsWith('dumb@')) allocators.push(describedAllocator(dumbCaps(name.slice(5))));
    else if (name.startsWith('dma-heap:')) allocators.push(describedAllocator(heapCaps(name.slice(9))));
    else if (name === 'udmabuf') allocators.push(describedAllocator(udmabufCaps(udmabufSizeLimit())));
    else throw new InvalidArgumentError(`unknown allocator '${name}' (dumb@DEV, dma-heap:NAME, udmabuf)`);
  };
  if (spec !== 'auto') {
    for (const n of spec.split(/,(?=dumb@|dma-heap:|udmabuf|gbm@)/)) add(n.trim());
    return { allocators, missing, assumed: true };
  }
  const live = existsSync('/dev/dri');
  if (!live && devices.size > 0) {
    for (const d of [...devices.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      if (d.dumbBuffer !== false) add(`dumb@${d.name}`);
      else missing.push({ name: `dumb@${d.name}`, kind: 'dumb', reason: `${d.name} (${d.driver}) has no DRM_CAP_DUMB_BUFFER` });
    }
    add('dma-heap:system');
    add('udmabuf');
    return { allocators, missing, assumed: true };
  }
  const found = findSystemAllocators();
  for (const n of found.cards) add(`dumb@${n}`);
  for (const h of found.heaps) add(`dma-heap:${h}`);
  if (found.udmabuf) add('udmabuf');
  missing.push(...found.missing);
  return { allocators, missing, assumed: false };
}

function reasonLine(r: Reason): string {
  return `  - [${r.code}] ${r.detail}`;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      use: { type: 'string', multiple: true, default: [] },
      size: { type: 'string' },
      format: { type: 'string', multiple: true, default: [] },
      'device-file': { type: 'string', multiple: true, default: [] },
      declare: { type: 'string', multiple: true, default: [] },
      allocators: { type: 'string', default: 'auto' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.size || values.format.length === 0 || (values.use.length === 0 && values.declare.length === 0)) {
    console.error(`primebuf solve: --size, --format and at least one --use or --declare are required\n\n${HELP}`);
    return 2;
  }
  const { width, height } = parseSize(values.size);
  const formats = values.format.flatMap((f) => f.split(',')).filter((f) => f.length > 0).map((f) => fourcc(f.trim()));
  const devices = new Map<string, KmsDeviceDescription>();
  const unknownFormats: Record<string, readonly string[]> = {};
  for (const spec of values['device-file']) {
    const eq = spec.indexOf('=');
    const [name, path] = eq > 0 && !spec.slice(0, eq).includes('/') ? [spec.slice(0, eq), spec.slice(eq + 1)] : [undefined, spec];
    const doc = JSON.parse(readFileSync(path!, 'utf8')) as unknown;
    if (Array.isArray(doc) || (typeof doc === 'object' && doc !== null && ('kms' in doc || 'devices' in doc))) {
      // `primebuf devices --json` (e.g. recorded in the vkms guest): every KMS node in it.
      const list = (Array.isArray(doc) ? doc : 'devices' in doc ? (doc as { devices: unknown[] }).devices : [doc]) as Array<{ name?: string; driver?: string | null }>;
      for (const n of list) if (n && typeof n.name === 'string' && typeof n.driver === 'string') nodeDrivers.set(n.name, n.driver);
      const found = importDevicesJSON(doc, path);
      for (const d of found) devices.set(name !== undefined && found.length === 1 ? name : d.name, name !== undefined && found.length === 1 ? { ...d, name } : d);
      continue;
    }
    const imported = importDrmInfo(doc, name === undefined ? {} : { name });
    devices.set(imported.description.name, imported.description);
    if (imported.unknownFormats.length > 0) unknownFormats[imported.description.name] = imported.unknownFormats;
  }
  // Devices named in --use without a device file are read live from /dev/dri when present.
  const live: Device[] = [];
  try {
    for (const u of values.use) {
      const name = u.split(':')[0]!;
      if (name === 'cpu' || devices.has(name) || !/^card\d+$/.test(name) || !existsSync(`/dev/dri/${name}`)) continue;
      const device = Device.open(`/dev/dri/${name}`);
      live.push(device);
      devices.set(name, describeKmsDevice(device));
    }
  } finally {
    for (const d of live) d.close();
  }
  const liveRender = await liveRenderConstraints(values.use, devices);
  for (const [k, v] of v4l2Constraints(values.use, { width, height }, formats)) liveRender.set(k, v);
  const members = [...values.use.map((u) => useConstraint(u, devices, liveRender)), ...values.declare.map((d) => constraintFromJSON(readJSONArg(d)))];
  const merged = merge(...members);
  const { allocators, missing, assumed } = allocatorsFor(values.allocators, devices);
  const pool = new AllocatorPool(allocators, missing);
  const plan = pool.plan(merged.set, { width, height, formats });
  const ok = merged.ok && plan.ok;
  if (values.json) {
    const out = {
      ok,
      request: { width, height, formats: formats.map(formatName) },
      devices: [...devices.values()].map((d) => ({ name: d.name, driver: d.driver, source: d.source ?? null, planes: d.planes.length, unknownFormats: unknownFormats[d.name] ?? [] })),
      constraints: merged.set.toJSON(),
      merge: { ok: merged.ok, reasons: merged.reasons.map(reasonToJSON) },
      solution: {
        ok: plan.solution.ok,
        options: plan.solution.options.map((o) => ({
          format: formatName(o.format),
          modifiers: o.modifiers === 'any' ? 'any' : o.modifiers.map((m) => modifierLabel(m)),
        })),
        reasons: plan.solution.reasons.map(reasonToJSON),
      },
      allocatorsAssumed: assumed,
      plan: planToJSON(plan, reasonToJSON),
    };
    console.log(JSON.stringify(out, null, 2));
    return ok ? 0 : 1;
  }
  const lines: string[] = [];
  lines.push(`request: ${width}x${height}, candidates ${formats.map(formatName).join(', ')}`);
  lines.push('devices:');
  for (const m of merged.set.members) lines.push(`  ${subject(m)}${m.source ? `: ${m.source}` : ''}`);
  const s = merged.set;
  lines.push(
    `merged: pitch align ${s.pitchAlign}, offset align ${s.offsetAlign}, size align ${s.sizeAlign}, width ${s.minWidth}..${s.maxWidth ?? '-'}, height ${s.minHeight}..${s.maxHeight ?? '-'}, ` +
      `max planes ${s.maxPlanes ?? '-'}, contiguous ${s.contiguous ? 'yes' : 'no'}, write-combine ${s.writeCombine ? `yes (${s.nonCoherent.join(', ')} not coherent)` : 'no'}` +
      (s.allocateOn.length ? `, allocate on ${s.allocateOn.join(', ')}` : ''),
  );
  for (const o of plan.solution.options) {
    lines.push(`  ${formatName(o.format)}: ${o.modifiers === 'any' ? 'any modifier' : o.modifiers.map((m) => modifierLabel(m)).join(', ')}`);
  }
  if (ok && plan.chosen) {
    const c = plan.chosen;
    lines.push(
      `result: OK: ${formatName(c.format)} as ${modifierLabel(c.modifier)} from ${c.allocator}, pitches ${c.layout.planes.map((p) => p.pitch).join('/')}, ${c.layout.size} bytes` +
        (assumed ? ' (allocators assumed, dry run)' : ' (dry run)'),
    );
  } else {
    lines.push('result: CONFLICT');
    const why = plan.reasons.length > 0 ? plan.reasons : merged.reasons;
    for (const d of [...new Set(why.map(reasonLine))]) lines.push(d);
  }
  const informative = plan.solution.reasons.filter((r) => r.format !== undefined && plan.solution.options.length > 0);
  if (informative.length > 0) {
    lines.push('candidates left out:');
    for (const d of [...new Set(informative.map(reasonLine))]) lines.push(d);
  }
  lines.push('allocators:');
  for (const c of plan.candidates) {
    lines.push(`  ${c.chosen ? '*' : ' '} ${c.allocator}: ${c.chosen ? 'chosen' : c.ok ? 'possible' : 'not possible'}${c.score !== undefined ? ` (score ${c.score})` : ''}`);
    for (const r of c.reasons) lines.push(`      ${r.detail}`);
  }
  console.log(lines.join('\n'));
  return ok ? 0 : 1;
}
