/**
 * Format modifiers: the vendor byte, a name for every modifier the vendored header can express,
 * and the decoded fields of the parameterised ones (AMD, ARM AFBC/AFRC, NVIDIA block-linear,
 * Broadcom SAND, Amlogic FBC, Vivante tile status/compression).
 *
 * Names follow libdrm's drmGetFormatModifierName(): for every modifier libdrm (2.4.114) names,
 * modifierName() returns the same string (the unit tests check this against the C library).
 * Modifiers libdrm does not name get a name in the same style when the header defines them
 * (e.g. Intel 4_TILED_MTL_RC_CCS, AMD GFX11/GFX12, Broadcom SAND columns, Vivante tile status),
 * and '0x%016x' otherwise.
 */
import { InvalidArgumentError } from '../errors.js';
import { CONSTANTS as C, MODIFIER_MACROS, MOD_VENDORS } from '../generated/fourcc.js';

const U64_MAX = (1n << 64n) - 1n;

/** DRM_FORMAT_MOD_LINEAR: no tiling, rows one after the other. */
export const DRM_FORMAT_MOD_LINEAR = 0n;
/** DRM_FORMAT_MOD_INVALID: "no modifier known" (the implicit-modifier case of linux-dmabuf). */
export const DRM_FORMAT_MOD_INVALID = 0x00ffffffffffffffn;

/** DRM_FORMAT_MOD_VENDOR_* ids by name ('INTEL' -> 1). */
export const MODIFIER_VENDORS: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries(MOD_VENDORS.map((v) => [v.name, v.id])),
);
const vendorNames = new Map<number, string>(MOD_VENDORS.map((v) => [v.id, v.name]));

export function checkModifier(mod: bigint, what = 'modifier'): bigint {
  if (typeof mod !== 'bigint' || mod < 0n || mod > U64_MAX) {
    throw new InvalidArgumentError(`${what} must be a bigint in [0, 2^64), got ${typeof mod === 'bigint' ? mod : String(mod)}`);
  }
  return mod;
}

/** '0x%016x' */
export function modifierHex(mod: bigint): string {
  return `0x${checkModifier(mod).toString(16).padStart(16, '0')}`;
}

/** The vendor byte (bits 63:56). */
export function modifierVendorId(mod: bigint): number {
  return Number(checkModifier(mod) >> 56n);
}

/** The vendor's name as libdrm's drmGetFormatModifierVendor() gives it ('INTEL'), or '0x%02x'. */
export function modifierVendor(mod: bigint): string {
  const id = modifierVendorId(mod);
  return vendorNames.get(id) ?? `0x${id.toString(16).padStart(2, '0')}`;
}

// --- the simple, unparameterised modifiers of the header ---------------------------------------

/** libdrm's name of a header macro: the macro without I915_FORMAT_MOD_ / DRM_FORMAT_MOD_[VENDOR_]. */
function simpleName(macro: string): string {
  if (macro.startsWith('I915_FORMAT_MOD_')) return macro.slice('I915_FORMAT_MOD_'.length);
  const rest = macro.slice('DRM_FORMAT_MOD_'.length);
  for (const v of vendorNames.values()) {
    if (rest.startsWith(`${v}_`)) return rest.slice(v.length + 1);
  }
  return rest;
}

const simple = new Map<bigint, { name: string; macro: string }>();
for (const m of MODIFIER_MACROS) {
  if (m.aliasOf || simple.has(m.value)) continue; // aliases (GENERIC_16_16_TILE) keep the first name
  simple.set(m.value, { name: simpleName(m.macro), macro: m.macro });
}

/** Every modifier the header names with a plain macro, with that macro and libdrm-style name. */
export function namedModifiers(): ReadonlyArray<{ modifier: bigint; name: string; macro: string; vendor: string }> {
  return [...simple].map(([modifier, s]) => ({ modifier, ...s, vendor: modifierVendor(modifier) }));
}

// --- decoded fields ----------------------------------------------------------------------------

export type ModifierFields = Record<string, string | number | boolean | string[]>;

export interface ModifierInfo {
  readonly modifier: bigint;
  /** '0x%016x' */
  readonly hex: string;
  readonly vendorId: number;
  /** 'INTEL', 'AMD', ... or '0x%02x' for a vendor the header does not know. */
  readonly vendor: string;
  /** libdrm-compatible name, or the hex string when nothing names it. */
  readonly name: string;
  /** false when `name` is only the hex fallback. */
  readonly known: boolean;
  /** The header macro whose value this is exactly, when there is one ('I915_FORMAT_MOD_Y_TILED_CCS'). */
  readonly macro?: string;
  /** Vendor-specific decoded fields. */
  readonly fields: ModifierFields;
}

const bits = (mod: bigint, shift: bigint, mask: bigint): number => Number((mod >> shift) & mask);

interface Decoded {
  name: string | null;
  fields: ModifierFields;
}

// ARM: bits 55:52 are the type; AFBC and AFRC carry flags in the low bits.
const AFBC_MODE_MASK = 0x000fffffffffffffn;
const AFBC_FLAGS: ReadonlyArray<[string, bigint]> = [
  ['YTR', C.AFBC_FORMAT_MOD_YTR],
  ['SPLIT', C.AFBC_FORMAT_MOD_SPLIT],
  ['SPARSE', C.AFBC_FORMAT_MOD_SPARSE],
  ['CBR', C.AFBC_FORMAT_MOD_CBR],
  ['TILED', C.AFBC_FORMAT_MOD_TILED],
  ['SC', C.AFBC_FORMAT_MOD_SC],
  ['DB', C.AFBC_FORMAT_MOD_DB],
  ['BCH', C.AFBC_FORMAT_MOD_BCH],
  ['USM', C.AFBC_FORMAT_MOD_USM],
];
const AFBC_BLOCKS: Record<number, string> = {
  [Number(C.AFBC_FORMAT_MOD_BLOCK_SIZE_16x16)]: '16x16',
  [Number(C.AFBC_FORMAT_MOD_BLOCK_SIZE_32x8)]: '32x8',
  [Number(C.AFBC_FORMAT_MOD_BLOCK_SIZE_64x4)]: '64x4',
  [Number(C.AFBC_FORMAT_MOD_BLOCK_SIZE_32x8_64x4)]: '32x8_64x4',
};
const AFRC_CU: Record<number, string> = {
  [Number(C.AFRC_FORMAT_MOD_CU_SIZE_16)]: 'CU_16',
  [Number(C.AFRC_FORMAT_MOD_CU_SIZE_24)]: 'CU_24',
  [Number(C.AFRC_FORMAT_MOD_CU_SIZE_32)]: 'CU_32',
};

function decodeArm(mod: bigint): Decoded {
  const type = bits(mod, 52n, 0xfn);
  if (type === Number(C.DRM_FORMAT_MOD_ARM_TYPE_AFBC)) {
    const mode = mod & AFBC_MODE_MASK;
    const block = AFBC_BLOCKS[Number(mode & C.AFBC_FORMAT_MOD_BLOCK_SIZE_MASK)];
    const flags = AFBC_FLAGS.filter(([, bit]) => mode & bit).map(([n]) => n);
    const fields: ModifierFields = { type: 'AFBC', blockSize: block ?? 'invalid', flags };
    if (!block) return { name: null, fields };
    // libdrm's spelling, trailing comma included when there are no flags
    return { name: `BLOCK_SIZE=${block},${flags.length ? `MODE=${flags.join('|')}` : ''}`, fields };
  }
  if (type === Number(C.DRM_FORMAT_MOD_ARM_TYPE_AFRC)) {
    const p0 = AFRC_CU[bits(mod, 0n, C.AFRC_FORMAT_MOD_CU_SIZE_MASK)];
    const p12 = AFRC_CU[bits(mod, 4n, C.AFRC_FORMAT_MOD_CU_SIZE_MASK)];
    const layout = mod & C.AFRC_FORMAT_MOD_LAYOUT_SCAN ? 'SCAN' : 'ROT';
    const fields: ModifierFields = { type: 'AFRC', p0CodingUnit: p0 ?? 'invalid', p12CodingUnit: p12 ?? 'none', layout };
    if (!p0) return { name: null, fields };
    return { name: `P0=${p0},${p12 ? `P12=${p12},` : ''}${layout}`, fields };
  }
  if (type === Number(C.DRM_FORMAT_MOD_ARM_TYPE_MISC)) return { name: null, fields: { type: 'MISC', value: Number(mod & 0xfffffffffffffn) } };
  return { name: null, fields: { type: `0x${type.toString(16)}` } };
}

function decodeNvidia(mod: bigint): Decoded {
  if ((mod & 0x10n) === 0n) return { name: null, fields: {} };
  const h = bits(mod, 0n, 0xfn);
  const kind = bits(mod, 12n, 0xffn);
  const gen = bits(mod, 20n, 0x3n);
  const sector = bits(mod, 22n, 0x1n);
  const compression = bits(mod, 23n, 0x7n);
  return {
    name: `BLOCK_LINEAR_2D,HEIGHT=${h},KIND=${kind},GEN=${gen},SECTOR=${sector},COMPRESSION=${compression}`,
    fields: {
      layout: 'BLOCK_LINEAR_2D',
      log2BlockHeightGobs: h,
      blockHeightGobs: 2 ** h,
      pageKind: kind,
      gobGeneration: gen,
      sectorLayout: sector ? 'desktop' : 'tegra',
      compression,
    },
  };
}

const AMD_VERSIONS: Record<number, string> = {
  [Number(C.AMD_FMT_MOD_TILE_VER_GFX9)]: 'GFX9',
  [Number(C.AMD_FMT_MOD_TILE_VER_GFX10)]: 'GFX10',
  [Number(C.AMD_FMT_MOD_TILE_VER_GFX10_RBPLUS)]: 'GFX10_RBPLUS',
  [Number(C.AMD_FMT_MOD_TILE_VER_GFX11)]: 'GFX11',
  [Number(C.AMD_FMT_MOD_TILE_VER_GFX12)]: 'GFX12',
};
const AMD_TILES: Record<number, string> = {
  [Number(C.AMD_FMT_MOD_TILE_GFX9_64K_S)]: 'GFX9_64K_S',
  [Number(C.AMD_FMT_MOD_TILE_GFX9_64K_D)]: 'GFX9_64K_D',
  [Number(C.AMD_FMT_MOD_TILE_GFX9_64K_S_X)]: 'GFX9_64K_S_X',
  [Number(C.AMD_FMT_MOD_TILE_GFX9_64K_D_X)]: 'GFX9_64K_D_X',
  [Number(C.AMD_FMT_MOD_TILE_GFX9_64K_R_X)]: 'GFX9_64K_R_X',
  [Number(C.AMD_FMT_MOD_TILE_GFX11_256K_R_X)]: 'GFX11_256K_R_X',
};
const AMD_GFX12_TILES: Record<number, string> = {
  [Number(C.AMD_FMT_MOD_TILE_GFX12_256B_2D)]: 'GFX12_256B_2D',
  [Number(C.AMD_FMT_MOD_TILE_GFX12_4K_2D)]: 'GFX12_4K_2D',
  [Number(C.AMD_FMT_MOD_TILE_GFX12_64K_2D)]: 'GFX12_64K_2D',
  [Number(C.AMD_FMT_MOD_TILE_GFX12_256K_2D)]: 'GFX12_256K_2D',
};
const AMD_DCC_BLOCKS: Record<number, string> = {
  [Number(C.AMD_FMT_MOD_DCC_BLOCK_64B)]: '64B',
  [Number(C.AMD_FMT_MOD_DCC_BLOCK_128B)]: '128B',
  [Number(C.AMD_FMT_MOD_DCC_BLOCK_256B)]: '256B',
};

function amd(mod: bigint, field: string): number {
  const shift = (C as Record<string, bigint>)[`AMD_FMT_MOD_${field}_SHIFT`];
  const mask = (C as Record<string, bigint>)[`AMD_FMT_MOD_${field}_MASK`];
  if (shift === undefined || mask === undefined) throw new Error(`no AMD field ${field} in the header`);
  return bits(mod, shift, mask);
}

function decodeAmd(mod: bigint): Decoded {
  const version = amd(mod, 'TILE_VERSION');
  const tile = amd(mod, 'TILE');
  const dcc = amd(mod, 'DCC') === 1;
  const retile = amd(mod, 'DCC_RETILE') === 1;
  const pipeAlign = amd(mod, 'DCC_PIPE_ALIGN') === 1;
  const versionName = AMD_VERSIONS[version];
  // GFX12 numbers its swizzle modes afresh; 256K_R_X exists only from GFX11 on
  const gfx11 = Number(C.AMD_FMT_MOD_TILE_VER_GFX11);
  const tileName =
    version === Number(C.AMD_FMT_MOD_TILE_VER_GFX12)
      ? AMD_GFX12_TILES[tile]
      : tile === Number(C.AMD_FMT_MOD_TILE_GFX11_256K_R_X) && version < gfx11
        ? undefined
        : AMD_TILES[tile];
  const fields: ModifierFields = {
    tileVersion: versionName ?? version,
    tile: tileName ?? tile,
    dcc,
    dccRetile: retile,
    dccPipeAlign: pipeAlign,
    dccIndependent64B: amd(mod, 'DCC_INDEPENDENT_64B') === 1,
    dccIndependent128B: amd(mod, 'DCC_INDEPENDENT_128B') === 1,
    dccMaxCompressedBlock: AMD_DCC_BLOCKS[amd(mod, 'DCC_MAX_COMPRESSED_BLOCK')] ?? amd(mod, 'DCC_MAX_COMPRESSED_BLOCK'),
    dccConstantEncode: amd(mod, 'DCC_CONSTANT_ENCODE') === 1,
    pipeXorBits: amd(mod, 'PIPE_XOR_BITS'),
    bankXorBits: amd(mod, 'BANK_XOR_BITS'),
    packers: amd(mod, 'PACKERS'),
    rb: amd(mod, 'RB'),
    pipe: amd(mod, 'PIPE'),
    reservedBits: Number((mod >> 36n) & 0xfffffn),
  };
  if (!versionName) return { name: null, fields };
  const parts = [versionName];
  if (tileName) parts.push(tileName);
  if (dcc) {
    parts.push('DCC');
    if (retile) parts.push('DCC_RETILE');
    if (!retile && pipeAlign) parts.push('DCC_PIPE_ALIGN');
    if (fields.dccIndependent64B) parts.push('DCC_INDEPENDENT_64B');
    if (fields.dccIndependent128B) parts.push('DCC_INDEPENDENT_128B');
    const block = AMD_DCC_BLOCKS[amd(mod, 'DCC_MAX_COMPRESSED_BLOCK')];
    if (block) parts.push(`DCC_MAX_COMPRESSED_BLOCK=${block}`);
    if (fields.dccConstantEncode) parts.push('DCC_CONSTANT_ENCODE');
  }
  // the swizzle parameters matter for the _X (xor'ed) tiles of GFX9 and later
  const xTiles = [C.AMD_FMT_MOD_TILE_GFX9_64K_S_X, C.AMD_FMT_MOD_TILE_GFX9_64K_D_X, C.AMD_FMT_MOD_TILE_GFX9_64K_R_X, C.AMD_FMT_MOD_TILE_GFX11_256K_R_X];
  const xTile = version !== Number(C.AMD_FMT_MOD_TILE_VER_GFX12) && tileName !== undefined && xTiles.map(Number).includes(tile);
  if (xTile) {
    parts.push(`PIPE_XOR_BITS=${fields.pipeXorBits}`);
    if (version === Number(C.AMD_FMT_MOD_TILE_VER_GFX9)) parts.push(`BANK_XOR_BITS=${fields.bankXorBits}`);
    if (version === Number(C.AMD_FMT_MOD_TILE_VER_GFX10_RBPLUS)) parts.push(`PACKERS=${fields.packers}`);
    if (dcc && version === Number(C.AMD_FMT_MOD_TILE_VER_GFX9)) {
      parts.push(`RB=${fields.rb}`);
      if (retile || pipeAlign) parts.push(`PIPE_${fields.pipe}`);
    }
  }
  return { name: parts.join(','), fields };
}

function decodeAmlogic(mod: bigint): Decoded {
  const layout = bits(mod, 0n, C.__fourcc_mod_amlogic_layout_mask);
  const options = bits(mod, C.__fourcc_mod_amlogic_options_shift, C.__fourcc_mod_amlogic_options_mask);
  const layoutName =
    layout === Number(C.AMLOGIC_FBC_LAYOUT_BASIC) ? 'BASIC' : layout === Number(C.AMLOGIC_FBC_LAYOUT_SCATTER) ? 'SCATTER' : 'INVALID_LAYOUT';
  const memSaving = (BigInt(options) & C.AMLOGIC_FBC_OPTION_MEM_SAVING) !== 0n;
  return {
    name: `FBC,LAYOUT=${layoutName},OPTIONS=${memSaving ? 'MEM_SAVING' : '0'}`,
    fields: { layout: layoutName, memSaving, options },
  };
}

const VIVANTE_TS: Record<string, string> = {
  [String(C.VIVANTE_MOD_TS_64_4)]: '64B_4',
  [String(C.VIVANTE_MOD_TS_64_2)]: '64B_2',
  [String(C.VIVANTE_MOD_TS_128_4)]: '128B_4',
  [String(C.VIVANTE_MOD_TS_256_4)]: '256B_4',
};

function decodeVivante(mod: bigint): Decoded {
  const base = mod & ~C.VIVANTE_MOD_EXT_MASK;
  const ts = mod & C.VIVANTE_MOD_TS_MASK;
  const comp = mod & C.VIVANTE_MOD_COMP_MASK;
  // the vendor byte with value 0 is Vivante's linear layout (with tile status or compression)
  const tiling = (base & ((1n << 56n) - 1n)) === 0n ? 'LINEAR' : (simple.get(base)?.name ?? 'UNKNOWN');
  const tileStatus = ts === 0n ? '' : VIVANTE_TS[String(ts)] ?? 'UNKNOWN';
  const compression = comp === 0n ? '' : comp === C.VIVANTE_MOD_COMP_DEC400 ? 'DEC400' : 'UNKNOWN';
  const fields: ModifierFields = { tiling, tileStatus: tileStatus || 'none', compression: compression || 'none' };
  if (tiling === 'UNKNOWN') return { name: null, fields };
  return { name: `${tiling}${tileStatus ? `,TS=${tileStatus}` : ''}${compression ? `,COMP=${compression}` : ''}`, fields };
}

const BROADCOM_PARAM_SHIFT = C.__fourcc_mod_broadcom_param_shift;
const BROADCOM_PARAM_MASK = (1n << C.__fourcc_mod_broadcom_param_bits) - 1n;

function decodeBroadcom(mod: bigint): Decoded {
  const param = (mod >> BROADCOM_PARAM_SHIFT) & BROADCOM_PARAM_MASK;
  const base = mod & ~(BROADCOM_PARAM_MASK << BROADCOM_PARAM_SHIFT);
  const layout = simple.get(base)?.name;
  const fields: ModifierFields = { layout: layout ?? 'UNKNOWN', parameter: Number(param) };
  if (layout?.startsWith('SAND')) {
    fields.columnHeight = Number(param);
    return { name: param === 0n ? layout : `${layout},COL_HEIGHT=${param}`, fields };
  }
  return { name: null, fields };
}

function decodeIntel(name: string | undefined): ModifierFields {
  const m = name ? /^(X|Y|Yf|4)_TILED(?:_(GEN12|DG2|MTL|LNL|BMG))?(?:_(RC_CCS_CC|RC_CCS|MC_CCS|CCS))?$/.exec(name) : null;
  if (!m) return {};
  const [, tiling, platform, ccs] = m;
  const fields: ModifierFields = { tiling: `${tiling}-tiled`, compression: ccs ?? 'none' };
  if (platform) fields.platform = platform;
  if (ccs) {
    fields.renderCompression = ccs.startsWith('RC') || ccs === 'CCS';
    fields.mediaCompression = ccs === 'MC_CCS';
    fields.clearColor = ccs.endsWith('_CC');
  }
  return fields;
}

// Decoded modifiers: a pure function of the value, asked every frame by logs and verdicts.
// Bounded: a caller feeding arbitrary values cannot grow it without limit.
const decodedCache = new Map<bigint, ModifierInfo>();
const DECODED_CACHE_MAX = 1024;

/** Everything this module knows about a modifier. */
export function decodeModifier(mod: bigint): ModifierInfo {
  const hit = decodedCache.get(mod);
  if (hit) return hit;
  const info = decodeUncached(mod);
  if (decodedCache.size >= DECODED_CACHE_MAX) decodedCache.clear();
  decodedCache.set(mod, info);
  return info;
}

function decodeUncached(mod: bigint): ModifierInfo {
  checkModifier(mod);
  const vendorId = modifierVendorId(mod);
  const vendor = modifierVendor(mod);
  const plain = simple.get(mod);
  let decoded: Decoded = { name: null, fields: {} };
  switch (vendor) {
    case 'ARM': decoded = decodeArm(mod); break;
    case 'NVIDIA': decoded = decodeNvidia(mod); break;
    case 'AMD': decoded = decodeAmd(mod); break;
    case 'AMLOGIC': decoded = decodeAmlogic(mod); break;
    case 'VIVANTE': decoded = decodeVivante(mod); break;
    case 'BROADCOM': decoded = decodeBroadcom(mod); break;
    case 'INTEL': decoded = { name: null, fields: decodeIntel(plain?.name) }; break;
  }
  // like libdrm: the vendor decoder first, then the header's plain names
  const name = decoded.name ?? plain?.name ?? null;
  // plain layouts without fields of their own (Samsung, Qualcomm, Allwinner, Tegra tiled...)
  if (plain && Object.keys(decoded.fields).length === 0 && vendorId !== 0) decoded.fields = { layout: plain.name };
  return Object.freeze({
    modifier: mod,
    hex: modifierHex(mod),
    vendorId,
    vendor,
    name: name ?? modifierHex(mod),
    known: name !== null,
    ...(plain ? { macro: plain.macro } : {}),
    fields: Object.freeze(decoded.fields),
  });
}

/** libdrm-compatible modifier name ('LINEAR', 'Y_TILED_CCS', 'GFX9,GFX9_64K_S_X,...'), or '0x%016x'. */
export function modifierName(mod: bigint): string {
  return decodeModifier(mod).name;
}

/**
 * A modifier from text: hex ('0x0100000000000004'), decimal, a header macro
 * ('I915_FORMAT_MOD_Y_TILED_CCS') or a plain name with its vendor ('INTEL:Y_TILED_CCS', or
 * 'LINEAR' / 'INVALID' on their own).
 */
export function parseModifier(text: string): bigint {
  const s = text.trim();
  let v: bigint | undefined;
  if (/^0x[0-9a-f]{1,16}$/i.test(s) || /^\d+$/.test(s)) v = BigInt(s);
  else {
    for (const [value, n] of simple) {
      if (n.macro === s || `${modifierVendor(value)}:${n.name}` === s || (modifierVendorId(value) === 0 && n.name === s)) v = value;
    }
  }
  if (v === undefined || v > U64_MAX) throw new InvalidArgumentError(`not a modifier: ${JSON.stringify(text)}`);
  return v;
}
