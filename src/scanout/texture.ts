/**
 * Texture verdicts: can the render device import (sample) this buffer? Same shape as scanout
 * verdicts. The render device's constraint comes from src/constraints: EGL's dma-buf import
 * queries where libEGL answers (external-only pairs included: they can be sampled), else the
 * declared render-node description (liveRenderNodeConstraint / renderNodeConstraint).
 */
import type { DeviceConstraint } from '../constraints/types.js';
import { modifierLabel } from '../constraints/types.js';
import { DRM_FORMAT_MOD_INVALID, formatName } from '../formats/index.js';
import { reason, verdict, type ScanoutReason, type Verdict } from './reasons.js';
import { describeBuffer, type ScanoutBuffer } from './verdict-buffer.js';
import { layoutReasons } from './verdict.js';

export function checkTexture(buffer: ScanoutBuffer, renderDevice: DeviceConstraint): Verdict {
  const reasons: ScanoutReason[] = [];
  const notes: string[] = [];
  const dev = renderDevice.device;
  if (buffer.kind !== 'dmabuf') {
    return verdict([reason('NOT_DMABUF', `${describeBuffer(buffer)} is no dma-buf: it is uploaded (copied) into a texture, not imported`, { format: buffer.format })]);
  }
  const about = { format: buffer.format, modifier: buffer.modifier };
  const fname = formatName(buffer.format);
  const set = renderDevice.formats;
  const implicit = buffer.modifier === DRM_FORMAT_MOD_INVALID;
  if (set) {
    if (!set.hasFormat(buffer.format)) {
      reasons.push(reason('FORMAT', `${dev} does not import ${fname} (${renderDevice.source ?? 'its constraint'})`, about));
    } else if (implicit) {
      notes.push(`implicit modifier: ${dev} imports ${fname} and its driver interprets the layout`);
    } else if (!set.has(buffer.format, buffer.modifier)) {
      reasons.push(reason('MODIFIER', `${dev} imports ${fname} only as ${set.modifiers(buffer.format).map(modifierLabel).join(', ')}, not ${modifierLabel(buffer.modifier)}`, about));
    } else if (renderDevice.externalOnly?.has(buffer.format, buffer.modifier)) {
      notes.push(`${fname} ${modifierLabel(buffer.modifier)} is external-only on ${dev}: sampled as GL_TEXTURE_EXTERNAL_OES`);
    }
  } else if (renderDevice.modifiers && !implicit && !renderDevice.modifiers.includes(buffer.modifier)) {
    reasons.push(reason('MODIFIER', `${dev} imports only ${renderDevice.modifiers.map(modifierLabel).join(', ')}, not ${modifierLabel(buffer.modifier)}`, about));
  }
  const c = renderDevice;
  if ((c.minWidth !== undefined && buffer.width < c.minWidth) || (c.maxWidth !== undefined && buffer.width > c.maxWidth) ||
      (c.minHeight !== undefined && buffer.height < c.minHeight) || (c.maxHeight !== undefined && buffer.height > c.maxHeight)) {
    reasons.push(reason('SIZE', `${buffer.width}x${buffer.height} is outside ${dev}'s limits [${c.minWidth ?? 0}, ${c.maxWidth ?? '∞'}] x [${c.minHeight ?? 0}, ${c.maxHeight ?? '∞'}]`, about));
  }
  if (c.maxPlanes !== undefined && buffer.planes.length > c.maxPlanes) {
    reasons.push(reason('LAYOUT', `${buffer.planes.length} memory planes, ${dev} takes at most ${c.maxPlanes}`, about));
  }
  if (c.maxPitch !== undefined) {
    buffer.planes.forEach((p, i) => {
      if (p.stride > c.maxPitch!) reasons.push(reason('LAYOUT', `plane ${i}: pitch ${p.stride} is above ${dev}'s maximum ${c.maxPitch}`, about));
    });
  }
  reasons.push(...layoutReasons({ name: dev, pitchAlign: c.pitchAlign, offsetAlign: c.offsetAlign }, buffer));
  return verdict(reasons, notes);
}
