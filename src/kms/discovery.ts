/**
 * Device discovery from /dev/dri and sysfs, without opening any device: each node's dev_t, node
 * type, kernel driver, the other nodes of the same device, bus information (PCI ids, platform
 * name and device-tree compatible strings) and whether the device's DMA is cache-coherent.
 *
 * Cache coherence (policy, in this order): an explicit override (option or the environment
 * variable PRIMEBUF_DMA_COHERENT: "1"/"0", or "card0=1,renderD128=0"); a device-tree
 * `dma-coherent` property on the device's of_node or one of its parents; PCI devices are
 * coherent; a device without device-tree node on x86 is coherent (the architecture snoops); any
 * other device is treated as non-coherent (the safe answer: write-combined, flush on handover).
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export type NodeType = 'primary' | 'render' | 'control';

export interface PciBusInfo {
  type: 'pci';
  /** 'dddd:bb:dd.f' */
  slot: string;
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number | null;
  subsystemDeviceId: number | null;
  revision: number | null;
}

export interface PlatformBusInfo {
  type: 'platform';
  /** the platform device's name in sysfs, e.g. 'vkms' or 'fd4a0000.display' */
  name: string;
  /** device-tree compatible strings, most specific first (empty without of_node) */
  compatible: string[];
}

export interface OtherBusInfo {
  type: string;
  name: string;
}

export type BusInfo = PciBusInfo | PlatformBusInfo | OtherBusInfo;

export type CoherenceSource = 'override' | 'of_node' | 'pci' | 'arch' | 'default';

export interface DeviceInfo {
  /** '/dev/dri/card0' */
  path: string;
  /** 'card0' */
  name: string;
  /** st_rdev: what linux-dmabuf feedback sends as the device */
  devId: bigint;
  major: number;
  minor: number;
  nodeType: NodeType;
  /** the kernel driver bound to the device (sysfs), e.g. 'vkms', 'i915'; null if unknown */
  driver: string | null;
  /** the device's primary and render node paths (either may be null) */
  primaryNode: string | null;
  renderNode: string | null;
  /** every other /dev/dri node of the same device */
  siblings: string[];
  bus: BusInfo | null;
  /** the device's directory in sysfs (resolved), or null */
  sysfsPath: string | null;
  coherent: boolean;
  coherentSource: CoherenceSource;
}

export interface DiscoveryOptions {
  /** default '/dev/dri' */
  devDir?: string;
  /** default '/sys' (tests point this at a fixture tree) */
  sysRoot?: string;
  /** explicit coherence per node name or path ('card0', '/dev/dri/card0'), or for all */
  coherent?: boolean | Record<string, boolean>;
  /** default process.arch */
  arch?: string;
  /** default process.env.PRIMEBUF_DMA_COHERENT */
  envOverride?: string;
}

/** dev_t encoding of Linux (glibc's gnu_dev_major/minor). */
export function devMajor(dev: bigint): number {
  return Number(((dev >> 32n) & 0xfffff000n) | ((dev >> 8n) & 0xfffn));
}
export function devMinor(dev: bigint): number {
  return Number(((dev >> 12n) & 0xffffff00n) | (dev & 0xffn));
}
export function makeDev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

function nodeTypeOfName(name: string): NodeType | null {
  if (/^card\d+$/.test(name)) return 'primary';
  if (/^renderD\d+$/.test(name)) return 'render';
  if (/^controlD\d+$/.test(name)) return 'control';
  return null;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function readHex(path: string): number | null {
  const s = readText(path);
  if (s === null) return null;
  const n = Number.parseInt(s.trim(), 16);
  return Number.isFinite(n) ? n : null;
}

function linkBase(path: string): string | null {
  try {
    return basename(readlinkSync(path));
  } catch {
    return null;
  }
}

function uevent(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of (readText(join(dir, 'uevent')) ?? '').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

function parseOverride(value: string | undefined): boolean | Record<string, boolean> | undefined {
  if (value === undefined || value === '') return undefined;
  const bool = (s: string): boolean => /^(1|true|yes|on)$/i.test(s.trim());
  if (!value.includes('=')) return bool(value);
  const out: Record<string, boolean> = {};
  for (const part of value.split(',')) {
    const [k, v] = part.split('=');
    if (k && v !== undefined) out[k.trim()] = bool(v);
  }
  return out;
}

function overrideFor(o: boolean | Record<string, boolean> | undefined, path: string, name: string): boolean | undefined {
  if (o === undefined) return undefined;
  if (typeof o === 'boolean') return o;
  return o[path] ?? o[name];
}

/** Walks a device's of_node and its parents (in /sys/firmware/devicetree) for `dma-coherent`. */
function ofDmaCoherent(ofNode: string): boolean {
  let dir: string;
  try {
    dir = realpathSync(ofNode);
  } catch {
    return false;
  }
  for (let i = 0; i < 64; i++) {
    if (existsSync(join(dir, 'dma-coherent'))) return true;
    if (existsSync(join(dir, 'dma-noncoherent'))) return false;
    const up = dirname(dir);
    if (up === dir || !existsSync(join(up, 'name')) && !existsSync(join(up, 'compatible')) && !existsSync(join(up, '#address-cells'))) break;
    dir = up;
  }
  return false;
}

/**
 * Describes one DRM node from its path and dev_t (no open). Exposed for tests that feed a
 * fixture sysfs tree.
 */
export function describeNode(path: string, devId: bigint, opts: DiscoveryOptions = {}): DeviceInfo {
  const sysRoot = opts.sysRoot ?? '/sys';
  const devDir = opts.devDir ?? dirname(path);
  const name = basename(path);
  const major = devMajor(devId);
  const minor = devMinor(devId);
  const charDir = join(sysRoot, 'dev', 'char', `${major}:${minor}`);
  const deviceLink = join(charDir, 'device');
  let sysfsPath: string | null = null;
  try {
    sysfsPath = realpathSync(deviceLink);
  } catch {
    sysfsPath = null;
  }
  const driver = sysfsPath ? linkBase(join(sysfsPath, 'driver')) : null;
  // Every node of this device is listed in <device>/drm/.
  let nodes: string[] = [];
  if (sysfsPath) {
    try {
      // control nodes (controlD*) are a legacy leftover with no use: only primary and render
      nodes = readdirSync(join(sysfsPath, 'drm'))
        .filter((n) => nodeTypeOfName(n) === 'primary' || nodeTypeOfName(n) === 'render')
        .sort();
    } catch {
      nodes = [];
    }
  }
  if (!nodes.includes(name)) nodes.push(name);
  const nodePath = (n: string): string => join(devDir, n);
  const primary = nodes.find((n) => nodeTypeOfName(n) === 'primary');
  const render = nodes.find((n) => nodeTypeOfName(n) === 'render');

  let bus: BusInfo | null = null;
  if (sysfsPath) {
    const subsystem = linkBase(join(sysfsPath, 'subsystem'));
    const ev = uevent(sysfsPath);
    if (subsystem === 'pci') {
      bus = {
        type: 'pci',
        slot: ev.get('PCI_SLOT_NAME') ?? basename(sysfsPath),
        vendorId: readHex(join(sysfsPath, 'vendor')) ?? 0,
        deviceId: readHex(join(sysfsPath, 'device')) ?? 0,
        subsystemVendorId: readHex(join(sysfsPath, 'subsystem_vendor')),
        subsystemDeviceId: readHex(join(sysfsPath, 'subsystem_device')),
        revision: readHex(join(sysfsPath, 'revision')),
      };
    } else if (subsystem === 'platform') {
      const compat = readText(join(sysfsPath, 'of_node', 'compatible'));
      bus = {
        type: 'platform',
        name: basename(sysfsPath),
        compatible: compat ? compat.split('\0').filter((s) => s.length > 0) : [],
      };
    } else if (subsystem) {
      bus = { type: subsystem, name: basename(sysfsPath) };
    }
  }

  let coherent: boolean;
  let coherentSource: CoherenceSource;
  const ov =
    overrideFor(opts.coherent, path, name) ??
    overrideFor(parseOverride(opts.envOverride ?? process.env.PRIMEBUF_DMA_COHERENT), path, name);
  const arch = opts.arch ?? process.arch;
  if (ov !== undefined) {
    coherent = ov;
    coherentSource = 'override';
  } else if (sysfsPath && existsSync(join(sysfsPath, 'of_node'))) {
    coherent = ofDmaCoherent(join(sysfsPath, 'of_node'));
    coherentSource = 'of_node';
  } else if (bus?.type === 'pci') {
    coherent = true;
    coherentSource = 'pci';
  } else if (arch === 'x64' || arch === 'ia32') {
    coherent = true;
    coherentSource = 'arch';
  } else {
    coherent = false;
    coherentSource = 'default';
  }

  return {
    path,
    name,
    devId,
    major,
    minor,
    nodeType: nodeTypeOfName(name) ?? 'primary',
    driver,
    primaryNode: primary ? nodePath(primary) : null,
    renderNode: render ? nodePath(render) : null,
    siblings: nodes.filter((n) => n !== name).map(nodePath),
    bus,
    sysfsPath,
    coherent,
    coherentSource,
  };
}

/** Every DRM node under /dev/dri (card*, renderD*), sorted by name; [] when there is none. */
export function listDevices(opts: DiscoveryOptions = {}): DeviceInfo[] {
  const devDir = opts.devDir ?? '/dev/dri';
  let names: string[];
  try {
    names = readdirSync(devDir);
  } catch {
    return [];
  }
  const out: DeviceInfo[] = [];
  for (const name of names.filter((n) => nodeTypeOfName(n) !== null).sort(byNodeName)) {
    const path = join(devDir, name);
    let st;
    try {
      st = statSync(path, { bigint: true });
    } catch {
      continue;
    }
    if (!st.isCharacterDevice()) continue;
    out.push(describeNode(path, st.rdev, { ...opts, devDir }));
  }
  return out;
}

function byNodeName(a: string, b: string): number {
  const ka = a.replace(/\d+$/, '');
  const kb = b.replace(/\d+$/, '');
  if (ka !== kb) return ka < kb ? -1 : 1;
  return Number(a.slice(ka.length)) - Number(b.slice(kb.length));
}
