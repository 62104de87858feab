// compositor-example/primebuf-kiosk.service, the unit the README's "The kiosk at boot" steps
// install: the README shows the file as it is, the file is plain systemd syntax (sections and
// Key=Value lines), and it has what the steps rely on (the user, the logind session's PAM and tty
// keys, the restart, and an ExecStart of the kiosk with a --session mode the kiosk accepts).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native.js';
import { SESSION_MODES } from '../../compositor-example/session.js';

const file = readFileSync(join(packageRoot, 'compositor-example', 'primebuf-kiosk.service'), 'utf8');
const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');

function parse(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const head = /^\[(\w+)\]$/.exec(line);
    if (head) {
      section = new Map();
      out.set(head[1]!, section);
      return;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !section) throw new Error(`line ${i + 1} is neither a [Section] nor Key=Value inside one: ${line}`);
    section.set(kv[1]!, [...(section.get(kv[1]!) ?? []), kv[2]!]);
  });
  return out;
}

t.test('the README shows the unit file as it is', async (t) => {
  t.ok(readme.includes('```ini\n' + file + '```'), 'README "The kiosk at boot" quotes compositor-example/primebuf-kiosk.service verbatim');
});

t.test('the unit parses and has the keys the README steps rely on', async (t) => {
  const u = parse(file);
  t.same([...u.keys()], ['Unit', 'Service', 'Install'], 'sections Unit, Service, Install');
  const svc = u.get('Service')!;
  const one = (k: string): string | undefined => svc.get(k)?.[0];
  t.equal(one('User'), 'kiosk', 'User=kiosk (the README\'s useradd)');
  t.equal(one('PAMName'), 'login', 'PAMName=login (the logind session)');
  t.equal(one('TTYPath'), '/dev/tty1', 'TTYPath=/dev/tty1');
  t.equal(one('Restart'), 'always', 'Restart=always');
  const exec = one('ExecStart') ?? '';
  t.match(exec, /^\/usr\/bin\/node --single-threaded-gc --no-memory-reducer \/opt\/primebuf\/dist\/compositor-example\/main\.js /, 'ExecStart runs the built kiosk in /opt/primebuf, with the kiosk\'s node flags (bench/compositors.mjs KIOSK_NODE_FLAGS)');
  const mode = /--session (\S+)/.exec(exec)?.[1];
  t.equal(mode, 'libseat', 'with --session libseat (never root)');
  t.ok(SESSION_MODES.includes(mode as never), 'a mode the kiosk accepts');
  t.ok(u.get('Unit')?.get('Conflicts')?.includes('getty@tty1.service'), 'no getty on its tty');
  t.equal(u.get('Install')?.get('WantedBy')?.[0], 'graphical.target', 'WantedBy=graphical.target');
});
