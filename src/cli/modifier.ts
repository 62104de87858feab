/**
 * `primebuf modifier <MODIFIER>... [--json]`: decodes format modifiers (vendor, name, the
 * header macro, vendor-specific fields), and shows libdrm's own name for comparison when the
 * addon is available.
 */
import { parseArgs } from 'node:util';
import { decodeModifier, parseModifier, type ModifierInfo } from '../formats/index.js';

const HELP = `usage: primebuf modifier MODIFIER... [--json]

Decodes DRM format modifiers. MODIFIER is hex (0x0100000000000004), decimal, a header macro
(I915_FORMAT_MOD_Y_TILED_CCS) or VENDOR:NAME (INTEL:Y_TILED_CCS, or LINEAR / INVALID).

  --json      machine-readable output (one object, or an array for several modifiers)
  -h, --help  this text`;

interface Decoded {
  modifier: string;
  vendor: string;
  vendorId: number;
  name: string;
  known: boolean;
  macro: string | null;
  fields: ModifierInfo['fields'];
  libdrm?: { vendor: string | null; name: string | null };
}

async function libdrmNames(): Promise<((mod: bigint) => Decoded['libdrm']) | undefined> {
  try {
    const { native } = await import('../native.js');
    return (mod) => ({ vendor: native.drmGetFormatModifierVendor(mod), name: native.drmGetFormatModifierName(mod) });
  } catch {
    return undefined; // the addon is not built: decode without the comparison
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length === 0) {
    console.error(`primebuf modifier: which modifier?\n\n${HELP}`);
    return 2;
  }
  const libdrm = await libdrmNames();
  const decoded: Decoded[] = positionals.map((text) => {
    const mod = parseModifier(text);
    const info = decodeModifier(mod);
    return {
      modifier: info.hex,
      vendor: info.vendor,
      vendorId: info.vendorId,
      name: info.name,
      known: info.known,
      macro: info.macro ?? null,
      fields: info.fields,
      ...(libdrm ? { libdrm: libdrm(mod) } : {}),
    };
  });
  if (values.json) {
    console.log(JSON.stringify(decoded.length === 1 ? decoded[0] : decoded, null, 2));
    return 0;
  }
  const blocks = decoded.map((d) => {
    const lines: Array<[string, string]> = [
      ['vendor', `${d.vendor} (0x${d.vendorId.toString(16).padStart(2, '0')})`],
      ['name', d.known ? d.name : `${d.name} (not a modifier this header names)`],
    ];
    if (d.macro) lines.push(['macro', d.macro]);
    if (d.libdrm) lines.push(['libdrm', `${d.libdrm.vendor ?? '(unknown vendor)'} ${d.libdrm.name ?? '(no name)'}`]);
    for (const [k, v] of Object.entries(d.fields)) lines.push([k, Array.isArray(v) ? v.join('|') || '(none)' : String(v)]);
    const w = Math.max(...lines.map(([k]) => k.length));
    return [d.modifier, ...lines.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n');
  });
  console.log(blocks.join('\n\n'));
  return 0;
}
