/**
 * Facts about Weston 10's demo clients (Debian 12's package weston) that the end-to-end tests
 * need to judge their exit.
 *
 * weston-simple-dmabuf-feedback runs for 3 seconds of its own clock. When a feedback with a
 * scanout tranche arrives it re-allocates each buffer on its release: buffer_recreate() destroys
 * the wl_buffer proxy and does not clear the pointer; the new one arrives with the `created`
 * event of zwp_linux_buffer_params_v1.create. If the 3 seconds end between the two, its exit
 * path destroys the stale proxy again and it dies of SIGSEGV inside wl_proxy_marshal_flags
 * (seen under gdb in the guest: main -> destroy_window -> wl_proxy_marshal_flags). That is the
 * client's bug, hit only after it re-allocated for the scanout tranche.
 */

/** The client ran its course: exit 0, or weston 10's exit-path crash after a scanout re-allocation. */
export function dmabufFeedbackClientOk(code: number | null, signal: string | null, output: string): { ok: boolean; why: string } {
  if (code === 0) return { ok: true, why: 'exit 0' };
  const reallocated = /scanout tranche\? yes/.test(output);
  if (signal === 'SIGSEGV' && reallocated) {
    return { ok: true, why: "SIGSEGV at exit after re-allocating for the scanout tranche (weston 10's buffer_recreate leaves a destroyed wl_buffer proxy behind)" };
  }
  return { ok: false, why: `exit ${code ?? signal}${reallocated ? '' : ' (it had not re-allocated for a scanout tranche)'}` };
}
