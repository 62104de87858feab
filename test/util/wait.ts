/**
 * Bounded waiting for something that happens on a later turn of the event loop (a peer's
 * hang-up reaching the server, a log line from a child process). Tests wait for the condition
 * they are about to assert instead of sleeping a fixed time, which a loaded host can outlast.
 */
export async function until(cond: () => boolean, timeoutMs = 10_000, stepMs = 5): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return true;
}
