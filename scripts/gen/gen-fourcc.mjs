#!/usr/bin/env node
// Generates src/generated/fourcc.ts from the vendored kernel header native/vendor/drm_fourcc.h.
//
// The header is read with a small C preprocessor of its own (object- and function-like macros,
// `##` pasting, line continuations) and every macro whose expansion is a constant integer
// expression is evaluated with BigInt. From that come:
//   FORMATS          every DRM_FORMAT_* pixel format code (name without the prefix, code, comment)
//   MOD_VENDORS      every DRM_FORMAT_MOD_VENDOR_* id
//   MODIFIER_MACROS  every named modifier (I915_FORMAT_MOD_*, DRM_FORMAT_MOD_*) built with
//                    fourcc_mod_code(), with its vendor and, for aliases, the macro it repeats
//   CONSTANTS        every other constant the header defines (AFBC/AFRC flags, AMD bitfield
//                    shifts and masks, Vivante/Amlogic/Broadcom fields, ...)
// Nothing here is hand-maintained: a newer header gives a newer table.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const headerPath = join(root, 'native', 'vendor', 'drm_fourcc.h');
const outPath = join(root, 'src', 'generated', 'fourcc.ts');

const source = readFileSync(headerPath, 'utf8');
const sha256 = createHash('sha256').update(source).digest('hex');

// --- lexing ------------------------------------------------------------------------------------

// Multi-line comments vanish (keeping line count); one-line comments become markers so that a
// #define keeps the description written after it.
const oneLineComments = [];
const text = source
  .replace(/\/\*[\s\S]*?\*\//g, (c) => {
    if (c.includes('\n')) return c.replace(/[^\n]/g, ' ');
    oneLineComments.push(c.slice(2, -2).trim());
    return ` @@${oneLineComments.length - 1}@@ `;
  })
  .replace(/\/\/[^\n]*/g, '')
  .replace(/\\\n/g, ' ');

const TOKEN = /\s*(?:(@@\d+@@)|([A-Za-z_]\w*)|(0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*)|('(?:\\.|[^'\\])')|(##|<<|>>|[-+*/%&|^~!(),]))/y;

function tokenize(s) {
  const out = [];
  TOKEN.lastIndex = 0;
  let m;
  while (TOKEN.lastIndex < s.length && (m = TOKEN.exec(s))) {
    if (m[1]) continue; // comment marker
    if (m[2]) out.push({ t: 'id', v: m[2] });
    else if (m[3]) out.push({ t: 'num', v: BigInt(m[3].replace(/[uUlL]+$/, '')) });
    else if (m[4]) out.push({ t: 'num', v: charValue(m[4]) });
    else if (m[5]) out.push({ t: 'op', v: m[5] });
    else break;
  }
  if (TOKEN.lastIndex < s.length && s.slice(TOKEN.lastIndex).trim() !== '') return null; // not an expression
  return out;
}

function charValue(lit) {
  const body = lit.slice(1, -1);
  if (body.length === 1) return BigInt(body.charCodeAt(0));
  const escapes = { n: 10, t: 9, r: 13, '0': 0, '\\': 92, "'": 39 };
  if (body[0] === '\\' && body.length === 2 && body[1] in escapes) return BigInt(escapes[body[1]]);
  throw new Error(`unsupported character literal ${lit}`);
}

// --- macros ------------------------------------------------------------------------------------

const macros = new Map(); // name -> { params: string[] | null, body: string, line, comment }
const order = [];
{
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const m = /^\s*#\s*define\s+([A-Za-z_]\w*)(\(([^)]*)\))?(.*)$/.exec(line);
    if (!m) return;
    const [, name, , params, rest] = m;
    const comments = [...rest.matchAll(/@@(\d+)@@/g)].map((c) => oneLineComments[Number(c[1])]);
    macros.set(name, {
      params: params === undefined ? null : params.split(',').map((p) => p.trim()).filter(Boolean),
      body: rest.replace(/@@\d+@@/g, ' ').trim(),
      line: i + 1,
      comment: comments.join(' '),
    });
    order.push(name);
  });
}

/** Expands macros in a token list; `seen` guards recursion; `used` collects expanded names. */
function expand(tokens, seen, used) {
  const out = [];
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i];
    const def = tok.t === 'id' ? macros.get(tok.v) : undefined;
    if (!def || seen.has(tok.v)) {
      out.push(tok);
      continue;
    }
    const body = tokenize(def.body);
    if (body === null) throw new Error(`${tok.v}: not an expression`);
    if (def.params === null) {
      used.add(tok.v);
      out.push(...expand(body, new Set([...seen, tok.v]), used));
      continue;
    }
    if (tokens[i + 1]?.v !== '(') {
      out.push(tok);
      continue;
    }
    // collect the arguments
    const args = [[]];
    let depth = 0;
    let j = i + 2;
    for (; j < tokens.length; j++) {
      const a = tokens[j];
      if (a.v === '(') depth++;
      if (a.v === ')') {
        if (depth === 0) break;
        depth--;
      }
      if (a.v === ',' && depth === 0) args.push([]);
      else args[args.length - 1].push(a);
    }
    if (j >= tokens.length) throw new Error(`${tok.v}: unterminated call`);
    if (def.params.length !== args.length && !(def.params.length === 0 && args.length === 1 && args[0].length === 0)) {
      throw new Error(`${tok.v}: expects ${def.params.length} arguments, got ${args.length}`);
    }
    used.add(tok.v);
    // substitute: raw arguments next to ##, expanded ones elsewhere
    const subst = [];
    for (let k = 0; k < body.length; k++) {
      const b = body[k];
      const p = b.t === 'id' ? def.params.indexOf(b.v) : -1;
      if (p < 0) {
        subst.push(b);
        continue;
      }
      const pasted = body[k - 1]?.v === '##' || body[k + 1]?.v === '##';
      subst.push(...(pasted ? args[p] : expand(args[p], seen, used)));
    }
    const joined = [];
    for (let k = 0; k < subst.length; k++) {
      if (subst[k].v === '##') {
        const left = joined.pop();
        const right = subst[++k];
        joined.push({ t: 'id', v: `${left.v}${right.v}` });
      } else {
        joined.push(subst[k]);
      }
    }
    out.push(...expand(joined, new Set([...seen, tok.v]), used));
    i = j;
  }
  return out;
}

// --- evaluation --------------------------------------------------------------------------------

const U64 = (1n << 64n) - 1n;
const CASTS = { __u8: 0xffn, __u16: 0xffffn, __u32: 0xffffffffn, __u64: U64, uint32_t: 0xffffffffn, uint64_t: U64 };
const BINARY = [
  ['|'],
  ['^'],
  ['&'],
  ['<<', '>>'],
  ['+', '-'],
  ['*', '/', '%'],
];

function evaluate(tokens) {
  let pos = 0;
  const peek = () => tokens[pos];
  const take = (v) => {
    if (tokens[pos]?.v !== v) throw new Error(`expected ${v}`);
    pos++;
  };
  function primary() {
    const tok = tokens[pos++];
    if (!tok) throw new Error('unexpected end');
    if (tok.t === 'num') return tok.v;
    if (tok.v === '(') {
      const cast = tokens[pos];
      if (cast?.t === 'id' && cast.v in CASTS && tokens[pos + 1]?.v === ')') {
        pos += 2;
        return unary() & CASTS[cast.v];
      }
      const v = binary(0);
      take(')');
      return v;
    }
    if (tok.v === '-') return -unary();
    if (tok.v === '+') return unary();
    if (tok.v === '~') return ~unary() & U64;
    if (tok.v === '!') return unary() === 0n ? 1n : 0n;
    throw new Error(`unexpected ${tok.v}`);
  }
  const unary = primary;
  function binary(level) {
    if (level === BINARY.length) return unary();
    let left = binary(level + 1);
    while (peek() && BINARY[level].includes(peek().v)) {
      const op = tokens[pos++].v;
      const right = binary(level + 1);
      switch (op) {
        case '|': left |= right; break;
        case '^': left ^= right; break;
        case '&': left &= right; break;
        case '<<': left = (left << right) & U64; break;
        case '>>': left >>= right; break;
        case '+': left += right; break;
        case '-': left -= right; break;
        case '*': left *= right; break;
        case '/': left /= right; break;
        case '%': left %= right; break;
      }
    }
    return left;
  }
  const v = binary(0);
  if (pos !== tokens.length) throw new Error(`trailing ${tokens[pos].v}`);
  return v & U64;
}

// --- classify ----------------------------------------------------------------------------------

const formats = [];
const vendors = [];
const modifiers = [];
const constants = [];
const skipped = [];
const NOT_FORMATS = new Set(['DRM_FORMAT_BIG_ENDIAN', 'DRM_FORMAT_RESERVED']);

for (const name of order) {
  const def = macros.get(name);
  if (def.params !== null || name === 'DRM_FOURCC_H') continue;
  const tokens = tokenize(def.body);
  if (tokens === null || tokens.length === 0) continue;
  let value;
  const used = new Set();
  try {
    value = evaluate(expand(tokens, new Set([name]), used));
  } catch (err) {
    skipped.push(`${name}: ${err.message}`);
    continue;
  }
  const single = tokens.length === 1 && tokens[0].t === 'id' ? tokens[0].v : undefined;
  let m;
  if ((m = /^DRM_FORMAT_MOD_VENDOR_(\w+)$/.exec(name))) {
    vendors.push({ name: m[1], id: Number(value) });
  } else if (/^(DRM|I915)_FORMAT_MOD_/.test(name) && used.has('fourcc_mod_code')) {
    modifiers.push({ macro: name, value, aliasOf: single && macros.has(single) ? single : undefined });
  } else if (/^DRM_FORMAT_/.test(name) && !/^DRM_FORMAT_MOD_/.test(name) && !NOT_FORMATS.has(name)) {
    if (value > 0xffffffffn) throw new Error(`${name} = ${value} is not a 32-bit format code`);
    formats.push({ name: name.slice('DRM_FORMAT_'.length), code: Number(value), comment: def.comment, line: def.line });
  } else {
    constants.push({ name, value });
  }
}

if (formats.length < 100 || vendors.length < 5 || modifiers.length < 20) {
  throw new Error(`suspiciously few definitions (${formats.length} formats, ${vendors.length} vendors, ${modifiers.length} modifiers)`);
}

// --- emit --------------------------------------------------------------------------------------

const hex64 = (v) => `0x${v.toString(16).padStart(16, '0')}n`;
const q = JSON.stringify;
const lines = [
  '// GENERATED by scripts/gen/gen-fourcc.mjs from native/vendor/drm_fourcc.h. Do not edit; never commit.',
  `// header sha256 ${sha256}`,
  '/* eslint-disable */',
  '',
  `export const HEADER_SHA256 = ${q(sha256)};`,
  '',
  '/** A DRM_FORMAT_* code of the header: name without the prefix, code, the comment next to it. */',
  'export interface HeaderFormat { readonly name: string; readonly code: number; readonly comment: string }',
  '/** A named modifier macro (I915_FORMAT_MOD_*, DRM_FORMAT_MOD_*) of the header. */',
  'export interface HeaderModifier { readonly macro: string; readonly value: bigint; readonly aliasOf?: string }',
  '',
  '/** Every DRM_FORMAT_* pixel format code in header order. */',
  'export const FORMATS: readonly HeaderFormat[] = [',
  ...formats.map((f) => `  { name: ${q(f.name)}, code: 0x${f.code.toString(16).padStart(8, '0')}, comment: ${q(f.comment)} },`),
  '];',
  '',
  '/** DRM_FORMAT_MOD_VENDOR_* ids (the top byte of a modifier). */',
  'export const MOD_VENDORS: readonly { readonly name: string; readonly id: number }[] = [',
  ...vendors.map((v) => `  { name: ${q(v.name)}, id: ${v.id} },`),
  '];',
  '',
  '/** Named modifiers built with fourcc_mod_code(), in header order. */',
  'export const MODIFIER_MACROS: readonly HeaderModifier[] = [',
  ...modifiers.map((m) => `  { macro: ${q(m.macro)}, value: ${hex64(m.value)}${m.aliasOf ? `, aliasOf: ${q(m.aliasOf)}` : ''} },`),
  '];',
  '',
  '/** Every other constant the header defines (bitfield shifts, masks, flags, layout ids). */',
  'export const CONSTANTS = {',
  ...constants.map((c) => `  ${c.name}: ${c.value}n,`),
  '} as const;',
  '',
];
mkdirSync(dirname(outPath), { recursive: true });
const output = lines.join('\n');
let previous = '';
try {
  previous = readFileSync(outPath, 'utf8');
} catch {}
if (previous !== output) writeFileSync(outPath, output); // unchanged output keeps tsc incremental
console.log(
  `fourcc.ts: ${formats.length} formats, ${vendors.length} vendors, ${modifiers.length} modifiers, ${constants.length} constants` +
    (skipped.length ? `; not constant: ${skipped.map((s) => s.split(':')[0]).join(', ')}` : ''),
);
