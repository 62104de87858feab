/**
 * wp_viewporter and wp_viewport (version 1, protocol/viewporter.xml): a source rectangle in
 * surface coordinates (wl_fixed: fractional) and a destination size per surface, both
 * double-buffered state of the wl_surface (its SurfaceState, applied or cached with the rest).
 *
 * Errors: a second wp_viewport on a surface (viewport_exists); a source that is not all -1 with
 * a negative position or a zero or negative size, a destination that is not -1,-1 with a zero or
 * negative size (bad_value); any request but destroy once the wl_surface is gone (no_surface).
 * Checked when the state is applied (compositor.ts): a source without destination whose size is
 * not integer (bad_size), a source outside the buffer (out_of_buffer). Destroying the viewport
 * unsets both at the surface's next commit.
 */
import type { ServerResource, WaylandServer } from 'primebuf';
import { VIEWPORT_ERROR, type Surface } from './compositor.js';

/** wp_viewporter.error codes. */
export const VIEWPORTER_ERROR = { viewport_exists: 0 } as const;
export { VIEWPORT_ERROR };

/** The wp_viewporter global. */
export function installViewporter(server: WaylandServer, surfaceOf: (r: ServerResource<'wl_surface'>) => Surface | undefined): void {
  server.createGlobal('wp_viewporter', 1, (res) =>
    res.implement({
      get_viewport: ({ id, surface: sres }) => {
        const surface = surfaceOf(sres);
        if (!surface) return;
        if (surface.viewport) return res.postError(VIEWPORTER_ERROR.viewport_exists, `wl_surface@${sres.id} already has a wp_viewport`);
        surface.viewport = id;
        /** false (and no_surface) once the wl_surface is gone */
        const alive = (request: string): boolean => {
          if (!surface.destroyed) return true;
          id.postError(VIEWPORT_ERROR.no_surface, `${request}: the wl_surface of this wp_viewport was destroyed`);
          return false;
        };
        id.implement({
          set_source: ({ x, y, width, height }) => {
            if (!alive('set_source')) return;
            if (x === -1 && y === -1 && width === -1 && height === -1) {
              surface.pending.viewportSrc = null;
              return;
            }
            if (x < 0 || y < 0 || width <= 0 || height <= 0) {
              id.postError(VIEWPORT_ERROR.bad_value, `set_source ${width}x${height}+${x}+${y}: a negative position or a zero or negative size`);
              return;
            }
            surface.pending.viewportSrc = { x, y, width, height };
          },
          set_destination: ({ width, height }) => {
            if (!alive('set_destination')) return;
            if (width === -1 && height === -1) {
              surface.pending.viewportDst = null;
              return;
            }
            if (width <= 0 || height <= 0) {
              id.postError(VIEWPORT_ERROR.bad_value, `set_destination ${width}x${height}: a zero or negative size`);
              return;
            }
            surface.pending.viewportDst = { width, height };
          },
        });
        id.onDestroy(() => {
          if (surface.viewport !== id) return;
          surface.viewport = null;
          // the crop and scale are removed with the surface's next commit
          if (!surface.destroyed) {
            surface.pending.viewportSrc = null;
            surface.pending.viewportDst = null;
          }
        });
      },
    }),
  );
}
