/** primebuf's public API. */
export * from './errors.js';
export { Resource } from './resource.js';
export * from './kms/index.js';
export * from './formats/index.js';
