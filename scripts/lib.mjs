// Small helpers shared by the build and test scripts (no dependencies: these run before npm ci).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A step heading on stderr, so that long runs show progress. */
export function step(msg) {
  process.stderr.write(`\n\x1b[1m==> ${msg}\x1b[0m\n`);
}

/** Runs a command inheriting stdio; returns its exit status (throws when `check` and non-zero). */
export function run(cmd, args, { check = true, cwd = root, env = process.env } = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd, env });
  if (r.error) throw r.error;
  const status = r.status ?? 128 + (r.signal ? 1 : 0);
  if (check && status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.signal ?? status}`);
  }
  return status;
}

/** Runs a command and returns its stdout (trimmed), or null when it fails. */
export function output(cmd, args, { cwd = root } = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return r.status === 0 ? r.stdout.trim() : null;
}
