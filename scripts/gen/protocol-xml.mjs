// Reads Wayland protocol XML (the subset wayland-scanner accepts: protocol, interface, request,
// event, enum, entry, arg, description, copyright) into plain objects. Shared by the TypeScript
// typings generator (gen-protocols.mjs) and the native interface table (protocol-table.mjs).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function decode(s) {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function attrs(text) {
  const out = {};
  for (const m of text.matchAll(/([A-Za-z_][\w-]*)\s*=\s*"([^"]*)"/g)) out[m[1]] = decode(m[2]);
  return out;
}

/** Parses one protocol file. Throws with the file name on anything malformed. */
export function parseProtocol(path) {
  const xml = readFileSync(path, 'utf8')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<\?xml[\s\S]*?\?>/g, '')
    .replace(/<description[^>]*\/>/g, '')
    .replace(/<description[^>]*>[\s\S]*?<\/description>/g, '')
    .replace(/<copyright>[\s\S]*?<\/copyright>/g, '');
  const protocol = { name: '', file: path, interfaces: [] };
  let iface = null;
  let message = null;
  let en = null;
  for (const m of xml.matchAll(/<(\/?)([a-z_]+)([^>]*?)(\/?)>/g)) {
    const [, close, tag, rest, selfClose] = m;
    const a = attrs(rest);
    if (close) {
      if (tag === 'interface') iface = null;
      else if (tag === 'request' || tag === 'event') message = null;
      else if (tag === 'enum') en = null;
      continue;
    }
    switch (tag) {
      case 'protocol':
        protocol.name = a.name;
        break;
      case 'interface':
        iface = { name: a.name, version: Number(a.version), requests: [], events: [], enums: [] };
        protocol.interfaces.push(iface);
        break;
      case 'request':
      case 'event': {
        if (!iface) throw new Error(`${path}: <${tag}> outside an interface`);
        message = {
          name: a.name,
          since: a.since ? Number(a.since) : 1,
          destructor: a.type === 'destructor',
          args: [],
        };
        (tag === 'request' ? iface.requests : iface.events).push(message);
        if (selfClose) message = null;
        break;
      }
      case 'arg':
        if (!message) throw new Error(`${path}: <arg> outside a message`);
        message.args.push({
          name: a.name,
          type: a.type,
          interface: a.interface ?? null,
          nullable: a['allow-null'] === 'true',
          enum: a.enum ?? null,
        });
        break;
      case 'enum':
        en = { name: a.name, bitfield: a.bitfield === 'true', entries: [] };
        iface.enums.push(en);
        if (selfClose) en = null;
        break;
      case 'entry':
        if (!en) throw new Error(`${path}: <entry> outside an enum`);
        en.entries.push({ name: a.name, value: Number(a.value), since: a.since ? Number(a.since) : 1 });
        break;
      default:
        break;
    }
  }
  if (!protocol.name) throw new Error(`${path}: no <protocol name=...>`);
  return protocol;
}

/** The protocols primebuf compiles (protocol/*.xml) and the core one libwayland provides. */
export function allProtocols() {
  const dir = join(root, 'protocol');
  const compiled = readdirSync(dir)
    .filter((n) => n.endsWith('.xml'))
    .sort()
    .map((n) => ({ ...parseProtocol(join(dir, n)), core: false }));
  const core = { ...parseProtocol(join(dir, 'core', 'wayland.xml')), core: true };
  return [core, ...compiled];
}
