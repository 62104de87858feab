/**
 * wl_data_device_manager (version 3): the selection (copy and paste) between clients of the
 * seat (seat.ts). A client offers a wl_data_source with its mime types and sets it as the
 * selection; the client with the seat's keyboard focus (the client of the focused surface, kept
 * by the seat even while it has no keyboard) hears it on each of its wl_data_devices as a new
 * wl_data_offer (data_offer, offer per mime type, selection) when it is set, when the focus
 * comes to it (before the keyboard enter), and when it creates a data device while focused.
 * wl_data_offer.receive(mime, fd) becomes wl_data_source.send(mime, fd) on the source's
 * client: the fd passes through and the compositor's copy is closed at once (libwayland sends a
 * duplicate); a receive the source cannot answer (the offer is no longer the selection's, its
 * source is gone, the mime type was not offered) closes the fd, so the reader sees EOF. The
 * selection ends with selection(null) when its source is destroyed, by request or with its
 * client; a replaced source hears cancelled.
 *
 * set_selection takes any client's source unless its serial is older than the current
 * selection's (as Weston). Drag and drop: the kiosk keeps no pointer grab (it has no pointer
 * yet), and a drag needs an implicit grab matching the serial, so no drag ever starts:
 * start_drag checks the icon's role (wl_data_device.error.role) and the source (used before:
 * invalid_source), then uses up the source and answers it with cancelled, as for a drag that
 * ended at once.
 *
 * Errors of the protocol text: a source used twice (a second set_selection or start_drag), a
 * source given set_actions and then used for the selection, set_actions twice or after the
 * source's use: wl_data_source.invalid_source; set_actions with bits outside the dnd_action enum:
 * invalid_action_mask; wl_data_offer.finish on a selection offer: invalid_finish;
 * wl_data_offer.set_actions on a selection offer: invalid_offer.
 */
import type { ServerClient, ServerResource, WaylandServer } from 'primebuf';
import type { OwnedFd } from 'primebuf/dmabuf';
import type { Seat, SeatSurface } from './seat.js';

export const DATA_DEVICE_MANAGER_VERSION = 3;

/** wl_data_source.error codes. */
export const DATA_SOURCE_ERROR = { invalid_action_mask: 0, invalid_source: 1 } as const;
/** wl_data_offer.error codes. */
export const DATA_OFFER_ERROR = { invalid_finish: 0, invalid_action_mask: 1, invalid_action: 2, invalid_offer: 3 } as const;
/** wl_data_device.error codes. */
export const DATA_DEVICE_ERROR = { role: 0 } as const;
/** wl_data_device_manager.dnd_action bits (none 0, copy 1, move 2, ask 4). */
const DND_ACTIONS_MASK = 1 | 2 | 4;
/** The role name a drag icon would get (Surface.roleName). */
export const DND_ICON_ROLE = 'wl_data_device icon';

/** A wl_data_source: its mime types and how it was used. */
class DataSource {
  readonly mimeTypes: string[] = [];
  /** set_selection or start_drag took it */
  used = false;
  /** set_actions was sent (the source is for drag and drop only) */
  actionsSet = false;
  constructor(readonly resource: ServerResource<'wl_data_source'>) {}
}

interface Selection {
  readonly source: DataSource;
  readonly serial: number;
}

export class DataDeviceManager {
  readonly #server: WaylandServer;
  readonly #seat: Seat;
  readonly #devices = new Set<ServerResource<'wl_data_device'>>();
  readonly #sources = new WeakMap<ServerResource<'wl_data_source'>, DataSource>();
  #selection: Selection | null = null;
  /** The selection offer each data device holds now (receive on any other offer is refused). */
  readonly #current = new WeakMap<ServerResource<'wl_data_offer'>, DataSource>();
  readonly global;

  constructor(
    server: WaylandServer,
    seat: Seat,
    readonly surfaceOf: (r: ServerResource<'wl_surface'>) => SeatSurface | undefined,
  ) {
    this.#server = server;
    this.#seat = seat;
    seat.onFocusChange((client) => {
      if (client) for (const d of this.#devicesOf(client)) this.#sendSelection(d);
    });
    this.global = server.createGlobal('wl_data_device_manager', DATA_DEVICE_MANAGER_VERSION, (res) =>
      res.implement({
        create_data_source: ({ id }) => this.#newSource(id),
        get_data_device: ({ id }) => this.#newDevice(id),
      }),
    );
  }

  /** The selection's mime types (null: no selection). */
  get selection(): readonly string[] | null {
    return this.#selection ? [...this.#selection.source.mimeTypes] : null;
  }

  close(): void {
    this.global.destroy();
  }

  #devicesOf(client: ServerClient): ServerResource<'wl_data_device'>[] {
    return [...this.#devices].filter((d) => d.client === client && !d.destroyed);
  }

  #newSource(id: ServerResource<'wl_data_source'>): void {
    const src = new DataSource(id);
    this.#sources.set(id, src);
    id.implement({
      offer: ({ mime_type }) => {
        if (!src.mimeTypes.includes(mime_type)) src.mimeTypes.push(mime_type);
      },
      set_actions: ({ dnd_actions }) => {
        if ((dnd_actions & ~DND_ACTIONS_MASK) !== 0) {
          id.postError(DATA_SOURCE_ERROR.invalid_action_mask, `dnd_actions 0x${dnd_actions.toString(16)} has bits outside the dnd_action enum`);
          return;
        }
        if (src.actionsSet || src.used) {
          id.postError(DATA_SOURCE_ERROR.invalid_source, src.used ? 'set_actions after the source was used' : 'set_actions sent twice');
          return;
        }
        src.actionsSet = true;
      },
    });
    id.onDestroy(() => {
      if (this.#selection?.source === src) this.#setSelection(null, this.#selection.serial);
    });
  }

  #newDevice(dev: ServerResource<'wl_data_device'>): void {
    this.#devices.add(dev);
    dev.onDestroy(() => this.#devices.delete(dev));
    dev.implement({
      set_selection: ({ source, serial }) => {
        const src = source ? this.#sources.get(source) : undefined;
        if (source && !src) return;
        if (src) {
          if (src.used || src.actionsSet) {
            source!.postError(DATA_SOURCE_ERROR.invalid_source, src.used ? 'the source was already used' : 'a source given set_actions is for drag and drop only');
            return;
          }
          src.used = true;
        }
        // a request older than the current selection's is stale (serials wrap: compare as Weston does)
        if (this.#selection && ((this.#selection.serial - serial) >>> 0) < 0x80000000 && this.#selection.serial !== serial) {
          if (src) src.resource.send('cancelled', {});
          return;
        }
        this.#setSelection(src ?? null, serial);
      },
      start_drag: ({ source, icon }) => {
        if (icon) {
          const s = this.surfaceOf(icon);
          if (s && s.roleName !== null && s.roleName !== DND_ICON_ROLE) {
            dev.postError(DATA_DEVICE_ERROR.role, `wl_surface@${icon.id} has the role ${s.roleName}`);
            return;
          }
        }
        const src = source ? this.#sources.get(source) : undefined;
        if (src) {
          if (src.used) {
            source!.postError(DATA_SOURCE_ERROR.invalid_source, 'the source was already used');
            return;
          }
          src.used = true;
          // no implicit pointer grab exists to match the serial: the drag ends before it starts
          src.resource.send('cancelled', {});
        }
      },
    });
    const focus = this.#seat.focusClient;
    if (focus === dev.client) this.#sendSelection(dev);
  }

  #setSelection(src: DataSource | null, serial: number): void {
    const old = this.#selection?.source;
    this.#selection = src ? { source: src, serial } : null;
    if (old && old !== src && !old.resource.destroyed) old.resource.send('cancelled', {});
    const client = this.#seat.focusClient;
    if (client) for (const d of this.#devicesOf(client)) this.#sendSelection(d);
  }

  /** data_offer, offer per mime type, selection: or selection(null) with no selection. */
  #sendSelection(dev: ServerResource<'wl_data_device'>): void {
    const src = this.#selection?.source;
    if (!src) {
      dev.send('selection', { id: null });
      return;
    }
    const offer = this.#server.createResource(dev.client, 'wl_data_offer', dev.version);
    this.#current.set(offer, src);
    offer.implement({
      receive: ({ mime_type, fd }) => this.#receive(offer, mime_type, fd),
      finish: () => offer.postError(DATA_OFFER_ERROR.invalid_finish, 'finish on a selection offer (not drag and drop)'),
      set_actions: () => offer.postError(DATA_OFFER_ERROR.invalid_offer, 'set_actions on a selection offer (not drag and drop)'),
    });
    dev.send('data_offer', { id: offer });
    for (const mime_type of src.mimeTypes) offer.send('offer', { mime_type });
    dev.send('selection', { id: offer });
  }

  #receive(offer: ServerResource<'wl_data_offer'>, mime: string, fd: OwnedFd): void {
    try {
      const src = this.#current.get(offer);
      // only an offer of the live selection is answered; others get EOF
      if (!src || this.#selection?.source !== src || src.resource.destroyed || !src.mimeTypes.includes(mime)) return;
      src.resource.send('send', { mime_type: mime, fd: fd.fd }); // libwayland sends a duplicate
    } finally {
      fd.close();
    }
  }
}
