/**
 * Facts about Weston 10's demo clients (Debian 12's package weston) that the end-to-end tests
 * need to judge their exit, and the means to tell a crash of theirs apart from one we caused.
 *
 * weston-simple-dmabuf-feedback runs for 3 seconds of its own clock. When a feedback with a
 * scanout tranche arrives it re-allocates each buffer on its release: buffer_recreate() destroys
 * the wl_buffer proxy and does not clear the pointer; the new one arrives with the `created`
 * event of zwp_linux_buffer_params_v1.create. If the 3 seconds end between the two, its exit
 * path (main -> destroy_window -> buffer_free -> wl_buffer_destroy) destroys the stale proxy
 * again and it dies of SIGSEGV in or under wl_proxy_marshal_flags, outside any event dispatch.
 * That is the client's bug. A crash the compositor causes (a bad format table, a bad dev_t, an
 * event for an object the client no longer knows) happens while the client handles an event:
 * under wl_display_dispatch, with libwayland's dispatch_event and libffi on the stack. So a
 * SIGSEGV counts as the known crash only when the core's backtrace (gdb, in the guest) shows the
 * first and not the second, and the client had re-allocated for a scanout tranche.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const CORE_PATTERN = '/proc/sys/kernel/core_pattern';

/**
 * Makes the kernel write cores as `<dir>/core.<pid>` (the guest's core_pattern; root only) and
 * returns what restores the previous pattern.
 */
export function coreDumpsTo(dir: string): () => void {
  const previous = readFileSync(CORE_PATTERN, 'utf8').trim();
  writeFileSync(CORE_PATTERN, join(dir, 'core.%p'));
  return () => writeFileSync(CORE_PATTERN, previous);
}

/** Spawns `cmd` with RLIMIT_CORE unlimited (through sh, whose exec keeps the pid) so a crash leaves a core. */
export function spawnWithCore(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  return spawn('sh', ['-c', 'ulimit -c unlimited && exec "$0" "$@"', cmd, ...args], opts);
}

/**
 * gdb's backtrace of the crashed thread from the core of `pid` in `dir` (the core is removed
 * afterwards); undefined when there is no core. Needs gdb (scripts/vm/config.mjs installs it).
 */
export function coreBacktrace(exe: string, dir: string, pid: number): string | undefined {
  const core = join(dir, `core.${pid}`);
  if (!existsSync(core)) return undefined;
  try {
    const r = spawnSync('gdb', ['-batch', '-nx', '-ex', 'bt', exe, core], { encoding: 'utf8', timeout: 240000 });
    if (r.error) throw r.error;
    return r.stdout;
  } finally {
    rmSync(core, { force: true });
  }
}

/** The frames of a gdb backtrace, innermost first: function name ('??' when unknown) and where from. */
export function frames(backtrace: string): Array<{ fn: string; from: string }> {
  const out: Array<{ fn: string; from: string }> = [];
  for (const m of backtrace.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \([^)]*\)(?: (?:from|at) (\S+))?/gm)) out.push({ fn: m[1]!, from: m[2] ?? '' });
  return out;
}

/** Event dispatch frames: a crash under them happened while the client handled something the compositor sent. */
const DISPATCH = /^(wl_display_dispatch\w*|wl_display_roundtrip\w*|dispatch_event|wl_closure_invoke|ffi_call\w*)$/;

/**
 * Whether a backtrace is weston-simple-dmabuf-feedback's exit-path double destroy: libwayland's
 * wl_proxy_marshal_flags on the stack, no event dispatch, and main's thread (__libc_start_call_main).
 */
export function isExitPathDoubleDestroy(backtrace: string): boolean {
  const f = frames(backtrace);
  return f.some((x) => x.fn === 'wl_proxy_marshal_flags') && !f.some((x) => DISPATCH.test(x.fn)) && f.some((x) => /__libc_start_call_main|__libc_start_main/.test(x.fn));
}

/**
 * The client ran its course: exit 0, or weston 10's exit-path crash after a scanout
 * re-allocation, proven by the core's backtrace (`backtrace`, from coreBacktrace).
 */
export function dmabufFeedbackClientOk(code: number | null, signal: string | null, output: string, backtrace?: string): { ok: boolean; why: string } {
  if (code === 0) return { ok: true, why: 'exit 0' };
  const reallocated = /scanout tranche\? yes/.test(output);
  if (signal === 'SIGSEGV') {
    if (backtrace === undefined) return { ok: false, why: 'SIGSEGV and no core to tell its known exit-path crash from another' };
    const known = isExitPathDoubleDestroy(backtrace);
    if (known && reallocated) {
      return { ok: true, why: "SIGSEGV in its exit path after re-allocating for the scanout tranche (weston 10's buffer_recreate leaves a destroyed wl_buffer proxy behind; backtrace: wl_proxy_marshal_flags outside event dispatch)" };
    }
    return { ok: false, why: `SIGSEGV ${known ? 'in the exit path but it had not re-allocated for a scanout tranche' : 'not in its known exit path'}:\n${backtrace}` };
  }
  return { ok: false, why: `exit ${code ?? signal}${reallocated ? '' : ' (it had not re-allocated for a scanout tranche)'}` };
}
