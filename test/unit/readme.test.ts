// The README's "Public API" section and the package's exports agree, module by module: the
// section has one subsection per entry of package.json "exports" (### `primebuf` for the root,
// ### `primebuf/kms` and so on), every name its tables list is exported from that module, and
// every runtime export of the module is listed there. Type-only exports have no runtime trace;
// the tables' "types" column is checked against the compiler's view of the module's built
// declaration file (the "types" that package.json names for it).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native.js';

const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types?: string; default?: string }>;
};

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) return '';
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The section's subsections headed ### `primebuf` or ### `primebuf/<area>`, by module specifier. */
function moduleSections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const heads = [...text.matchAll(/^### (.*)$/gm)];
  heads.forEach((h, i) => {
    const m = /^`(primebuf(?:\/[\w-]+)?)`\s*$/.exec(h[1]!);
    if (!m) return;
    const end = i + 1 < heads.length ? heads[i + 1]!.index : text.length;
    out.set(m[1]!, text.slice(h.index, end));
  });
  return out;
}

/** A table cell without its parenthesized remarks (which name methods and fields, not exports). */
function withoutRemarks(cell: string): string {
  let out = '';
  let depth = 0;
  let code = false;
  for (const ch of cell) {
    if (ch === '`') code = !code;
    else if (!code && ch === '(') depth++;
    else if (!code && ch === ')') depth = Math.max(0, depth - 1);
    if (depth === 0 && ch !== ')') out += ch;
  }
  return out;
}

/** `Name` tokens of one column of the text's table rows (1-based column index). */
function names(text: string, column: number): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('|') || /^\|\s*-/.test(line)) continue;
    const cells = line.split('|').slice(1, -1);
    const cell = cells[column - 1];
    if (!cell) continue;
    for (const m of withoutRemarks(cell).matchAll(/`([A-Za-z_$][\w$]*)`/g)) out.add(m[1]!);
  }
  return out;
}

/** package.json's code entry points, by module specifier ('primebuf', 'primebuf/kms', ...). */
const entries = new Map(
  Object.entries(pkg.exports)
    .filter(([key, target]) => typeof target === 'object' && key !== './package.json')
    .map(([key, target]) => [key === '.' ? 'primebuf' : `primebuf/${key.slice(2)}`, target as { types?: string; default?: string }]),
);

const api = section('Public API');
const sections = moduleSections(api);

t.test('the README has a Public API section with one table section per module', async (t) => {
  t.ok(api.length > 0, 'section "## Public API" exists');
  t.ok(entries.size >= 8, 'package.json exports the root and the areas');
  t.same([...sections.keys()].sort(), [...entries.keys()].sort(), 'one ### `<module>` subsection per package.json "exports" entry, and no other');
  for (const [spec, text] of sections) t.ok(names(text, 2).size > 0, `${spec}: its table lists values`);
});

t.test('every listed value is exported and every runtime export is listed, module by module', async (t) => {
  for (const [spec, text] of sections) {
    const mod = (await import(spec)) as Record<string, unknown>;
    const exported = new Set(Object.keys(mod));
    const listed = names(text, 2);
    const notExported = [...listed].filter((n) => !exported.has(n)).sort();
    const notListed = [...exported].filter((n) => !listed.has(n)).sort();
    t.same(notExported, [], `${spec}: names the README lists that the module does not export`);
    t.same(notListed, [], `${spec}: exports the README does not list under ${spec}`);
  }
});

t.test('every listed type is exported from its module', async (t) => {
  // The compiler's own view of each module's exports (values and types), from the declaration
  // file package.json names as its "types".
  const ts = (await import('typescript')).default;
  const files = new Map([...entries].map(([spec, target]) => [spec, join(packageRoot, target.types ?? '')]));
  const program = ts.createProgram([...files.values()], { noEmit: true, skipLibCheck: true });
  const checker = program.getTypeChecker();
  let listedTypes = 0;
  for (const [spec, text] of sections) {
    const entry = files.get(spec);
    t.ok(entry && entries.get(spec)?.types, `${spec}: package.json names its declarations`);
    const file = entry ? program.getSourceFile(entry) : undefined;
    t.ok(file, `${spec}: ${entry} was built`);
    const symbol = file && checker.getSymbolAtLocation(file);
    const declared = new Set(symbol ? checker.getExportsOfModule(symbol).map((s) => s.getName()) : []);
    const types = names(text, 3);
    listedTypes += types.size;
    const missing = [...types].filter((n) => !declared.has(n)).sort();
    t.same(missing, [], `${spec}: types the README lists that the module does not export`);
  }
  t.ok(listedTypes > 100, 'the tables list types');
});
