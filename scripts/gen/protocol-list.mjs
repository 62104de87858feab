// Prints the protocol XML files that binding.gyp feeds to wayland-scanner, one per line.
// Every protocol/*.xml is compiled; the list is sorted so the build is reproducible.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = join(root, 'protocol');
for (const name of (existsSync(dir) ? readdirSync(dir) : []).filter((n) => n.endsWith('.xml')).sort()) {
  console.log(relative(process.cwd(), join(dir, name)));
}
