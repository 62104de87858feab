/**
 * Type-level mapping from the generated protocol description (src/generated/protocols.ts) to
 * the values TypeScript handlers receive and send, on the server and on the client side.
 */
import type { Interfaces } from '../generated/protocols.js';
import type { OwnedFd } from '../fd.js';
import type { ServerResource } from './server.js';
import type { WaylandProxy } from './client.js';

export type InterfaceName = keyof Interfaces & string;
export type RequestName<I extends InterfaceName> = keyof Interfaces[I]['requests'] & string;
export type EventName<I extends InterfaceName> = keyof Interfaces[I]['events'] & string;

type Desc = { type: string; interface: string | null; nullable: boolean };

type Nullable<D, T> = D extends { nullable: true } ? T | null : T;

// ---- server side ----
type ServerIn<D> = D extends { type: 'int' | 'uint' | 'fixed' }
  ? number
  : D extends { type: 'string' }
    ? Nullable<D, string>
    : D extends { type: 'array' }
      ? Uint8Array
      : D extends { type: 'fd' }
        ? OwnedFd
        : D extends { type: 'new_id'; interface: infer X extends InterfaceName }
          ? ServerResource<X>
          : D extends { type: 'object'; interface: infer X extends InterfaceName }
            ? Nullable<D, ServerResource<X>>
            : D extends { type: 'object' }
              ? ServerResource<InterfaceName> | null
              : unknown;

type ServerOut<D> = D extends { type: 'int' | 'uint' | 'fixed' }
  ? number
  : D extends { type: 'string' }
    ? Nullable<D, string>
    : D extends { type: 'array' }
      ? Uint8Array
      : D extends { type: 'fd' }
        ? OwnedFd | number
        : D extends { type: 'new_id'; interface: infer X extends InterfaceName }
          ? ServerResource<X>
          : D extends { type: 'object'; interface: infer X extends InterfaceName }
            ? Nullable<D, ServerResource<X>>
            : D extends { type: 'object' }
              ? ServerResource<InterfaceName> | null
              : unknown;

type Msgs<I extends InterfaceName, K extends 'requests' | 'events'> = Interfaces[I][K];

/** Decoded arguments of request R of interface I, as a server handler receives them. */
export type RequestArgs<I extends InterfaceName, R extends RequestName<I>> = {
  readonly [A in keyof Msgs<I, 'requests'>[R]]: ServerIn<Msgs<I, 'requests'>[R][A]>;
};

/** Arguments of event E of interface I, as a server sends them. */
export type EventArgs<I extends InterfaceName, E extends EventName<I>> = {
  readonly [A in keyof Msgs<I, 'events'>[E]]: ServerOut<Msgs<I, 'events'>[E][A]>;
};

/** A server-side implementation of interface I: one handler per request (all optional). */
export type RequestHandlers<I extends InterfaceName> = {
  [R in RequestName<I>]?: (args: RequestArgs<I, R>, resource: ServerResource<I>) => void;
};

// ---- client side ----
type ClientIn<D> = D extends { type: 'int' | 'uint' | 'fixed' }
  ? number
  : D extends { type: 'string' }
    ? Nullable<D, string>
    : D extends { type: 'array' }
      ? Uint8Array
      : D extends { type: 'fd' }
        ? OwnedFd
        : D extends { type: 'new_id'; interface: infer X extends InterfaceName }
          ? WaylandProxy<X>
          : D extends { type: 'object'; interface: infer X extends InterfaceName }
            ? Nullable<D, WaylandProxy<X>>
            : D extends { type: 'object' }
              ? WaylandProxy<InterfaceName> | null
              : unknown;

type ClientOut<D> = D extends { type: 'int' | 'uint' | 'fixed' }
  ? number
  : D extends { type: 'string' }
    ? Nullable<D, string>
    : D extends { type: 'array' }
      ? Uint8Array
      : D extends { type: 'fd' }
        ? OwnedFd | number
        : D extends { type: 'object'; interface: infer X extends InterfaceName }
          ? Nullable<D, WaylandProxy<X>>
          : D extends { type: 'object' }
            ? WaylandProxy<InterfaceName> | null
            : unknown;

type NewIdKeys<M> = { [A in keyof M]: M[A] extends { type: 'new_id' } ? A : never }[keyof M];

/** Arguments a client passes for request R (new_id arguments are allocated, not passed). */
export type ClientRequestArgs<I extends InterfaceName, R extends RequestName<I>> = {
  readonly [A in Exclude<keyof Msgs<I, 'requests'>[R], NewIdKeys<Msgs<I, 'requests'>[R]>>]: ClientOut<Msgs<I, 'requests'>[R][A]>;
};

/** What a client request returns: the new proxy when the request creates a typed object. */
export type ClientRequestResult<I extends InterfaceName, R extends RequestName<I>> =
  Msgs<I, 'requests'>[R][NewIdKeys<Msgs<I, 'requests'>[R]>] extends { interface: infer X extends InterfaceName }
    ? WaylandProxy<X>
    : undefined;

/** Decoded arguments of event E of interface I, as a client handler receives them. */
export type ClientEventArgs<I extends InterfaceName, E extends EventName<I>> = {
  readonly [A in keyof Msgs<I, 'events'>[E]]: ClientIn<Msgs<I, 'events'>[E][A]>;
};

export type { Desc as ArgDesc };
