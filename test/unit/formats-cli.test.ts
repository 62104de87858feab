// The `primebuf formats` and `primebuf modifier` commands, run as a user runs them.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { packageRoot } from '../../src/native.js';

const cli = join(packageRoot, 'dist', 'src', 'cli.js');

function primebuf(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface FormatRow {
  name: string;
  code: string;
  fourcc: string;
  inKernelTable: boolean;
  planes: number | null;
  bytesPerBlock: number[] | null;
  hsub: number | null;
  vsub: number | null;
  hasAlpha: boolean | null;
  isYuv: boolean | null;
  layout?: Array<{ plane: number; minPitch: string; size: string }>;
}

t.test('formats --json lists every DRM_FORMAT_* code of the vendored header', async (t) => {
  const r = primebuf('formats', '--json');
  t.equal(r.code, 0, r.err);
  const rows: FormatRow[] = JSON.parse(r.out);
  const header = readFileSync(join(packageRoot, 'native', 'vendor', 'drm_fourcc.h'), 'utf8');
  const names = [...header.matchAll(/^#define\s+DRM_FORMAT_(\w+)\s+fourcc_code\(/gm)].map((m) => m[1]);
  t.ok(names.length > 100);
  const listed = new Set(rows.map((row) => row.name));
  for (const n of names) t.ok(listed.has(n), `${n} listed`);
  const byName = new Map(rows.map((row) => [row.name, row]));
  t.match(byName.get('NV12'), { code: '0x3231564e', fourcc: 'NV12', planes: 2, bytesPerBlock: [1, 2], hsub: 2, vsub: 2, isYuv: true });
  t.match(byName.get('YUV420'), { planes: 3, fourcc: 'YU12' });
  t.match(byName.get('P010'), { planes: 2, bytesPerBlock: [2, 4] });
  t.match(byName.get('XRGB8888'), { code: '0x34325258', fourcc: 'XR24', planes: 1, bytesPerBlock: [4], hasAlpha: false, isYuv: false });
  t.match(byName.get('R16'), { inKernelTable: false, planes: null });
});

t.test('formats NAME --size adds pitches and sizes by the kernel rules', async (t) => {
  const r = primebuf('formats', 'NV12', 'XR24', '--size', '1921x1081', '--json');
  t.equal(r.code, 0, r.err);
  const rows: FormatRow[] = JSON.parse(r.out);
  t.same(rows.map((row) => row.name), ['XRGB8888', 'NV12']);
  t.same(rows[1].layout?.map((p) => [p.minPitch, p.size]), [['1921', String(1921 * 1081)], ['1922', String(540 * 1922 + 1922)]]);
  t.same(rows[0].layout?.map((p) => p.minPitch), ['7684']);
});

t.test('formats prints an aligned, readable table', async (t) => {
  const r = primebuf('formats');
  t.equal(r.code, 0, r.err);
  const lines = r.out.split('\n');
  t.match(lines[0], /^NAME\s+CODE\s+4CC\s+PLANES\s+BYTES\/BLOCK\s+SUB\s+ALPHA\s+YUV$/);
  const nv12 = lines.find((l) => l.startsWith('NV12 '));
  t.match(nv12, /^NV12\s+0x3231564e\s+NV12\s+2\s+1,2\s+2x2\s+no\s+yes$/);
  t.equal(lines.find((l) => l.startsWith('XRGB8888 '))?.indexOf('0x34325258'), lines[0].indexOf('CODE'), 'columns line up');
  t.match(r.out, /126 codes in the header|\d+ codes in the header/);
});

t.test('formats rejects unknown names with a message, and has --help', async (t) => {
  const bad = primebuf('formats', 'NOPE');
  t.equal(bad.code, 1);
  t.match(bad.err, /unknown pixel format "NOPE"/);
  const help = primebuf('formats', '--help');
  t.equal(help.code, 0);
  t.match(help.out, /usage: primebuf formats/);
});

t.test('modifier 0x0100000000000004 --json names the Intel vendor and Y-tiled CCS', async (t) => {
  const r = primebuf('modifier', '0x0100000000000004', '--json');
  t.equal(r.code, 0, r.err);
  const d = JSON.parse(r.out);
  t.match(d, {
    modifier: '0x0100000000000004',
    vendor: 'INTEL',
    vendorId: 1,
    name: 'Y_TILED_CCS',
    macro: 'I915_FORMAT_MOD_Y_TILED_CCS',
    fields: { tiling: 'Y-tiled', compression: 'CCS' },
    libdrm: { vendor: 'INTEL', name: 'Y_TILED_CCS' },
  });
});

t.test('modifier decodes several at once, in text and JSON', async (t) => {
  const r = primebuf('modifier', '0x0200000440417901', 'LINEAR', '--json');
  t.equal(r.code, 0, r.err);
  const d = JSON.parse(r.out);
  t.equal(d.length, 2);
  t.match(d[0], { vendor: 'AMD', fields: { tileVersion: 'GFX9', dcc: true, pipe: 2 } });
  t.match(d[1], { vendor: 'NONE', name: 'LINEAR' });
  const text = primebuf('modifier', 'INTEL:X_TILED');
  t.equal(text.code, 0, text.err);
  t.match(text.out, /^0x0100000000000001\n\s+vendor\s+INTEL \(0x01\)\n\s+name\s+X_TILED\n/);
  const none = primebuf('modifier');
  t.equal(none.code, 2);
  const bad = primebuf('modifier', 'zzz');
  t.equal(bad.code, 1);
  t.match(bad.err, /not a modifier/);
});
