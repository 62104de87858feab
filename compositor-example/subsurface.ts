/**
 * wl_subcompositor and wl_subsurface (version 1, wayland.xml): a surface placed in its parent's
 * coordinates and stacked among the parent and its other subsurfaces.
 *
 * - get_subsurface: the surface must not have another role nor a live wl_subsurface
 *   (bad_surface); the parent must not be the surface itself nor one of its descendants (the
 *   surface would be its own ancestor: bad_parent, wayland 1.22's code 1). The new subsurface goes
 *   on top of its parent's pending stack, shown once the parent's state is applied.
 * - set_position, place_above and place_below change the parent's pending state (its
 *   SurfaceState takes them at its commit) and so are applied with the parent's state, whatever
 *   the subsurface's mode. The reference of place_above/below must be the parent or a sibling,
 *   not the subsurface itself (bad_surface).
 * - set_sync / set_desync act at once. A subsurface that is synchronized, or has a synchronized
 *   ancestor, caches its commits; the cache is applied right after its parent's state is
 *   applied. A commit of a desynchronized one adds to the cache and applies it as a whole, and
 *   set_desync applies the cache at once when the surface then behaves as desynchronized.
 * - Destroying the wl_subsurface (or its wl_surface) takes the surface out of the tree at once;
 *   destroying the parent leaves the subsurface without a parent (never shown).
 */
import type { ServerResource, WaylandServer } from 'primebuf';
import type { SubsurfaceLink, Surface, SurfaceRole } from './compositor.js';

/** wl_subcompositor.error codes; bad_parent is wayland 1.22's (the vendored wayland.xml is 1.21). */
export const SUBCOMPOSITOR_ERROR = { bad_surface: 0, bad_parent: 1 } as const;
/** wl_subsurface.error codes. */
export const SUBSURFACE_ERROR = { bad_surface: 0 } as const;

export const SUBSURFACE_ROLE = 'wl_subsurface';

/** The role object of a subsurface: its commits need nothing beyond the surface's own (the cache is the surface's). */
class Subsurface implements SurfaceRole {
  commit(): void {}
}

/** `a` is `b` or one of its ancestors in the subsurface tree. */
function isAncestorOrSelf(a: Surface, b: Surface): boolean {
  for (let s: Surface | null = b; s; s = s.sub?.parent ?? null) if (s === a) return true;
  return false;
}

/** The wl_subcompositor global. */
export function installSubcompositor(server: WaylandServer, surfaceOf: (r: ServerResource<'wl_surface'>) => Surface | undefined): void {
  server.createGlobal('wl_subcompositor', 1, (res) =>
    res.implement({
      get_subsurface: ({ id, surface: sres, parent: pres }) => {
        const surface = surfaceOf(sres);
        const parent = surfaceOf(pres);
        if (!surface || !parent) return;
        if (surface.sub) return res.postError(SUBCOMPOSITOR_ERROR.bad_surface, `wl_surface@${sres.id} already has a wl_subsurface`);
        if (surface.roleName !== null && surface.roleName !== SUBSURFACE_ROLE) {
          return res.postError(SUBCOMPOSITOR_ERROR.bad_surface, `wl_surface@${sres.id} already has the role ${surface.roleName}`);
        }
        if (isAncestorOrSelf(surface, parent)) {
          return res.postError(SUBCOMPOSITOR_ERROR.bad_parent, `wl_surface@${pres.id} cannot be the parent of wl_surface@${sres.id}: ${surface === parent ? 'it is the surface itself' : 'it is one of its descendants'}`);
        }
        surface.roleName = SUBSURFACE_ROLE;
        const role = new Subsurface();
        surface.role = role;
        const link: SubsurfaceLink = { parent, sync: true, position: { x: 0, y: 0 } };
        surface.sub = link;
        // added on top of its siblings and parent, shown with the parent's next applied state
        parent.pendingStack = [...(parent.pendingStack ?? parent.stack), surface];
        const detach = (): void => {
          if (link.parent) link.parent.removeChild(surface);
          link.parent = null;
          if (surface.sub === link) {
            surface.sub = null;
            // what it cached is applied to the surface, now outside any tree (it is not shown)
            if (!surface.destroyed) surface.applyCache();
          }
          if (surface.role === role) surface.role = null;
        };
        const parentGone = (): void => {
          if (link.parent === parent) {
            link.parent = null;
            if (surface.sub === link && !surface.destroyed) surface.applyCache();
          }
        };
        pres.onDestroy(parentGone);
        sres.onDestroy(detach);
        id.onDestroy(detach);
        /** The reference of place_above/below: the parent or a sibling, else bad_surface. */
        const reference = (r: ServerResource<'wl_surface'>, request: string): Surface | undefined => {
          const ref = surfaceOf(r);
          if (!link.parent || surface.sub !== link) return undefined; // inert
          if (ref && ref !== surface && (ref === link.parent || ref.sub?.parent === link.parent)) return ref;
          id.postError(SUBSURFACE_ERROR.bad_surface, `${request}: wl_surface@${r.id} is neither the parent nor a sibling of wl_surface@${sres.id}`);
          return undefined;
        };
        const restack = (ref: Surface, above: boolean): void => {
          const p = link.parent!;
          const order = (p.pendingStack ?? p.stack).filter((s) => s !== surface);
          const i = order.indexOf(ref);
          if (i < 0) return; // a sibling gone meanwhile
          order.splice(above ? i + 1 : i, 0, surface);
          p.pendingStack = order;
        };
        id.implement({
          set_position: ({ x, y }) => {
            if (link.parent && surface.sub === link) link.parent.pendingPositions.set(surface, { x, y });
          },
          place_above: ({ sibling }) => {
            const ref = reference(sibling, 'place_above');
            if (ref) restack(ref, true);
          },
          place_below: ({ sibling }) => {
            const ref = reference(sibling, 'place_below');
            if (ref) restack(ref, false);
          },
          set_sync: () => {
            if (surface.sub === link) link.sync = true;
          },
          set_desync: () => {
            if (surface.sub !== link || !link.sync) return;
            link.sync = false;
            surface.flushDesynchronized();
          },
        });
      },
    }),
  );
}
