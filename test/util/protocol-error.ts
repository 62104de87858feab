/**
 * The protocol error a client's next roundtrip ends with (null: none): how the kiosk's protocol
 * tests see the error a bad request earned. Anything else a roundtrip throws is rethrown.
 */
import { ProtocolError, type WaylandConnection } from '../../src/wayland/index.js';

export async function errorOf(c: { readonly conn: WaylandConnection }): Promise<ProtocolError | null> {
  const e = await c.conn.roundtrip().then(
    () => null,
    (err: unknown) => err,
  );
  if (e !== null && !(e instanceof ProtocolError)) throw e;
  return e;
}
