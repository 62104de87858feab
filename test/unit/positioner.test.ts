// The kiosk's popup placement (compositor-example/positioner.ts placePopup) against the text of
// xdg_positioner in protocol/xdg-shell.xml: the anchor point on the anchor rectangle, the gravity,
// the offset (set_offset's own example), and the constraint adjustments in the precedence the
// constraint_adjustment enum gives ("1) Flip, 2) Slide, 3) Resize"), each case worked out by hand
// from the request's description.
import t from 'tap';
import { ADJUST, ANCHOR, GRAVITY, placePopup, unconstrainedPlacement, type PositionerRules } from '../../compositor-example/positioner.js';

/** An output of 1000x800 seen from a parent whose window geometry starts at (0, 0). */
const BOUNDS = { x: 0, y: 0, width: 1000, height: 800 };

function rules(p: Partial<PositionerRules>): PositionerRules {
  return {
    width: 100,
    height: 50,
    anchorRect: { x: 200, y: 300, width: 40, height: 20 },
    anchor: ANCHOR.none,
    gravity: GRAVITY.none,
    constraintAdjustment: ADJUST.none,
    offsetX: 0,
    offsetY: 0,
    reactive: false,
    ...p,
  };
}

t.test('set_offset: anchor point (x, y), gravity bottom|right, offset (ox, oy) gives (x + ox, y + oy)', async (t) => {
  // anchor bottom_right of (200, 300, 40x20) is (240, 320)
  const r = rules({ anchor: ANCHOR.bottom_right, gravity: GRAVITY.bottom_right, offsetX: 7, offsetY: -3 });
  t.same(placePopup(r, BOUNDS), { x: 247, y: 317, width: 100, height: 50 });
});

t.test('set_anchor: a corner anchor is that corner, an edge the middle of it, none the centre', async (t) => {
  const at = (anchor: number): { x: number; y: number } => {
    // gravity bottom_right puts the popup's top-left corner on the anchor point
    const p = unconstrainedPlacement(rules({ anchor, gravity: GRAVITY.bottom_right }));
    return { x: p.x, y: p.y };
  };
  t.same(at(ANCHOR.top_left), { x: 200, y: 300 });
  t.same(at(ANCHOR.top_right), { x: 240, y: 300 });
  t.same(at(ANCHOR.bottom_left), { x: 200, y: 320 });
  t.same(at(ANCHOR.bottom_right), { x: 240, y: 320 });
  t.same(at(ANCHOR.top), { x: 220, y: 300 });
  t.same(at(ANCHOR.bottom), { x: 220, y: 320 });
  t.same(at(ANCHOR.left), { x: 200, y: 310 });
  t.same(at(ANCHOR.right), { x: 240, y: 310 });
  t.same(at(ANCHOR.none), { x: 220, y: 310 });
});

t.test('set_gravity: towards a corner, or centred over the anchor point on an axis without gravity', async (t) => {
  const at = (gravity: number): { x: number; y: number } => {
    // anchor point: the centre of the anchor rectangle, (220, 310); the popup is 100x50
    const p = unconstrainedPlacement(rules({ anchor: ANCHOR.none, gravity }));
    return { x: p.x, y: p.y };
  };
  t.same(at(GRAVITY.bottom_right), { x: 220, y: 310 });
  t.same(at(GRAVITY.top_left), { x: 120, y: 260 });
  t.same(at(GRAVITY.top_right), { x: 220, y: 260 });
  t.same(at(GRAVITY.bottom_left), { x: 120, y: 310 });
  t.same(at(GRAVITY.top), { x: 170, y: 260 });
  t.same(at(GRAVITY.bottom), { x: 170, y: 310 });
  t.same(at(GRAVITY.left), { x: 120, y: 285 });
  t.same(at(GRAVITY.right), { x: 220, y: 285 });
  t.same(at(GRAVITY.none), { x: 170, y: 285 });
});

t.test('constraint adjustment none: a popup outside the bounds stays where the rules put it', async (t) => {
  const r = rules({ anchorRect: { x: 950, y: 780, width: 40, height: 20 }, anchor: ANCHOR.bottom_right, gravity: GRAVITY.bottom_right });
  t.same(placePopup(r, BOUNDS), { x: 990, y: 800, width: 100, height: 50 });
});

t.test('flip_x: the left edge constrained, gravity left and anchor left become right and right', async (t) => {
  // anchor left of (30, 300, 40x20) is (30, 310); gravity left puts the popup at x = -70: constrained
  const r = rules({ anchorRect: { x: 30, y: 300, width: 40, height: 20 }, anchor: ANCHOR.left, gravity: GRAVITY.left, constraintAdjustment: ADJUST.flip_x });
  t.equal(unconstrainedPlacement(r).x, -70, 'unflipped: outside on the left');
  // flipped: anchor right (70), gravity right: x = 70
  t.same(placePopup(r, BOUNDS), { x: 70, y: 285, width: 100, height: 50 });
});

t.test('flip_y: the bottom edge constrained, bottom becomes top; the original anchor rectangle and offset', async (t) => {
  const r = rules({
    anchorRect: { x: 200, y: 760, width: 40, height: 20 },
    anchor: ANCHOR.bottom,
    gravity: GRAVITY.bottom,
    offsetY: 4,
    constraintAdjustment: ADJUST.flip_y,
  });
  t.equal(unconstrainedPlacement(r).y, 784, 'unflipped: 780 + 4, its bottom at 834 > 800');
  // flipped: anchor top (760), gravity top: 760 - 50 = 710, plus the same offset 4
  t.same(placePopup(r, BOUNDS), { x: 170, y: 714, width: 100, height: 50 });
});

t.test('flip: if the flipped position is constrained too, the position before the flip stays', async (t) => {
  // a 600-wide popup right of an anchor in the middle of a 1000-wide output: left of it does not fit either
  const r = rules({ width: 600, anchorRect: { x: 480, y: 300, width: 40, height: 20 }, anchor: ANCHOR.right, gravity: GRAVITY.right, constraintAdjustment: ADJUST.flip_x });
  t.same(placePopup(r, BOUNDS), { x: 520, y: 285, width: 600, height: 50 });
});

t.test('slide_x: towards the gravity until the opposite edge is inside', async (t) => {
  // gravity right, but the popup starts at -30 (anchor left at 20, offset -50): slid right to 0
  const r = rules({ anchorRect: { x: 20, y: 300, width: 40, height: 20 }, anchor: ANCHOR.left, gravity: GRAVITY.right, offsetX: -50, constraintAdjustment: ADJUST.slide_x });
  t.same(placePopup(r, BOUNDS), { x: 0, y: 285, width: 100, height: 50 });
});

t.test('slide_x: then against the gravity until the gravity edge is inside', async (t) => {
  // gravity right from x = 950: its right edge at 1050; slid left to 900
  const r = rules({ anchorRect: { x: 950, y: 300, width: 40, height: 20 }, anchor: ANCHOR.left, gravity: GRAVITY.right, constraintAdjustment: ADJUST.slide_x });
  t.same(placePopup(r, BOUNDS), { x: 900, y: 285, width: 100, height: 50 });
});

t.test('slide_y: a popup with gravity top above the output slides down until its top edge is inside', async (t) => {
  const r = rules({ anchorRect: { x: 200, y: 10, width: 40, height: 20 }, anchor: ANCHOR.top, gravity: GRAVITY.top, constraintAdjustment: ADJUST.slide_y });
  t.equal(unconstrainedPlacement(r).y, -40);
  t.same(placePopup(r, BOUNDS), { x: 170, y: 0, width: 100, height: 50 });
});

t.test('slide: a popup wider than the bounds does not slide past its gravity edge', async (t) => {
  // gravity right, 1200 wide starting at -10: the right edge is already outside, so neither phase moves it
  const r = rules({ width: 1200, anchorRect: { x: -10, y: 300, width: 40, height: 20 }, anchor: ANCHOR.left, gravity: GRAVITY.right, constraintAdjustment: ADJUST.slide_x });
  t.same(placePopup(r, BOUNDS), { x: -10, y: 285, width: 1200, height: 50 });
});

t.test('resize_x/resize_y: cut to the bounds so that it is completely unconstrained', async (t) => {
  const r = rules({ anchorRect: { x: 950, y: 780, width: 40, height: 20 }, anchor: ANCHOR.top_left, gravity: GRAVITY.bottom_right, constraintAdjustment: ADJUST.resize_x | ADJUST.resize_y });
  t.same(placePopup(r, BOUNDS), { x: 950, y: 780, width: 50, height: 20 });
});

t.test('precedence: flip first; slide only when the flip did not help; resize last', async (t) => {
  const all = ADJUST.flip_x | ADJUST.slide_x | ADJUST.resize_x;
  // flip helps: anchor right at 990, gravity right overflows; flipped (anchor left 950, gravity left) at 850
  const flipHelps = rules({ anchorRect: { x: 950, y: 300, width: 40, height: 20 }, anchor: ANCHOR.right, gravity: GRAVITY.right, constraintAdjustment: all });
  t.same(placePopup(flipHelps, BOUNDS), { x: 850, y: 285, width: 100, height: 50 }, 'flipped, not slid');
  // flip does not help (a 600-wide popup), slide moves it in: gravity right at 520 → 400
  const slideHelps = rules({ width: 600, anchorRect: { x: 480, y: 300, width: 40, height: 20 }, anchor: ANCHOR.right, gravity: GRAVITY.right, constraintAdjustment: all });
  t.same(placePopup(slideHelps, BOUNDS), { x: 400, y: 285, width: 600, height: 50 }, 'slid');
  // a 1200-wide popup at 100: no flip fits; slid against its gravity until its left edge meets
  // the output's (x = 0), its right edge still outside; then cut to the output
  const resize = rules({ width: 1200, anchorRect: { x: 100, y: 300, width: 40, height: 20 }, anchor: ANCHOR.left, gravity: GRAVITY.right, constraintAdjustment: all });
  t.same(placePopup(resize, BOUNDS), { x: 0, y: 285, width: 1000, height: 50 }, 'slid, then resized');
  const resizeOnly = rules({ width: 1200, anchorRect: { x: 100, y: 300, width: 40, height: 20 }, anchor: ANCHOR.left, gravity: GRAVITY.right, constraintAdjustment: ADJUST.resize_x });
  t.same(placePopup(resizeOnly, BOUNDS), { x: 100, y: 285, width: 900, height: 50 }, 'resized without a slide');
});

t.test('the bounds are in the parent window geometry coordinates (a parent not at the output origin)', async (t) => {
  // the parent's window geometry starts at (300, 200) on the output: the output is (-300, -200, 1000x800) from it
  const b = { x: -300, y: -200, width: 1000, height: 800 };
  const r = rules({ anchorRect: { x: 650, y: 0, width: 40, height: 20 }, anchor: ANCHOR.bottom_right, gravity: GRAVITY.bottom_right, constraintAdjustment: ADJUST.slide_x });
  // unconstrained at 690..790 in parent coordinates = 990..1090 on the output: slid to 600
  t.same(placePopup(r, b), { x: 600, y: 20, width: 100, height: 50 });
});
