/** primebuf's public API. */
export * from './errors.js';
export { Resource } from './resource.js';
export * from './kms/index.js';
