/**
 * Reading a third-party client's libwayland trace (WAYLAND_DEBUG=client on its stderr): what it
 * bound, its surfaces and subsurfaces, where it put them, the viewports it set, the buffers it
 * made (wl_shm or linux-dmabuf, size, format) and attached, its commits per surface, and any
 * wl_display.error it got. The real-client tests (test/vkms/real-clients-scene.test.ts) and
 * bench/scene.mjs read clients they do not control through it.
 *
 * Lines look like `[ 512337.047]  -> wl_surface@21.attach(wl_buffer@27, 0, 0)` (a request) and
 * `[ 534018.302] xdg_toplevel@15.configure(0, 0, array[0])` (an event). Object ids are reused after
 * a destroy: every map keeps the newest meaning of an id.
 */

export interface TracedBuffer {
  readonly id: number;
  readonly kind: 'shm' | 'dmabuf';
  readonly width: number;
  readonly height: number;
  /** wl_shm format code (0 ARGB8888, 1 XRGB8888, else a fourcc) or a DRM fourcc for dma-bufs */
  readonly format: number;
}

export interface TracedSubsurface {
  readonly subsurface: number;
  readonly surface: number;
  readonly parent: number;
  /** the last set_position (0,0 until one) */
  x: number;
  y: number;
  /** set_desync was the last of set_sync/set_desync */
  desync: boolean;
}

export class WaylandTrace {
  /** interface names bound through wl_registry.bind, in order */
  readonly bound: string[] = [];
  readonly commits = new Map<number, number>();
  readonly subsurfaces = new Map<number, TracedSubsurface>();
  /** wp_viewport id -> its surface */
  readonly viewportOf = new Map<number, number>();
  /** surface -> last set_destination (width, height; -1 unset) */
  readonly destination = new Map<number, { width: number; height: number }>();
  /** surface -> last set_source (fixed point converted to numbers) */
  readonly source = new Map<number, { x: number; y: number; width: number; height: number }>();
  readonly buffers = new Map<number, TracedBuffer>();
  /** every buffer ever created, in order (ids are reused) */
  readonly created: TracedBuffer[] = [];
  /** surface -> the buffer id last attached (0: a null attach) */
  readonly attached = new Map<number, number>();
  /** surface -> the buffer (as created) of its last attach */
  readonly attachedBuffer = new Map<number, TracedBuffer>();
  /** xdg_toplevel.configure sizes, in order */
  readonly configures: Array<{ width: number; height: number }> = [];
  /** wl_display.error events, as printed */
  readonly errors: string[] = [];
  /**
   * The first commit of an xdg_surface's wl_surface with a buffer attached before any
   * xdg_surface.ack_configure (a protocol error: unconfigured_buffer), and how long after that
   * surface's first commit it came (trace clock, ms).
   */
  unconfiguredCommit: { surface: number; waitedMs: number } | undefined;
  /** wl_surface id -> its xdg_surface's id */
  readonly #xdgSurfaceOf = new Map<number, number>();
  /** xdg_surface ids that acked a configure */
  readonly #acked = new Set<number>();
  /** wl_surface id -> the trace time of its first commit (ms) */
  readonly #firstCommitMs = new Map<number, number>();
  /** the last wl_seat.capabilities (bits: 1 pointer, 2 keyboard, 4 touch) */
  capabilities: number | undefined;
  /** where the client last heard the pointer (wl_pointer enter or motion), in its surface's coordinates */
  pointer: { surface: number; x: number; y: number } | undefined;
  /** wl_pointer enter and motion events heard */
  pointerEvents = 0;
  /** wl_keyboard.enter events heard */
  keyboardEnters = 0;
  /** lines that are not trace lines (the client's own messages) */
  readonly other: string[] = [];
  /** zwp_linux_buffer_params_v1 id -> the size and format of its create (the created event names the buffer) */
  readonly #params = new Map<number, { width: number; height: number; format: number }>();
  #tail = '';

  /** Feeds a chunk of the client's stderr. */
  push(chunk: string): void {
    const text = this.#tail + chunk;
    const lines = text.split('\n');
    this.#tail = lines.pop()!;
    for (const l of lines) this.line(l);
  }

  /** One line of the trace. */
  line(l: string): void {
    const m = /^\[\s*(\d+\.\d+)\]\s+(->\s+)?([A-Za-z_0-9]+)@(\d+)\.([a-z_0-9]+)\((.*)\)\s*$/.exec(l);
    if (!m) {
      if (l.trim() && !/^\[\s*\d+\.\d+\]/.test(l)) this.other.push(l);
      return;
    }
    const ms = Number(m[1]);
    const request = m[2] !== undefined;
    const iface = m[3]!;
    const id = Number(m[4]);
    const msg = m[5]!;
    const args = m[6]!;
    const ids = [...args.matchAll(/@(\d+)/g)].map((x) => Number(x[1]));
    const nums = args.split(',').map((s) => s.trim()).filter((s) => /^-?\d+(\.\d+)?$/.test(s)).map(Number);
    if (!request) {
      if (iface === 'wl_display' && msg === 'error') this.errors.push(l.trim());
      else if (iface === 'wl_seat' && msg === 'capabilities') this.capabilities = nums[0];
      else if (iface === 'wl_keyboard' && msg === 'enter') this.keyboardEnters++;
      else if (iface === 'wl_pointer' && msg === 'enter' && ids[0] !== undefined && nums.length >= 3) {
        this.pointer = { surface: ids[0], x: nums[1]!, y: nums[2]! };
        this.pointerEvents++;
      } else if (iface === 'wl_pointer' && msg === 'motion' && this.pointer && nums.length >= 3) {
        this.pointer = { ...this.pointer, x: nums[1]!, y: nums[2]! };
        this.pointerEvents++;
      }
      else if (iface === 'xdg_toplevel' && msg === 'configure') this.configures.push({ width: nums[0] ?? 0, height: nums[1] ?? 0 });
      else if (iface === 'zwp_linux_buffer_params_v1' && msg === 'created') {
        const p = this.#params.get(id);
        if (p && ids[0] !== undefined) this.#buffer({ id: ids[0], kind: 'dmabuf', ...p });
      }
      return;
    }
    switch (`${iface}.${msg}`) {
      case 'wl_registry.bind': {
        const name = /"([^"]+)"/.exec(args)?.[1];
        if (name) this.bound.push(name);
        break;
      }
      case 'wl_surface.commit': {
        this.commits.set(id, (this.commits.get(id) ?? 0) + 1);
        if (!this.#firstCommitMs.has(id)) this.#firstCommitMs.set(id, ms);
        const xs = this.#xdgSurfaceOf.get(id);
        if (xs !== undefined && !this.#acked.has(xs) && (this.attached.get(id) ?? 0) !== 0 && !this.unconfiguredCommit) {
          this.unconfiguredCommit = { surface: id, waitedMs: ms - this.#firstCommitMs.get(id)! };
        }
        break;
      }
      case 'xdg_wm_base.get_xdg_surface':
        // (new id xdg_surface@N, wl_surface@S)
        if (ids.length >= 2) this.#xdgSurfaceOf.set(ids[1]!, ids[0]!);
        break;
      case 'xdg_surface.ack_configure':
        this.#acked.add(id);
        break;
      case 'wl_surface.attach': {
        const b = /nil/.test(args.split(',')[0]!) ? 0 : (ids[0] ?? 0);
        this.attached.set(id, b);
        const buf = this.buffers.get(b);
        if (buf) this.attachedBuffer.set(id, buf);
        else this.attachedBuffer.delete(id);
        break;
      }
      case 'wl_subcompositor.get_subsurface':
        // (new id wl_subsurface@N, wl_surface@S, wl_surface@P)
        if (ids.length >= 3) this.subsurfaces.set(ids[1]!, { subsurface: ids[0]!, surface: ids[1]!, parent: ids[2]!, x: 0, y: 0, desync: false });
        break;
      case 'wl_subsurface.set_position':
      case 'wl_subsurface.set_sync':
      case 'wl_subsurface.set_desync': {
        const s = [...this.subsurfaces.values()].find((x) => x.subsurface === id);
        if (!s) break;
        if (msg === 'set_position') [s.x, s.y] = [nums[0] ?? 0, nums[1] ?? 0];
        else s.desync = msg === 'set_desync';
        break;
      }
      case 'wp_viewporter.get_viewport':
        if (ids.length >= 2) this.viewportOf.set(ids[0]!, ids[1]!);
        break;
      case 'wp_viewport.set_destination': {
        const s = this.viewportOf.get(id);
        if (s !== undefined) this.destination.set(s, { width: nums[0] ?? -1, height: nums[1] ?? -1 });
        break;
      }
      case 'wp_viewport.set_source': {
        const s = this.viewportOf.get(id);
        if (s !== undefined) this.source.set(s, { x: nums[0] ?? -1, y: nums[1] ?? -1, width: nums[2] ?? -1, height: nums[3] ?? -1 });
        break;
      }
      case 'wl_shm_pool.create_buffer':
        // (new id wl_buffer@N, offset, width, height, stride, format)
        if (ids[0] !== undefined && nums.length >= 5) this.#buffer({ id: ids[0], kind: 'shm', width: nums[1]!, height: nums[2]!, format: nums[4]! });
        break;
      case 'zwp_linux_buffer_params_v1.create':
        this.#params.set(id, { width: nums[0] ?? 0, height: nums[1] ?? 0, format: nums[2] ?? 0 });
        break;
      case 'zwp_linux_buffer_params_v1.create_immed':
        // (new id wl_buffer@N, width, height, format, flags)
        if (ids[0] !== undefined) this.#buffer({ id: ids[0], kind: 'dmabuf', width: nums[0] ?? 0, height: nums[1] ?? 0, format: nums[2] ?? 0 });
        break;
      default:
        break;
    }
  }

  #buffer(b: TracedBuffer): void {
    this.buffers.set(b.id, b);
    this.created.push(b);
  }

  /** Commits of `surface` so far. */
  commitsOf(surface: number): number {
    return this.commits.get(surface) ?? 0;
  }

  /** The surfaces that are no subsurface (a toplevel's, a cursor's). */
  roots(): number[] {
    return [...this.commits.keys()].filter((s) => !this.subsurfaces.has(s));
  }
}
