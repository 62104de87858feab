/**
 * A Wayland client on the Node event loop (for primebuf's client helper and for tests): proxies
 * of every interface in protocol/ and the core protocol, typed requests and events. Nothing
 * blocks: roundtrip() is a wl_display.sync answered on the event loop, so the server may live
 * in the same process.
 */
import { OwnedFd } from '../fd.js';
import { interfaces } from '../generated/protocols.js';
import { native } from '../native.js';
import type { WlClientNative } from '../native/wayland.js';
import { InvalidArgumentError } from '../errors.js';
import { ConnectionError, ProtocolError } from './errors.js';
import { decodeArgs, takeFds } from './message.js';
import type { ClientEventArgs, ClientRequestArgs, ClientRequestResult, EventName, InterfaceName, RequestName } from './types.js';

type AnyHandler = (args: Record<string, unknown>) => void;

/** What the connection needs of a proxy (kept structural: comparing WaylandProxy<I> generically is costly). */
interface ProxyCore {
  readonly key: number;
  readonly interface: string;
  readonly version: number;
  readonly destroyed: boolean;
  _markDestroyed(): void;
}

/** A client-side protocol object. */
export class WaylandProxy<I extends InterfaceName = InterfaceName> {
  #destroyed = false;
  #handlers = new Map<string, AnyHandler>();

  readonly interface: I;

  constructor(
    readonly connection: WaylandConnection,
    readonly key: number,
    iface: I,
    readonly version: number,
  ) {
    this.interface = iface;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** The object id on the wire. */
  get id(): number {
    return this.connection.native.proxyInfo(this.key)?.id ?? 0;
  }

  /** Sends request `name`. Returns the new proxy when the request creates a typed object. */
  request<R extends RequestName<I>>(name: R, args: ClientRequestArgs<I, R>): ClientRequestResult<I, R> {
    const raw: object = args;
    return this.connection._request(this as ProxyCore, name, raw as Record<string, unknown>) as ClientRequestResult<I, R>;
  }

  /** Sets the handler of event `name` (one per event; a later call replaces it). */
  on<E extends EventName<I>>(name: E, handler: (args: ClientEventArgs<I, E>) => void): this {
    this.#handlers.set(name, handler as unknown as AnyHandler);
    return this;
  }

  /** Forgets the proxy locally (for objects without a destructor request, e.g. wl_callback). */
  destroy(): void {
    if (this.#destroyed) return;
    this.connection._forget(this as ProxyCore);
    this.connection.native.proxyDestroy(this.key);
  }

  /** @internal */
  _handler(name: string): AnyHandler | undefined {
    return this.#handlers.get(name);
  }

  /** @internal */
  _markDestroyed(): void {
    this.#destroyed = true;
  }
}

export interface GlobalInfo {
  name: number;
  interface: string;
  version: number;
}

/** One connection to a Wayland server. */
export class WaylandConnection {
  /** @internal */
  readonly native: WlClientNative;
  readonly display: WaylandProxy<'wl_display'>;
  #proxies = new Map<number, WaylandProxy>();
  #error: ProtocolError | ConnectionError | null = null;
  #waiters: Array<{ reject: (e: Error) => void }> = [];
  #onError: Array<(e: ProtocolError | ConnectionError) => void> = [];
  #closed = false;

  private constructor() {
    this.native = new native.WlClient({
      onEvent: (key, opcode, args) => this.#event(key, opcode, args),
      onError: () => this.#failed(),
    });
    this.display = new WaylandProxy(this, 1, 'wl_display', 1);
    this.#proxies.set(1, this.display);
  }

  /** Connects to $WAYLAND_DISPLAY (or `name`, a socket name in $XDG_RUNTIME_DIR or a path). */
  static connect(name?: string): WaylandConnection {
    const c = new WaylandConnection();
    c.native.connect(name ?? null);
    return c;
  }

  /** Uses an already connected socket (ownership moves to the connection). */
  static fromFd(fd: OwnedFd): WaylandConnection {
    const c = new WaylandConnection();
    c.native.connectFd(fd.release());
    return c;
  }

  /** The fatal error this connection died of, if any. */
  get error(): ProtocolError | ConnectionError | null {
    return this.#error;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `fn` when the connection fails (protocol error or lost connection). */
  onError(fn: (e: ProtocolError | ConnectionError) => void): void {
    if (this.#error) fn(this.#error);
    else this.#onError.push(fn);
  }

  /** Resolves when the server has processed every request sent so far; rejects on a fatal error. */
  roundtrip(): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closed) return Promise.reject(new ConnectionError('connection is closed', 0));
    return new Promise((resolve, reject) => {
      const waiter = { reject };
      this.#waiters.push(waiter);
      const cb = this.display.request('sync', {});
      cb.on('done', () => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        cb.destroy();
        resolve();
      });
    });
  }

  /** The server's globals, after a roundtrip. The registry stays alive for bind(). */
  async globals(): Promise<{ registry: WaylandProxy<'wl_registry'>; globals: GlobalInfo[] }> {
    const registry = this.display.request('get_registry', {});
    const globals: GlobalInfo[] = [];
    registry.on('global', ({ name, interface: iface, version }) => globals.push({ name, interface: iface, version }));
    registry.on('global_remove', ({ name }) => {
      const i = globals.findIndex((g) => g.name === name);
      if (i >= 0) globals.splice(i, 1);
    });
    await this.roundtrip();
    return { registry, globals };
  }

  /** wl_registry.bind with a typed result. */
  bind<I extends InterfaceName>(registry: WaylandProxy<'wl_registry'>, global: GlobalInfo, iface: I, version: number): WaylandProxy<I> {
    if (global.interface !== iface) throw new InvalidArgumentError(`global ${global.name} is ${global.interface}, not ${iface}`);
    if (version > global.version) throw new InvalidArgumentError(`${iface} is advertised at version ${global.version}, asked ${version}`);
    const key = this.native.marshal(registry.key, 0, [global.name, iface, version, null], iface, version, false);
    const p = new WaylandProxy(this, key, iface, version);
    this.#proxies.set(key, p);
    return p;
  }

  /** Sends buffered requests now (normally done on the next event-loop turn). */
  flush(): void {
    this.native.flush();
  }

  /** Closes the connection; every proxy becomes unusable. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.native.disconnect();
    for (const w of this.#waiters.splice(0)) w.reject(new ConnectionError('connection closed', 0));
    for (const p of this.#proxies.values()) p._markDestroyed();
    this.#proxies.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal */
  _request(p: ProxyCore, name: string, args: Record<string, unknown>): WaylandProxy | undefined {
    if (p.destroyed || this.#closed) throw new InvalidArgumentError(`${p.interface}.${name}: proxy is destroyed`);
    const s = interfaces[p.interface]!;
    const opcode = s.requests.findIndex((m) => m.name === name);
    if (opcode < 0) throw new InvalidArgumentError(`${p.interface} has no request '${name}'`);
    const msg = s.requests[opcode]!;
    if (p.version < msg.since && p.key !== 1) {
      throw new InvalidArgumentError(`${p.interface}.${name} needs version ${msg.since}; the proxy is version ${p.version}`);
    }
    let newIface: string | null = null;
    const out = msg.args.map((a) => {
      const v = args[a.name];
      switch (a.type) {
        case 'new_id':
          newIface = a.interface;
          return null;
        case 'object':
          return v == null ? null : (v as WaylandProxy).key;
        case 'fd':
          return v instanceof OwnedFd ? v.fd : v;
        default:
          return v;
      }
    });
    const version = p.key === 1 ? 1 : p.version;
    if (msg.destructor) {
      this.#proxies.delete(p.key);
      p._markDestroyed();
    }
    const key = this.native.marshal(p.key, opcode, out, newIface, version, msg.destructor);
    if (!newIface) return undefined;
    const created = new WaylandProxy(this, key, newIface as InterfaceName, version);
    this.#proxies.set(key, created);
    return created;
  }

  /** @internal */
  _forget(p: ProxyCore): void {
    this.#proxies.delete(p.key);
    p._markDestroyed();
  }

  #event(key: number, opcode: number, raw: unknown[]): void {
    const p = this.#proxies.get(key);
    const msg = p ? interfaces[p.interface]?.events[opcode] : undefined;
    const fds = takeFds(msg, raw, p?.interface);
    if (!p || !msg) {
      for (const fd of fds) fd.close();
      return;
    }
    const args = decodeArgs(msg, raw, fds, {
      newId: (v, a) => {
        if (v == null) return null;
        const np = new WaylandProxy(this, v as number, a.interface as InterfaceName, p.version);
        this.#proxies.set(v as number, np);
        return np;
      },
      object: (k) => this.#proxies.get(k) ?? null,
    });
    const handler = p._handler(msg.name);
    if (!handler) {
      for (const fd of fds) fd.close();
      return;
    }
    handler(args);
  }

  #failed(): void {
    const e = this.native.error();
    let err: ProtocolError | ConnectionError;
    if (e && e.code !== undefined) err = new ProtocolError(e.interface ?? 'unknown', e.id ?? 0, e.code);
    else err = new ConnectionError(`wayland connection failed: ${native.errnoName(e?.errno ?? 0)}`, e?.errno ?? 0);
    this.#error = err;
    for (const w of this.#waiters.splice(0)) w.reject(err);
    for (const fn of this.#onError.splice(0)) fn(err);
  }
}
