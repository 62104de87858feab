/**
 * DRM pixel formats and format modifiers: the fourcc table generated from the vendored kernel
 * header, the kernel's per-format facts and size rules, modifier names and decoding, and the
 * immutable FormatSet used for negotiation.
 */
export {
  DRM_FORMAT_BIG_ENDIAN,
  checkFormatCode,
  fourcc,
  fourccCode,
  fourccString,
  formatName,
  headerFormats,
  type HeaderFormat,
} from './fourcc.js';
export {
  formatInfo,
  minPitch,
  planeHeight,
  planeSize,
  planeWidth,
  type FormatInfo,
} from './info.js';
export {
  DRM_FORMAT_MOD_INVALID,
  DRM_FORMAT_MOD_LINEAR,
  checkModifier,
  decodeModifier,
  modifierHex,
  modifierName,
  modifierVendor,
  parseModifier,
  type ModifierFields,
  type ModifierInfo,
} from './modifiers.js';
export { FormatSet, type FormatModifier, type FormatSetJSON } from './format-set.js';
