/**
 * `primebuf explain`: allocates a test buffer matching the arguments on the KMS device (a dumb
 * buffer exported as a dma-buf), runs the scanout verdict for one plane (static checks, then
 * import, AddFB2 and TEST_ONLY of the output's next state) and prints every reason. Exit 0 when
 * it would scan out, 1 when not, 2 for bad arguments or when the check could not run.
 */
import { parseArgs } from 'node:util';
import { InvalidArgumentError, PrimebufError } from '../errors.js';
import { DumbBuffer } from '../alloc/backends/dumb.js';
import type { Dmabuf } from '../dmabuf/dmabuf.js';
import { DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, formatInfo, formatName, fourcc, modifierName, parseModifier } from '../formats/index.js';
import { Device } from '../kms/device.js';
import { Framebuffer } from '../kms/framebuffer.js';
import { preferredMode, readResources } from '../kms/resources.js';
import type { Placement } from '../scanout/placement.js';
import { describeVerdict, verdictToJSON } from '../scanout/reasons.js';
import type { ScanoutBuffer } from '../scanout/verdict-buffer.js';
import { findPlane, scanoutDeviceFromLive } from '../scanout/verdict-device.js';
import { KmsScanoutKernel } from '../scanout/verdict-kms.js';
import { ScanoutChecker, type ScanoutVerdict } from '../scanout/verdict.js';

const HELP = `usage: primebuf explain --device card0 --plane <id|primary|overlay|cursor> --format XRGB8888
         --modifier LINEAR --size 1024x768 [--stride N] [--rotation 0|90|180|270] [--reflect x|y|xy]
         [--at X,Y] [--clip] [--json]

Allocates a matching test buffer on the device (a dumb buffer, exported as a dma-buf), checks
whether it would scan out on the plane of the device's first connector at its preferred mode,
and prints the verdict with every reason: static checks (format and modifier in IN_FORMATS,
the implicit-modifier policy, size limits, layout, placement, scaling, rotation), then PRIME
import, AddFB2 and an atomic TEST_ONLY commit. Needs DRM master (no compositor running).
A format or modifier a dumb buffer cannot have gets the static checks only.

  --device NAME|PATH  the KMS node (card0 or /dev/dri/card0)
  --plane SEL         a plane id, or the first primary/overlay/cursor plane of the CRTC
  --format NAME       pixel format (XRGB8888, XR24, 0x34325258)
  --modifier MOD      LINEAR (default), INVALID (implicit), or any modifier name/hex
  --size WxH          buffer size
  --stride N          pitch in bytes (default: what the dumb buffer gets)
  --rotation DEG      rotation of the placement
  --reflect x|y|xy    reflection of the placement
  --at X,Y            destination position on the CRTC (default 0,0; size = buffer after rotation)
  --clip              clip a partly off-screen placement instead of refusing it
  --json              machine-readable output
  exit status: 0 would scan out, 1 would not, 2 bad arguments or the check could not run
  (no such device, no KMS, no connector with a mode)`;

export interface ExplainOptions {
  device: string;
  plane: string;
  format: string;
  modifier?: string;
  size: string;
  stride?: number;
  rotation?: number;
  reflect?: string;
  at?: string;
  clip?: boolean;
}

export interface ExplainResult {
  readonly code: 0 | 1;
  readonly verdict: ScanoutVerdict;
  readonly json: Record<string, unknown>;
  readonly text: string;
}

function parseSize(s: string, what: string): [number, number] {
  const m = /^(\d+)[x,](\d+)$/.exec(s.trim());
  if (!m) throw new InvalidArgumentError(`${what} must be WxH, got ${JSON.stringify(s)}`);
  return [Number(m[1]), Number(m[2])];
}

/** Runs the check; the caller prints. Throws InvalidArgumentError for bad arguments. */
export function explain(o: ExplainOptions): ExplainResult {
  const format = fourcc(o.format);
  const modifier = parseModifier(o.modifier ?? 'LINEAR');
  const [width, height] = parseSize(o.size, '--size');
  const [atX, atY] = o.at ? parseSize(o.at, '--at') : [0, 0];
  if (o.stride !== undefined && !(Number.isInteger(o.stride) && o.stride > 0)) throw new InvalidArgumentError(`--stride must be a positive integer, got ${o.stride}`);
  if (o.rotation !== undefined && ![0, 90, 180, 270].includes(o.rotation)) throw new InvalidArgumentError(`--rotation must be 0, 90, 180 or 270, got ${o.rotation}`);
  if (o.reflect !== undefined && !/^(x|y|xy)$/.test(o.reflect)) throw new InvalidArgumentError(`--reflect must be x, y or xy, got ${o.reflect}`);
  const info = formatInfo(format);
  const path = o.device.includes('/') ? o.device : `/dev/dri/${o.device}`;
  const dev = Device.open(path);
  const owned: Array<{ close(): void }> = [];
  let checker: ScanoutChecker | undefined;
  try {
    const model = scanoutDeviceFromLive(dev);
    const res = readResources(dev, { probe: true });
    const connector = res.connectors.find((c) => !c.writeback && c.connection !== 'disconnected' && c.modes.length > 0);
    if (!connector) throw new InvalidArgumentError(`${dev.name} has no connector with a mode`);
    const mode = preferredMode(connector)!;
    const planeSel = /^\d+$/.test(o.plane) ? Number(o.plane) : (o.plane as 'primary' | 'overlay' | 'cursor');
    if (typeof planeSel === 'string' && !['primary', 'overlay', 'cursor'].includes(planeSel)) throw new InvalidArgumentError(`--plane must be an id or primary, overlay, cursor; got ${o.plane}`);
    const encoderCrtcs = new Set(res.encoders.filter((e) => connector.encoders.includes(e.id)).flatMap((e) => e.possibleCrtcs));
    const crtc = res.crtcs.find((c) => encoderCrtcs.has(c.id)) ?? res.crtcs[0]!;
    const plane = typeof planeSel === 'number' ? model.planes.find((p) => p.id === planeSel) : findPlane(model, planeSel, crtc.id);
    const planeId = plane?.id ?? (typeof planeSel === 'number' ? planeSel : -1);

    // The test buffer: a dumb buffer (LINEAR, one plane) exported as a dma-buf.
    let buffer: ScanoutBuffer;
    const dumbOk = info !== undefined && info.planes === 1 && info.bitsPerPixel[0]! > 0 && (modifier === DRM_FORMAT_MOD_LINEAR || modifier === DRM_FORMAT_MOD_INVALID);
    let allocated = false;
    if (dumbOk) {
      const bpp = info.bitsPerPixel[0]!;
      const allocWidth = o.stride !== undefined ? Math.max(width, Math.ceil((o.stride * 8) / bpp)) : width;
      const dumb = DumbBuffer.create(dev, { width: allocWidth, height, bpp });
      owned.push(dumb);
      const dmabuf: Dmabuf = dumb.exportDmabuf();
      owned.push(dmabuf);
      buffer = {
        kind: 'dmabuf',
        width,
        height,
        format,
        modifier,
        planes: [{ fd: dmabuf.fd, offset: 0, stride: o.stride ?? dumb.pitch }],
        allocatedOn: dev.devId,
        name: `test dumb buffer on ${dev.name}`,
      };
      allocated = true;
    } else {
      const stride = o.stride ?? (info && info.cpp[0] ? info.cpp[0] * width : 0);
      buffer = { kind: 'dmabuf', width, height, format, modifier, planes: [{ fd: -1, offset: 0, stride }], allocatedOn: dev.devId, name: 'described buffer (not allocated)' };
    }
    // The compositor's black background on the primary when the plane under test is not it.
    const primary = findPlane(model, 'primary', crtc.id);
    let background: { planeId: number; fb: Framebuffer } | undefined;
    if (allocated && primary && primary.id !== planeId) {
      const bg = DumbBuffer.create(dev, { width: mode.hdisplay, height: mode.vdisplay, bpp: 32 });
      owned.push(bg);
      const fb = Framebuffer.create(dev, { width: mode.hdisplay, height: mode.vdisplay, format: fourcc('XRGB8888'), modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle: bg.handle, pitch: bg.pitch }] });
      owned.push(fb);
      background = { planeId: primary.id, fb };
    }
    const kernel = allocated ? new KmsScanoutKernel(dev, { crtcId: crtc.id, connectorId: connector.id, mode, ...(background ? { background } : {}) }) : undefined;
    checker = new ScanoutChecker(model, { mode: { width: mode.hdisplay, height: mode.vdisplay }, ...(kernel ? { kernel } : {}) });
    const swap = o.rotation === 90 || o.rotation === 270;
    const placement: Placement = {
      crtc: crtc.id,
      dst: { x: atX, y: atY, width: swap ? height : width, height: swap ? width : height },
      ...(o.rotation !== undefined ? { rotation: o.rotation as 0 | 90 | 180 | 270 } : {}),
      ...(o.reflect?.includes('x') ? { reflectX: true } : {}),
      ...(o.reflect?.includes('y') ? { reflectY: true } : {}),
      ...(o.clip ? { clip: true } : {}),
    };
    const v = checker.checkScanout(buffer, planeId, placement);
    const wouldScanOut = v.ok && allocated;
    const notes = allocated ? [] : [`no test buffer: a dumb buffer cannot be ${formatName(format)} ${modifierName(modifier)}; static checks only`];
    const json = {
      device: dev.path,
      driver: dev.version.name,
      plane: planeId,
      planeType: plane?.type ?? null,
      crtc: crtc.id,
      connector: connector.name,
      mode: `${mode.hdisplay}x${mode.vdisplay}`,
      buffer: { width, height, format: formatName(format), modifier: modifierName(modifier), stride: buffer.planes[0]!.stride, allocated },
      placement: v.placement ?? null,
      wouldScanOut,
      verdict: verdictToJSON(v),
      kernelCalls: checker.kernelCounts,
      notes,
    };
    const text = [
      `${dev.path} (${dev.version.name}) plane ${planeId}${plane ? ` (${plane.type})` : ''} on CRTC ${crtc.id}, ${connector.name} ${mode.hdisplay}x${mode.vdisplay}`,
      `buffer: ${width}x${height} ${formatName(format)} ${modifierName(modifier)} stride ${buffer.planes[0]!.stride}${allocated ? '' : ' (not allocated)'}`,
      describeVerdict(v),
      ...notes.map((n) => `note: ${n}`),
      `kernel calls: ${JSON.stringify(checker.kernelCounts)}`,
    ].join('\n');
    return { code: wouldScanOut ? 0 : 1, verdict: v, json, text };
  } finally {
    checker?.close();
    for (const r of owned.reverse()) r.close();
    dev.close();
  }
}

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        device: { type: 'string' },
        plane: { type: 'string' },
        format: { type: 'string' },
        modifier: { type: 'string' },
        size: { type: 'string' },
        stride: { type: 'string' },
        rotation: { type: 'string' },
        reflect: { type: 'string' },
        at: { type: 'string' },
        clip: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`primebuf explain: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const missing = (['device', 'plane', 'format', 'size'] as const).filter((k) => values[k] === undefined);
  if (missing.length > 0) {
    console.error(`primebuf explain: missing --${missing.join(', --')}\n\n${HELP}`);
    return 2;
  }
  let result: ExplainResult;
  try {
    result = explain({
      device: values.device!,
      plane: values.plane!,
      format: values.format!,
      size: values.size!,
      ...(values.modifier !== undefined ? { modifier: values.modifier } : {}),
      ...(values.stride !== undefined ? { stride: Number(values.stride) } : {}),
      ...(values.rotation !== undefined ? { rotation: Number(values.rotation) } : {}),
      ...(values.reflect !== undefined ? { reflect: values.reflect } : {}),
      ...(values.at !== undefined ? { at: values.at } : {}),
      ...(values.clip ? { clip: true } : {}),
    });
  } catch (err) {
    // bad arguments, or no device to ask (open failed, no KMS, not DRM master): not a verdict
    if (err instanceof PrimebufError) {
      console.error(`primebuf explain: ${err.message}`);
      return 2;
    }
    throw err;
  }
  console.log(values.json ? JSON.stringify(result.json, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) : result.text);
  return result.code;
}
