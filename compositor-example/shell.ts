/**
 * The kiosk's stack of toplevels: the most recently mapped one is shown fullscreen; when it goes
 * away the one mapped before it returns; with none the screen is black. The kiosk's frame loop
 * asks `top` what to show and hears through `onChange` that the answer changed.
 */
import type { Toplevel, XdgShellListener } from './xdg-shell.js';

export class Shell implements XdgShellListener {
  readonly #stack: Toplevel[] = [];
  readonly #onChange: (top: Toplevel | undefined) => void;

  constructor(onChange: (top: Toplevel | undefined) => void) {
    this.#onChange = onChange;
  }

  /** The toplevel on screen, if any. */
  get top(): Toplevel | undefined {
    return this.#stack[this.#stack.length - 1];
  }

  /** Mapped toplevels, bottom first. */
  get stack(): readonly Toplevel[] {
    return [...this.#stack];
  }

  mapped(t: Toplevel): void {
    const i = this.#stack.indexOf(t);
    if (i >= 0) this.#stack.splice(i, 1);
    this.#stack.push(t);
    this.#onChange(this.top);
  }

  unmapped(t: Toplevel): void {
    const i = this.#stack.indexOf(t);
    if (i < 0) return;
    const wasTop = i === this.#stack.length - 1;
    this.#stack.splice(i, 1);
    if (wasTop) this.#onChange(this.top);
  }
}
