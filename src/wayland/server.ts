/**
 * A Wayland server on the Node event loop: libwayland-server does the wire format, fd passing,
 * object lifetime and version checks; this module gives every interface of protocol/ (and the
 * core protocol) to TypeScript with generated types.
 *
 *   const server = new WaylandServer();
 *   server.addSocket();                       // $XDG_RUNTIME_DIR/wayland-N
 *   server.createGlobal('wl_compositor', 4, (res) => res.implement({
 *     create_surface: ({ id }) => id.implement({ ... }),
 *   }));
 */
import { OwnedFd } from '../fd.js';
import { interfaces, type InterfaceSpec, type MessageSpec } from '../generated/protocols.js';
import { native } from '../native.js';
import type { WlServerNative } from '../native/wayland.js';
import { ClosedError, InvalidArgumentError, SystemError } from '../errors.js';
import { decodeArgs, takeFds, type KeyWrappers } from './message.js';
import type { EventArgs, EventName, InterfaceName, RequestHandlers } from './types.js';

/** wl_shm.error codes. */
export const WL_SHM_ERROR = { invalid_format: 0, invalid_stride: 1, invalid_fd: 2 } as const;

/**
 * Whether `err` is the SIGBUS guard's (native/copy.cc): reading a wl_shm buffer faulted because
 * its client truncated the memory behind the pool (SystemError code 'EFAULT', syscall 'SIGBUS').
 */
export function isShmTruncated(err: unknown): err is SystemError {
  return err instanceof SystemError && err.code === 'EFAULT' && err.syscall === 'SIGBUS';
}

function spec(iface: string): InterfaceSpec {
  const s = interfaces[iface];
  if (!s) throw new InvalidArgumentError(`unknown Wayland interface '${iface}' (not in protocol/)`);
  return s;
}

/** Event opcodes by name, per interface (send() is on every frame's path: no search per event). */
const eventOpcodes = new WeakMap<InterfaceSpec, Map<string, number>>();

function eventOpcode(s: InterfaceSpec, event: string): number {
  let m = eventOpcodes.get(s);
  if (!m) eventOpcodes.set(s, (m = new Map(s.events.map((e, i) => [e.name, i]))));
  return m.get(event) ?? -1;
}

/** The arguments of an event that has none (the native call only reads them). */
const NO_EVENT_ARGS: unknown[] = [];

/** One connected client. */
export class ServerClient {
  #destroyed = false;
  #onDestroy: Array<() => void> = [];
  /** Free for the compositor's own per-client state. */
  data: Record<string, unknown> = {};

  constructor(
    readonly server: WaylandServer,
    readonly key: number,
    readonly pid: number,
    readonly uid: number,
    readonly gid: number,
  ) {}

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Disconnects the client (every resource of it is destroyed first). */
  destroy(): void {
    if (!this.#destroyed) this.server.native.clientDestroy(this.key);
  }

  onDestroy(fn: () => void): void {
    if (this.#destroyed) fn();
    else this.#onDestroy.push(fn);
  }

  /** @internal */
  _destroyed(): void {
    this.#destroyed = true;
    const fns = this.#onDestroy;
    this.#onDestroy = [];
    for (const fn of fns) fn();
  }
}

/**
 * One protocol object of a client, implemented in TypeScript (or, when `foreign`, by libwayland
 * itself, e.g. a wl_shm buffer: such a resource can be inspected and watched, not implemented).
 */
export class ServerResource<I extends InterfaceName = InterfaceName> {
  #destroyed = false;
  // made when first needed: a short-lived object (a frame's wl_callback) makes none of them
  #handlers: RequestHandlers<I> = NO_HANDLERS as RequestHandlers<I>;
  #onDestroy: Array<() => void> | undefined;
  #data: Record<string, unknown> | undefined;

  /** Free for the implementation's own state. */
  get data(): Record<string, unknown> {
    return (this.#data ??= {});
  }

  readonly interface: I;

  constructor(
    readonly server: WaylandServer,
    readonly key: number,
    iface: I,
    readonly version: number,
    readonly id: number,
    readonly client: ServerClient,
    readonly foreign: boolean,
  ) {
    this.interface = iface;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Sets the request handlers (merged with earlier ones). Requests without one are ignored. */
  implement(handlers: RequestHandlers<I>): this {
    this.#handlers = { ...this.#handlers, ...handlers };
    return this;
  }

  /** Sends event `event` (type-checked against the generated protocol). */
  send<E extends EventName<I>>(event: E, args: EventArgs<I, E>): void {
    if (this.#destroyed) return; // events to a dead object are dropped, as libwayland would
    const s = spec(this.interface);
    const opcode = eventOpcode(s, event);
    if (opcode < 0) throw new InvalidArgumentError(`${this.interface} has no event '${event}'`);
    const msg = s.events[opcode]!;
    if (this.version < msg.since) {
      throw new InvalidArgumentError(`${this.interface}.${event} needs version ${msg.since}; this resource is version ${this.version}`);
    }
    const a = args as Record<string, unknown>;
    // a loop, and no array at all for an event without arguments (wl_buffer.release): per frame
    const specs = msg.args;
    const out: unknown[] = specs.length === 0 ? NO_EVENT_ARGS : new Array<unknown>(specs.length);
    for (let i = 0; i < specs.length; i++) {
      const arg = specs[i]!;
      const v = a[arg.name];
      switch (arg.type) {
        case 'object':
        case 'new_id':
          out[i] = v == null ? null : (v as ServerResource).key;
          break;
        case 'fd':
          out[i] = v instanceof OwnedFd ? v.fd : v;
          break;
        default:
          out[i] = v;
      }
    }
    this.server.native.postEvent(this.key, opcode, out);
  }

  /** Posts a fatal protocol error on this object (the client is disconnected). */
  postError(code: number, message: string): void {
    if (this.#destroyed || this.client.destroyed) return;
    this.server.native.postError(this.key, code, message);
  }

  /** Destroys the object on the server side (a destructor request does this by itself). */
  destroy(): void {
    if (!this.#destroyed) this.server.native.resourceDestroy(this.key);
  }

  /** Runs `fn` when the object is destroyed (by request, by the client going away, or by destroy()). */
  onDestroy(fn: () => void): void {
    if (this.#destroyed) fn();
    else (this.#onDestroy ??= []).push(fn);
  }

  /** Narrows the interface type after checking it at runtime. */
  is<J extends InterfaceName>(iface: J): this is ServerResource<J> {
    return (this.interface as string) === iface;
  }

  /** @internal */
  get _handlers(): RequestHandlers<I> {
    return this.#handlers;
  }

  /** @internal */
  _destroyed(): void {
    this.#destroyed = true;
    const fns = this.#onDestroy;
    this.#onDestroy = undefined;
    if (fns) for (const fn of fns) fn();
  }
}

/** The handlers of a resource nothing implemented (shared: implement() makes its own object). */
const NO_HANDLERS = Object.freeze({}) as RequestHandlers<never>;

export interface ServerGlobal {
  readonly key: number;
  readonly interface: InterfaceName;
  readonly version: number;
  /** Withdraws the global (clients get global_remove) and frees it. */
  destroy(): void;
}

export interface WaylandServerOptions {
  /** Called for an exception thrown by a request handler; the client gets an implementation error. */
  onHandlerError?: (err: unknown, resource: ServerResource) => void;
}

/** A wl_display running on the Node event loop. */
export class WaylandServer {
  /** @internal the raw bridge */
  readonly native: WlServerNative;
  readonly clients = new Map<number, ServerClient>();
  #resources = new Map<number, ServerResource>();
  #globals = new Map<number, { iface: InterfaceName; bind: (r: ServerResource<never>, c: ServerClient) => void }>();
  #onClient: Array<(c: ServerClient) => void> = [];
  #closed = false;
  #onHandlerError: (err: unknown, resource: ServerResource) => void;

  constructor(opts: WaylandServerOptions = {}) {
    this.#onHandlerError =
      opts.onHandlerError ??
      ((err, res) => {
        console.error(`primebuf: handler for ${res.interface}@${res.id} failed:`, err);
      });
    this.native = new native.WlServer({
      onClient: (key, pid, uid, gid) => {
        const c = new ServerClient(this, key, pid, uid, gid);
        this.clients.set(key, c);
        for (const fn of this.#onClient) fn(c);
      },
      onClientDestroyed: (key) => {
        const c = this.clients.get(key);
        this.clients.delete(key);
        c?._destroyed();
      },
      onBind: (global, client, key, version) => this.#bind(global, client, key, version),
      onRequest: (key, opcode, args) => this.#request(key, opcode, args),
      onDestroy: (key) => {
        const r = this.#resources.get(key);
        this.#resources.delete(key);
        r?._destroyed();
      },
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Listens on $XDG_RUNTIME_DIR/<name>, or on the first free wayland-N. Returns the name. */
  addSocket(name?: string): string {
    return name === undefined ? this.native.addSocketAuto() : this.native.addSocket(name);
  }

  /**
   * A client connected through a socketpair: returns the server's view of it and the client's
   * end of the socket (hand it to WaylandConnection.fromFd, or to a child as WAYLAND_SOCKET).
   */
  connectPair(): { client: ServerClient; fd: OwnedFd } {
    const { client, fd } = this.native.createClient();
    return { client: this.clients.get(client)!, fd: new OwnedFd(fd, 'wayland client socket') };
  }

  /** Runs `fn` for every new client. */
  onClient(fn: (c: ServerClient) => void): void {
    this.#onClient.push(fn);
  }

  /** Advertises a global; `bind` runs with the new resource each time a client binds it. */
  createGlobal<I extends InterfaceName>(
    iface: I,
    version: number,
    bind: (resource: ServerResource<I>, client: ServerClient) => void,
  ): ServerGlobal {
    spec(iface);
    const key = this.native.globalCreate(iface, version);
    this.#globals.set(key, { iface, bind: bind as unknown as (r: ServerResource<never>, c: ServerClient) => void });
    return {
      key,
      interface: iface,
      version,
      destroy: () => {
        if (this.#globals.delete(key) && !this.#closed) this.native.globalDestroy(key);
      },
    };
  }

  /**
   * Creates a resource for a new_id argument of an event (e.g. zwp_linux_buffer_params_v1.created
   * carries a new wl_buffer). The id is allocated by the server.
   */
  createResource<I extends InterfaceName>(client: ServerClient, iface: I, version: number): ServerResource<I> {
    const key = this.native.resourceCreate(client.key, iface, version, 0);
    return this.#wrap(key, iface, version, client, false) as ServerResource<I>;
  }

  nextSerial(): number {
    return this.native.nextSerial();
  }

  /** @internal The resource of a bridge key (the direct lane's report), wrapped on first sight. */
  resourceByKey(key: number): ServerResource | null {
    return this.#resource(key);
  }

  /** Number of live resources the bridge tracks (for leak checks). */
  get resourceCount(): number {
    return this.#resources.size;
  }

  /** Destroys every client and the display. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.native.destroy();
  }

  #wrap(key: number, iface: string, version: number, client: ServerClient, foreign: boolean, id?: number): ServerResource {
    const info = id === undefined ? this.native.resourceInfo(key) : null;
    const r = new ServerResource(this, key, iface as InterfaceName, version, id ?? info?.id ?? 0, client, foreign);
    this.#resources.set(key, r);
    return r;
  }

  #resource(key: number): ServerResource | null {
    const known = this.#resources.get(key);
    if (known) return known;
    const info = this.native.resourceInfo(key);
    if (!info) return null;
    const client = this.clients.get(info.client);
    if (!client) return null;
    return this.#wrap(key, info.interface, info.version, client, !info.ours, info.id);
  }

  #bind(global: number, clientKey: number, key: number, version: number): void {
    const g = this.#globals.get(global);
    const client = this.clients.get(clientKey);
    if (!g || !client) return;
    const r = this.#wrap(key, g.iface, version, client, false);
    try {
      g.bind(r as ServerResource<never>, client);
    } catch (err) {
      this.#handlerFailed(err, r);
    }
  }

  /** The resource whose request is being decoded (for #wrappers' new_ids). */
  #requestOf: ServerResource | undefined;
  /** How a request's keys become resources: one object for every request, not two closures each. */
  readonly #wrappers: KeyWrappers = {
    newId: (v, a) => {
      const r = this.#requestOf!;
      const [key, id] = v as [number, number]; // the bridge gives a new object's key and protocol id
      return this.#wrap(key, a.interface!, r.version, r.client, false, id);
    },
    object: (k) => this.#resource(k),
  };

  #request(key: number, opcode: number, raw: unknown[]): void {
    const r = this.#resources.get(key);
    // Take ownership of every fd first, so no path can leak one.
    const s = r ? interfaces[r.interface] : undefined;
    const msg: MessageSpec | undefined = s?.requests[opcode];
    const fds = takeFds(msg, raw, r?.interface);
    if (!r || !msg) {
      for (const fd of fds) fd.close();
      return;
    }
    this.#requestOf = r;
    let args: Record<string, unknown>;
    try {
      args = decodeArgs(msg, raw, fds, this.#wrappers);
    } finally {
      this.#requestOf = undefined;
    }
    const handler = (r._handlers as Record<string, ((a: unknown, r: ServerResource) => void) | undefined>)[msg.name];
    try {
      if (handler) handler(args, r);
      else for (const fd of fds) fd.close(); // nobody took them
    } catch (err) {
      for (const fd of fds) fd.close();
      this.#handlerFailed(err, r);
    }
    if (msg.destructor && !r.destroyed) r.destroy();
  }

  #handlerFailed(err: unknown, r: ServerResource): void {
    try {
      this.#onHandlerError(err, r);
    } finally {
      if (!r.client.destroyed && !this.#closed) {
        const what = err instanceof Error ? err.message : String(err);
        this.native.clientImplementationError(r.client.key, `compositor error in ${r.interface}@${r.id}: ${what}`);
      }
    }
  }
}
