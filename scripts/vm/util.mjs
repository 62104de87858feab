// Small process, hashing and locking helpers for the vkms rig (no dependencies).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

const t0 = Date.now();

/** A progress line on stderr: `[vm +12.3s] msg`. */
export function progress(msg) {
  process.stderr.write(`[vm +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
}

/** Runs `fn` and prints `msg ... done in Xs` around it. */
export async function timed(msg, fn) {
  const start = Date.now();
  progress(`${msg} ...`);
  const r = await fn();
  progress(`${msg}: done in ${((Date.now() - start) / 1000).toFixed(1)}s`);
  return r;
}

export class RigError extends Error {}

/**
 * Runs a command with a time bound. Its output goes to our stderr (stdout stays clean for test results) unless `capture`
 * (then returned: a string, or a Buffer when capture === 'buffer').
 * Throws RigError on failure or timeout, naming the command.
 */
export function exec(cmd, args, { timeout, cwd, env, capture = false, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: env ?? process.env,
      stdio: [input === undefined ? 'ignore' : 'pipe', capture ? 'pipe' : 2, capture ? 'pipe' : 2],
      detached: true, // own process group, so a timeout kills the whole pipeline
    });
    const outChunks = [];
    let err = '';
    if (capture) {
      child.stdout.on('data', (d) => outChunks.push(d));
      child.stderr.on('data', (d) => (err += d));
    }
    if (input !== undefined) child.stdin.end(input);
    let timedOut = false;
    const timer = timeout ? setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, timeout * 1000) : null;
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new RigError(`${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const what = `${cmd} ${args.join(' ')}`.slice(0, 300);
      if (timedOut) reject(new RigError(`timed out after ${timeout}s: ${what}`));
      else if (code !== 0) reject(new RigError(`failed (exit ${signal ?? code}): ${what}${err ? `\n${err.trim().slice(-2000)}` : ''}`));
      else {
        const out = Buffer.concat(outChunks);
        resolve(capture === 'buffer' ? out : out.toString('utf8'));
      }
    });
  });
}

/** Like exec but through `bash -o pipefail -c`. */
export function sh(script, opts = {}) {
  return exec('bash', ['-o', 'pipefail', '-euc', script], opts);
}

export function q(s) {
  return `'${String(s).replaceAll("'", "'\\''")}'`;
}

export function sha256(...parts) {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(typeof p === 'string' ? p : p);
    h.update('\0');
  }
  return h.digest('hex');
}

export function fileHash(path) {
  return sha256(readFileSync(path));
}

/** Atomically moves a finished temporary directory or file into place (replacing a stale one). */
export function publish(tmp, final) {
  mkdirSync(dirname(final), { recursive: true });
  if (existsSync(final)) rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
}

export function commandOk(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Takes an exclusive flock(1) on `path`, held by a helper process until release() (or until we
 * die: the helper sees its stdin close). Waits at most `timeout` seconds.
 */
export function lock(path, timeout, onWait) {
  mkdirSync(dirname(path), { recursive: true });
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['-w', String(timeout), path, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const waitMsg = setTimeout(() => onWait?.(), 1000);
    let got = false;
    child.stdout.on('data', (d) => {
      if (!got && String(d).includes('locked')) {
        got = true;
        clearTimeout(waitMsg);
        resolve({
          release: () => new Promise((res) => {
            child.on('close', res);
            child.stdin.end();
          }),
        });
      }
    });
    child.on('error', (e) => reject(new RigError(`flock: ${e.message}`)));
    child.on('close', (code) => {
      clearTimeout(waitMsg);
      if (!got) reject(new RigError(`could not lock ${path} within ${timeout}s (flock exit ${code})`));
    });
  });
}
