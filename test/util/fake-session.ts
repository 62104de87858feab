/**
 * A Session (primebuf/session's shape) without libseat, for unit tests of what a compositor does
 * with one: disable/enable fired by the test, acks and device opens counted.
 */
import type { Session, SessionDevice } from '../../src/session/index.js';

export class FakeSession implements Session {
  readonly seatName = 'seat0';
  readonly backend = 'fake';
  active = true;
  closed = false;
  acks = 0;
  switches: number[] = [];
  opened: SessionDevice[] = [];
  closedDevices: SessionDevice[] = [];
  #nextFd = 100;
  #disable: Array<() => void> = [];
  #enable: Array<() => void> = [];
  #error: Array<(e: Error) => void> = [];
  #activeWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  openDevice(path: string): SessionDevice {
    if (this.closed) throw new Error('closed');
    const d = { id: this.opened.length + 1, path, fd: this.#nextFd++ };
    this.opened.push(d);
    return d;
  }
  closeDevice(dev: SessionDevice): void {
    this.closedDevices.push(dev);
  }
  onDisable(fn: () => void): void {
    this.#disable.push(fn);
  }
  onEnable(fn: () => void): void {
    this.#enable.push(fn);
  }
  onError(fn: (e: Error) => void): void {
    this.#error.push(fn);
  }
  ackDisable(): void {
    this.acks++;
  }
  switchSession(n: number): void {
    this.switches.push(n);
  }
  whenActive(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('closed'));
    if (this.active) return Promise.resolve();
    return new Promise((resolve, reject) => this.#activeWaiters.push({ resolve, reject }));
  }
  close(): void {
    this.closed = true;
    for (const w of this.#activeWaiters.splice(0)) w.reject(new Error('closed'));
  }
  /** the seat manager switched the session away */
  disable(): void {
    this.active = false;
    for (const fn of this.#disable) fn();
  }
  /** the session is back */
  enable(): void {
    this.active = true;
    for (const w of this.#activeWaiters.splice(0)) w.resolve();
    for (const fn of this.#enable) fn();
  }
  fail(e: Error): void {
    for (const fn of this.#error) fn(e);
  }
}
