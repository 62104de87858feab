/**
 * The direct lane: a surface's steady state of frames run in native code, straight from the
 * client's commit to the flip without entering JavaScript. Once a surface's buffer was shown alone
 * (the presenter decided it and committed it), the compositor arms the lane with that surface and
 * the buffers of its client the presenter decided the same way at the same placement. From then on
 * the addon answers the surface's attach, damage, damage_buffer, frame and commit. In direct mode
 * (the buffer was on a plane) a commit of one of those buffers is the same atomic commit as the
 * last one with the buffer's framebuffer (its pending write fence as IN_FENCE_FD). In copy mode
 * (a plain wl_shm copy: XRGB8888 or ARGB8888 from a pool that cannot shrink, untransformed) the
 * commit's damage, with what the ring buffer missed since it was last written, is copied row by
 * row into the presenter's ring buffer that is not on screen, inside its DMA_BUF_IOCTL_SYNC write
 * bracket and with the copy fallback's stores, and that buffer is committed. At the flip the frame callbacks get done; the buffer a
 * commit replaced gets its wl_buffer.release (direct: when it left the screen, before the done;
 * copied: at once, it is not read again). A commit while a flip is in flight waits for it (the
 * newest wins).
 *
 * Anything else hands the lane back before it is handled: another request of the client (a new
 * buffer's import, ack_configure, wp_presentation.feedback, ...), a buffer the lane does not
 * know, a refused commit, the surface or a buffer it holds destroyed, the client gone, or
 * `disarm()` (the compositor wants a frame of its own: a scene change, a capture, a session
 * switch), or the presenter asked to commit anything itself (present, presentScene, refresh,
 * clear, close: the presenter hands the lane back first). The flip in flight completes first (at
 * most a refresh: the native code waits for its event), then `onHandback` gets the state the lane
 * left: the buffer on screen, the surface's
 * current buffer, the frame callbacks not answered yet and the pending attach. The presenter's
 * state (its lock, the output's current state, its stats) and the buffers' release records are
 * brought up to date before `onHandback` runs; the surface's own state is the compositor's to
 * apply. Policy stays here and in the compositor: when to arm, with which buffers.
 */
import { PrimebufError } from '../errors.js';
import type { WlLaneReport, WlLaneStats } from '../native/wayland.js';
import type { Presentation, Presenter, SurfacePlacement } from '../scanout/presenter.js';
import { BufferLifetime } from './buffer-lifetime.js';
import type { ServerResource, WaylandServer } from './server.js';
import { ShmBuffer } from './shm.js';

/** What the lane left when it handed back. */
export interface DirectLaneHandback {
  /** what made it hand back (a request's name, or the reason given to disarm) */
  readonly reason: string;
  /** the errno name of a commit the kernel refused (ETIMEDOUT: no flip event within 2 s), or null */
  readonly error: string | null;
  /** flips the lane completed since it was armed */
  readonly frames: number;
  /** the lane ran in copy mode (its frames were copied); the bytes it copied */
  readonly copied: boolean;
  readonly bytesCopied: number;
  /** the last of them (frames > 0) */
  readonly presentation: Presentation | undefined;
  readonly surface: ServerResource<'wl_surface'>;
  /** the buffer the lane was armed with */
  readonly armed: BufferLifetime;
  /** on screen now (no flip in flight); the presenter holds its lock */
  readonly shown: BufferLifetime;
  /** the surface's current buffer: `shown`, unless a commit waited for a flip or was refused */
  readonly current: BufferLifetime;
  /** frame callbacks of applied commits not shown yet (answer them with the next frame) */
  readonly committedCallbacks: ServerResource<'wl_callback'>[];
  /** the pending state: an attach since the last commit (of `pendingBuffer`), frame callbacks */
  readonly attached: boolean;
  readonly pendingBuffer: ServerResource<'wl_buffer'> | null;
  readonly pendingCallbacks: ServerResource<'wl_callback'>[];
}

export interface DirectLaneArm {
  readonly surface: ServerResource<'wl_surface'>;
  /** the surface's current buffer, on screen directly by the presenter's last frame */
  readonly current: BufferLifetime;
  /** the placement that frame was presented with (the same object) */
  readonly placement: SurfacePlacement | undefined;
  /** buffers of the surface's client the lane may flip to (those not decided direct at the placement are left out) */
  readonly buffers: Iterable<BufferLifetime>;
  readonly onHandback: (h: DirectLaneHandback) => void;
  /**
   * Tests only: every lane frame first spins this fraction of the process's CPU per lane frame
   * (the mean of the last 32, without the spins): a frame path made slower on purpose.
   */
  readonly slower?: number;
}

interface Armed {
  readonly arm: DirectLaneArm;
  readonly mapped: readonly BufferLifetime[];
  readonly copy: boolean;
}

export class DirectLane {
  #armed: Armed | undefined;

  constructor(
    readonly server: WaylandServer,
    readonly presenter: Presenter,
  ) {}

  get armed(): boolean {
    return this.#armed !== undefined;
  }

  /** The mode it is armed in (undefined: not armed). */
  get mode(): 'direct' | 'copy' | undefined {
    return this.#armed ? (this.#armed.copy ? 'copy' : 'direct') : undefined;
  }

  /** Frames, commits and handbacks of the lane over the server's life. */
  stats(): WlLaneStats {
    return this.server.native.laneStats();
  }

  /**
   * Arms the lane; returns undefined when armed, else why not (the buffer is not on a plane, a
   * flip is in flight, the placement changed, ...).
   */
  arm(a: DirectLaneArm): string | undefined {
    if (this.#armed) return 'the lane is armed already';
    if (this.server.closed) return 'the server is closed';
    const cur = a.current;
    if (cur.freed || cur.destroyed || a.surface.destroyed) return 'the surface or its buffer is gone';
    const t = this.presenter.laneTemplate(cur.scanoutBuffer(), a.placement);
    if (typeof t === 'string') return t;
    const flat: number[] = [];
    const mapped: BufferLifetime[] = [];
    const sources: Array<[number, ArrayBuffer, number, number, number, number]> = [];
    const add = (x: BufferLifetime): void => {
      if (mapped.includes(x) || x.freed || x.destroyed || x.resource.client !== a.surface.client) return;
      const b = x.scanoutBuffer();
      if (t.copy) {
        const src = this.presenter.laneCopySource(b, a.placement, t);
        if (!src) return;
        sources.push([x.resource.key, ...src]);
        flat.push(x.resource.key, 0, -1);
        mapped.push(x);
        return;
      }
      const fd0 = b.planes[0]?.fd;
      if (fd0 === undefined || b.planes.some((p) => p.fd !== fd0)) return;
      const fb = this.presenter.laneFb(b, a.placement, t);
      if (fb === undefined) return;
      // a wl_shm pool's udmabuf has no write fence (the client writes with the CPU)
      flat.push(x.resource.key, fb, x instanceof ShmBuffer ? -1 : fd0);
      mapped.push(x);
    };
    add(cur);
    if (mapped[0] !== cur) return 'the current buffer is not decided the same way with the state on screen';
    for (const x of a.buffers) add(x);
    this.presenter.device.events.suspend(); // the lane reads the flips (laneTemplate: none pending)
    const { key: _key, copy, ...tpl } = t;
    this.server.native.laneArm(
      {
        ...tpl,
        surface: a.surface.key,
        buffers: flat,
        current: cur.resource.key,
        currentOwed: cur.owed,
        ...(copy ? { copy: { ...copy, sources } } : {}),
        ...(a.slower ? { slower: a.slower } : {}),
      },
      (r) => this.#handback(r),
    );
    this.#armed = { arm: a, mapped, copy: copy !== undefined };
    this.presenter.laneGuard(() => this.disarm('the presenter was asked for a frame'));
    return undefined;
  }

  /** Hands the lane back now (onHandback runs before this returns); whether it was armed. */
  disarm(reason: string): boolean {
    if (!this.#armed) return false;
    return this.server.native.laneDisarm(reason);
  }

  #handback(r: WlLaneReport): void {
    const st = this.#armed;
    this.#armed = undefined;
    this.presenter.laneGuard(undefined);
    if (!st) return;
    const { arm, mapped } = st;
    const res = (key: number | null): ServerResource | null => (key === null ? null : this.server.resourceByKey(key));
    // the releases the lane sent are the library's record now
    const owed = new Set(r.owed);
    for (const x of mapped) if (!x.freed) x.settleOwed(owed.has(x.resource.key));
    const shown = BufferLifetime.of(res(r.shown)) ?? arm.current;
    const current = BufferLifetime.of(res(r.current)) ?? shown;
    if (!mapped.includes(shown) || !mapped.includes(current)) throw new PrimebufError('direct lane: it reported a buffer it was not given');
    const presentation = st.copy
      ? this.presenter.laneReturnedCopy(current.scanoutBuffer(), arm.placement, r.slotShown, r.frames, r)
      : this.presenter.laneReturned(arm.current.scanoutBuffer(), shown.scanoutBuffer(), arm.placement, r.frames, r);
    const callbacks = (list: Array<[number, number]>): ServerResource<'wl_callback'>[] => {
      const out: ServerResource<'wl_callback'>[] = [];
      for (const [key] of list) {
        const cb = this.server.resourceByKey(key);
        if (cb) out.push(cb as ServerResource<'wl_callback'>);
      }
      return out;
    };
    arm.onHandback({
      reason: r.reason,
      error: r.error,
      frames: r.frames,
      copied: st.copy,
      bytesCopied: r.bytes,
      presentation,
      surface: arm.surface,
      armed: arm.current,
      shown,
      current,
      committedCallbacks: callbacks(r.committedCallbacks),
      attached: r.attached,
      pendingBuffer: res(r.pendingBuffer) as ServerResource<'wl_buffer'> | null,
      pendingCallbacks: callbacks(r.pendingCallbacks),
    });
  }
}
