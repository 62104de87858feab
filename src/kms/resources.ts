/**
 * A snapshot of a KMS device's objects: CRTCs, connectors (writeback included), encoders and
 * planes with their type, possible CRTCs, every property, and IN_FORMATS decoded into a
 * FormatSet; size limits and cursor size. Plain data (JSON-able through resourcesToJSON).
 */
import { FormatSet, DRM_FORMAT_MOD_INVALID } from '../formats/index.js';
import { native } from '../native.js';
import type { RawMode } from '../native/drm.js';
import type { Device } from './device.js';
import { decodeInFormats } from './in-formats.js';
import { enumName, type Property } from './properties.js';

export type PlaneType = 'primary' | 'overlay' | 'cursor';

export interface Plane {
  id: number;
  type: PlaneType;
  /** CRTC ids this plane can be used with */
  possibleCrtcs: number[];
  crtcId: number;
  fbId: number;
  /** IN_FORMATS when present; otherwise the legacy format list with the implicit modifier */
  formats: FormatSet;
  /** whether `formats` came from IN_FORMATS */
  hasInFormats: boolean;
  properties: Map<string, Property>;
}

export interface Crtc {
  id: number;
  /** index in the resources list (bit position in possible_crtcs masks) */
  index: number;
  fbId: number;
  x: number;
  y: number;
  mode: RawMode | null;
  active: boolean;
  gammaSize: number;
  properties: Map<string, Property>;
}

export interface Connector {
  id: number;
  /** 'Virtual-1', 'Writeback-1', 'HDMI-A-1' */
  name: string;
  type: number;
  typeName: string;
  typeId: number;
  writeback: boolean;
  connection: 'connected' | 'disconnected' | 'unknown';
  mmWidth: number;
  mmHeight: number;
  modes: RawMode[];
  encoders: number[];
  encoderId: number;
  /** the CRTC the connector is routed to (atomic CRTC_ID), 0 when none */
  crtcId: number;
  /** writeback connectors: WRITEBACK_PIXEL_FORMATS */
  writebackFormats?: number[];
  properties: Map<string, Property>;
}

export interface Encoder {
  id: number;
  type: number;
  crtcId: number;
  possibleCrtcs: number[];
  possibleClones: number;
}

export interface KmsResources {
  minWidth: number;
  maxWidth: number;
  minHeight: number;
  maxHeight: number;
  cursorWidth: number | null;
  cursorHeight: number | null;
  crtcs: Crtc[];
  connectors: Connector[];
  encoders: Encoder[];
  planes: Plane[];
}

export const DRM_MODE_CONNECTOR_WRITEBACK = 18;

function maskToIds(mask: number, crtcIds: number[]): number[] {
  return crtcIds.filter((_, i) => (mask >>> i) & 1);
}

/** Reads every KMS object of the device (one pass of GET ioctls; connectors are not re-probed unless `probe`). */
export function readResources(device: Device, opts: { probe?: boolean } = {}): KmsResources {
  const fd = device.fd;
  const r = native.drmGetResources(fd);
  const props = device.properties;
  const crtcIds = r.crtcs;
  const crtcs: Crtc[] = crtcIds.map((id, index) => {
    const c = native.drmGetCrtc(fd, id);
    const p = props.objectProperties(id, 'CRTC');
    return {
      id,
      index,
      fbId: c.fbId,
      x: c.x,
      y: c.y,
      mode: c.mode,
      active: p.has('ACTIVE') ? p.get('ACTIVE')!.value !== 0n : c.mode !== null,
      gammaSize: c.gammaSize,
      properties: p,
    };
  });
  const encoders: Encoder[] = r.encoders.map((id) => {
    const e = native.drmGetEncoder(fd, id);
    return { id, type: e.type, crtcId: e.crtcId, possibleCrtcs: maskToIds(e.possibleCrtcs, crtcIds), possibleClones: e.possibleClones };
  });
  const connectors: Connector[] = r.connectors.map((id) => {
    const c = native.drmGetConnector(fd, id, opts.probe ?? false);
    const p = props.objectProperties(id, 'CONNECTOR');
    const writeback = c.type === DRM_MODE_CONNECTOR_WRITEBACK;
    const out: Connector = {
      id,
      name: `${c.typeName}-${c.typeId}`,
      type: c.type,
      typeName: c.typeName,
      typeId: c.typeId,
      writeback,
      connection: c.connection === 1 ? 'connected' : c.connection === 2 ? 'disconnected' : 'unknown',
      mmWidth: c.mmWidth,
      mmHeight: c.mmHeight,
      modes: c.modes,
      encoders: c.encoders,
      encoderId: c.encoderId,
      crtcId: p.has('CRTC_ID') ? Number(p.get('CRTC_ID')!.value) : 0,
      properties: p,
    };
    const wf = p.get('WRITEBACK_PIXEL_FORMATS');
    if (writeback && wf && wf.value !== 0n) {
      const blob = native.drmGetPropertyBlob(fd, Number(wf.value));
      const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
      out.writebackFormats = Array.from({ length: blob.byteLength / 4 }, (_, i) => dv.getUint32(i * 4, true));
    }
    return out;
  });
  const planes: Plane[] = native.drmGetPlaneResources(fd).map((id) => {
    const pl = native.drmGetPlane(fd, id);
    const p = props.objectProperties(id, 'PLANE');
    const typeName = enumName(p.get('type'));
    const type: PlaneType = typeName === 'Primary' ? 'primary' : typeName === 'Cursor' ? 'cursor' : 'overlay';
    const inf = p.get('IN_FORMATS');
    let formats: FormatSet;
    let hasInFormats = false;
    if (inf && inf.value !== 0n) {
      formats = FormatSet.from(decodeInFormats(native.drmGetPropertyBlob(fd, Number(inf.value))));
      hasInFormats = true;
    } else {
      formats = FormatSet.from(pl.formats.map((f) => [f, DRM_FORMAT_MOD_INVALID] as const));
    }
    return {
      id,
      type,
      possibleCrtcs: maskToIds(pl.possibleCrtcs, crtcIds),
      crtcId: pl.crtcId,
      fbId: pl.fbId,
      formats,
      hasInFormats,
      properties: p,
    };
  });
  device.noteResourceIds({ crtcs: r.crtcs, connectors: r.connectors, encoders: r.encoders, planes: planes.map((p) => p.id) });
  const cw = device.tryGetCap('CURSOR_WIDTH', -1n);
  const ch = device.tryGetCap('CURSOR_HEIGHT', -1n);
  return {
    minWidth: r.minWidth,
    maxWidth: r.maxWidth,
    minHeight: r.minHeight,
    maxHeight: r.maxHeight,
    cursorWidth: cw < 0n ? null : Number(cw),
    cursorHeight: ch < 0n ? null : Number(ch),
    crtcs,
    connectors,
    encoders,
    planes,
  };
}

/** The preferred mode of a connector (DRM_MODE_TYPE_PREFERRED), else its first mode. */
export function preferredMode(c: Connector): RawMode | undefined {
  return c.modes.find((m) => (m.type & 0x8) !== 0) ?? c.modes[0];
}
