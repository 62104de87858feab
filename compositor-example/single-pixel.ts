/**
 * wp_single_pixel_buffer_manager_v1 (version 1, protocol/single-pixel-buffer-v1.xml): a wl_buffer
 * of one pixel of one colour (a background, a letterbox, stretched by wp_viewport). Its colour
 * comes as four 32-bit channels, premultiplied by alpha; the scene (scene.ts) shows it as a
 * SolidColor fill, no memory is read. It is released when a commit replaces it on its surface.
 */
import type { ServerResource, WaylandServer } from 'primebuf';
import type { SolidColor } from 'primebuf/scanout';

const KEY = 'singlePixel';
const MAX = 0xffffffff;

export class SinglePixelBuffer {
  /** premultiplied, each channel in [0, 1] */
  readonly color: SolidColor;

  constructor(
    readonly resource: ServerResource<'wl_buffer'>,
    r: number,
    g: number,
    b: number,
    a: number,
  ) {
    this.color = { kind: 'solid', r: r / MAX, g: g / MAX, b: b / MAX, a: a / MAX };
    resource.data[KEY] = this;
  }

  /** The single-pixel buffer of a wl_buffer resource, or null (another kind). */
  static of(resource: ServerResource | null | undefined): SinglePixelBuffer | null {
    const b = resource?.data[KEY];
    return b instanceof SinglePixelBuffer ? b : null;
  }
}

/** The wp_single_pixel_buffer_manager_v1 global. */
export function installSinglePixelBuffer(server: WaylandServer): void {
  server.createGlobal('wp_single_pixel_buffer_manager_v1', 1, (res) =>
    res.implement({
      create_u32_rgba_buffer: ({ id, r, g, b, a }) => {
        new SinglePixelBuffer(id, r, g, b, a);
        id.implement({});
      },
    }),
  );
}
