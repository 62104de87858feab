// Writes a newc cpio archive (what the kernel unpacks as an initramfs) from memory: owner root,
// fixed timestamps, device nodes without needing root or cpio(1).
import { writeFileSync } from 'node:fs';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

function pad4(n) {
  return (4 - (n % 4)) % 4;
}

function header(ino, mode, size, name, rdev = [0, 0], nlink = 1) {
  const fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], Buffer.byteLength(name) + 1, 0];
  const h = '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
  const nameBuf = Buffer.from(`${name}\0`);
  return Buffer.concat([Buffer.from(h, 'ascii'), nameBuf, Buffer.alloc(pad4(110 + nameBuf.length))]);
}

/**
 * entries: { path, dir: true } | { path, data: Buffer, mode } | { path, char: [major, minor], mode }
 * Parents must come before children.
 */
export function writeCpio(file, entries) {
  const parts = [];
  let ino = 1;
  for (const e of entries) {
    if (e.dir) parts.push(header(ino++, S_IFDIR | (e.mode ?? 0o755), 0, e.path, undefined, 2));
    else if (e.char) parts.push(header(ino++, S_IFCHR | (e.mode ?? 0o600), 0, e.path, e.char));
    else {
      parts.push(header(ino++, S_IFREG | (e.mode ?? 0o644), e.data.length, e.path));
      parts.push(e.data, Buffer.alloc(pad4(e.data.length)));
    }
  }
  parts.push(header(0, 0, 0, 'TRAILER!!!', undefined, 1));
  writeFileSync(file, Buffer.concat(parts));
}
