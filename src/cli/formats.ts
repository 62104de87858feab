/**
 * `primebuf formats [names...] [--size WxH] [--json]`: the pixel format table. Every DRM_FORMAT_*
 * code of the vendored header, with what the kernel's format table says about it (planes, bytes
 * per block, block size, subsampling, alpha, YUV); with --size, each plane's minimum pitch and
 * size by the kernel's rules.
 */
import { parseArgs } from 'node:util';
import { InvalidArgumentError } from '../errors.js';
import {
  type FormatInfo,
  formatInfo,
  fourcc,
  fourccString,
  headerFormats,
  minPitch,
  planeHeight,
  planeSize,
  planeWidth,
} from '../formats/index.js';

const HELP = `usage: primebuf formats [NAME...] [--size WxH] [--json]

Lists every DRM_FORMAT_* code of the vendored kernel header (native/vendor/drm_fourcc.h) with
what the kernel's format table says about it. NAMEs ('NV12', 'XR24', '0x3231564e') restrict
the list. Formats the kernel's table does not describe are listed with '-'.

  --size WxH  add each plane's minimum pitch and size for a WxH framebuffer (kernel rules)
  --json      machine-readable output (codes as '0x%08x'; pitches and sizes as decimal strings)
  -h, --help  this text`;

interface PlaneLayout {
  plane: number;
  width: number;
  height: number;
  minPitch: string;
  size: string;
}

interface Row {
  name: string;
  code: string;
  fourcc: string;
  inKernelTable: boolean;
  planes: number | null;
  bytesPerBlock: number[] | null;
  blockWidth: number[] | null;
  blockHeight: number[] | null;
  hsub: number | null;
  vsub: number | null;
  hasAlpha: boolean | null;
  isYuv: boolean | null;
  depth: number | null;
  requiresModifier: boolean | null;
  comment: string;
  layout?: PlaneLayout[];
}

function parseSize(text: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(text);
  if (!m) throw new InvalidArgumentError(`--size wants WxH, e.g. 1920x1080, got ${JSON.stringify(text)}`);
  return [Number(m[1]), Number(m[2])];
}

function layoutOf(info: FormatInfo, width: number, height: number): PlaneLayout[] {
  return Array.from({ length: info.planes }, (_, plane) => ({
    plane,
    width: planeWidth(info.format, width, plane),
    height: planeHeight(info.format, height, plane),
    minPitch: minPitch(info.format, width, plane).toString(),
    size: planeSize(info.format, width, height, plane).toString(),
  }));
}

function row(name: string, code: number, comment: string, size?: [number, number]): Row {
  const info = formatInfo(code);
  return {
    name,
    code: `0x${code.toString(16).padStart(8, '0')}`,
    fourcc: fourccString(code),
    inKernelTable: info !== undefined,
    planes: info?.planes ?? null,
    bytesPerBlock: info ? [...info.bytesPerBlock] : null,
    blockWidth: info ? [...info.blockWidth] : null,
    blockHeight: info ? [...info.blockHeight] : null,
    hsub: info?.hsub ?? null,
    vsub: info?.vsub ?? null,
    hasAlpha: info?.hasAlpha ?? null,
    isYuv: info?.isYuv ?? null,
    depth: info?.depth ?? null,
    requiresModifier: info?.requiresModifier ?? null,
    comment,
    ...(info && size ? { layout: layoutOf(info, size[0], size[1]) } : {}),
  };
}

/** '1,2' or, where blocks are larger than a pixel, '5/4x1,5/2x1' (bytes per W x H block). */
function blocksText(r: Row): string {
  if (!r.bytesPerBlock) return '-';
  return r.bytesPerBlock
    .map((b, i) => (r.blockWidth![i] === 1 && r.blockHeight![i] === 1 ? `${b}` : `${b}/${r.blockWidth![i]}x${r.blockHeight![i]}`))
    .join(',');
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, size: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const size = values.size !== undefined ? parseSize(values.size) : undefined;
  const all = headerFormats();
  const wanted = positionals.length ? new Set(positionals.map((p) => fourcc(p))) : undefined;
  const rows = all.filter((f) => !wanted || wanted.has(f.code)).map((f) => row(f.name, f.code, f.comment, size));

  if (values.json) {
    console.log(JSON.stringify(rows, null, 2));
    return 0;
  }
  const head = ['NAME', 'CODE', '4CC', 'PLANES', 'BYTES/BLOCK', 'SUB', 'ALPHA', 'YUV'];
  if (size) head.push(`PITCH@${size[0]}`, `SIZE@${size[0]}x${size[1]}`);
  const cells = rows.map((r) => {
    const line = [
      r.name,
      r.code,
      r.fourcc,
      r.planes === null ? '-' : String(r.planes),
      blocksText(r),
      r.hsub === null ? '-' : `${r.hsub}x${r.vsub}`,
      r.hasAlpha === null ? '-' : r.hasAlpha ? 'yes' : 'no',
      r.isYuv === null ? '-' : r.isYuv ? 'yes' : 'no',
    ];
    if (size) {
      line.push(r.layout ? r.layout.map((p) => p.minPitch).join(',') : '-', r.layout ? r.layout.map((p) => p.size).join(',') : '-');
    }
    return line;
  });
  console.log(table([head, ...cells]));
  if (!wanted) {
    const described = rows.filter((r) => r.inKernelTable).length;
    console.log(`\n${rows.length} codes in the header, ${described} described by the kernel's format table ('-': not described)`);
  }
  return 0;
}
