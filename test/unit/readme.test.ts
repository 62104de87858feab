// The README's "Public API" section and the package root agree: every name its tables list is
// exported from 'primebuf' (src/index.ts), and every runtime export is listed there. Type-only
// exports have no runtime trace; the tables' "types" column is checked against the compiler's
// view of the built declaration file.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native.js';

const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) return '';
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
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

/** `Name` tokens of one column of the section's table rows (1-based column index). */
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

const api = section('Public API');

t.test('the README has a Public API section with tables', async (t) => {
  t.ok(api.length > 0, 'section "## Public API" exists');
  t.ok(names(api, 2).size > 50, 'its tables list the exports');
});

t.test('every listed value is exported and every runtime export is listed', async (t) => {
  const mod = (await import('../../src/index.js')) as Record<string, unknown>;
  const exported = new Set(Object.keys(mod));
  const listed = names(api, 2);
  const notExported = [...listed].filter((n) => !exported.has(n)).sort();
  const notListed = [...exported].filter((n) => !listed.has(n)).sort();
  t.same(notExported, [], 'names the README lists that the package does not export');
  t.same(notListed, [], 'exports the README does not list');
});

t.test('every listed type is exported from the package root', async (t) => {
  // The compiler's own view of the package root's exports (values and types).
  const ts = (await import('typescript')).default;
  const entry = join(packageRoot, 'dist', 'src', 'index.d.ts');
  const program = ts.createProgram([entry], { noEmit: true, skipLibCheck: true });
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(entry);
  t.ok(file, 'dist/src/index.d.ts was built');
  const symbol = file && checker.getSymbolAtLocation(file);
  const declared = new Set(symbol ? checker.getExportsOfModule(symbol).map((s) => s.getName()) : []);
  const types = names(api, 3);
  t.ok(types.size > 10, 'the tables list types');
  const missing = [...types].filter((n) => !declared.has(n)).sort();
  t.same(missing, [], 'types the README lists that the package root does not export');
});
