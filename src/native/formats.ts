/** Raw native surface of native/formats.cc (libdrm naming, for cross-checks). */
export interface FormatsNative {
  drmGetFormatName(format: number): string | null;
  drmGetFormatModifierName(modifier: bigint): string | null;
  drmGetFormatModifierVendor(modifier: bigint): string | null;
}
