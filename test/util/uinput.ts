/**
 * Virtual input devices for tests (in the vkms VM, as root): `VirtualInput.create()` runs
 * build/test-tools/uinput-inject (test/fixtures/uinput-inject.c, built by `npm run build`), which
 * makes a keyboard, a pointer (relative motion, buttons, wheels) and a multitouch touchscreen
 * through /dev/uinput; each method writes one evdev frame and resolves once it is written.
 *
 * libinput takes only devices udev has initialized (its udev backend enumerates udev's tags and
 * properties; its path backend waits for udev's database entry too). `create()` starts
 * systemd-udevd in the guest when none runs (the rig does not: only tests that need input pay
 * for it, and it stops again with the last VirtualInput closed), then waits until udev has
 * recorded every new device.
 *
 *   const vi = await VirtualInput.create();
 *   await vi.type('hi'); await vi.move(5, -3); await vi.click(BTN_LEFT); await vi.wheel(-1);
 *   await vi.touchDown(0, 0.5, 0.5); await vi.touchUp(0);
 *   await vi.close();
 */
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../src/native.js';
import { until } from './wait.js';

export const BTN_LEFT = 0x110;
export const BTN_RIGHT = 0x111;
export const BTN_MIDDLE = 0x112;
export const KEY_LEFTSHIFT = 42;

export type VirtualDeviceKind = 'keyboard' | 'pointer' | 'touch';

export interface VirtualDevice {
  readonly kind: VirtualDeviceKind;
  /** the input device's sysfs name, e.g. input5 */
  readonly input: string;
  /** its event node, e.g. /dev/input/event3 */
  readonly node: string;
  /** the node's sysname as libinput reports it, e.g. event3 */
  readonly sysname: string;
  /** the node's major:minor */
  readonly devnum: string;
}

export const UINPUT_INJECT = join(packageRoot, 'build', 'test-tools', 'uinput-inject');
const UDEVD = '/lib/systemd/systemd-udevd';
const UDEV_CONTROL = '/run/udev/control';

let udevd: ChildProcess | undefined;
let udevUsers = 0;

/**
 * Starts systemd-udevd for the caller unless one runs already (its control socket exists), and
 * counts the caller as a user: `releaseUdev()` stops the daemon this module started once its last
 * user is done, so the tests that follow run on the rig as it boots (no udevd re-tagging DRM nodes
 * when a test swaps vkms builds). In the rig's chroot `udevadm trigger` is refused, so only
 * devices created after this are tagged: create the virtual devices after it (VirtualInput.create
 * does both).
 */
export async function acquireUdev(): Promise<void> {
  udevUsers++;
  if (udevd || existsSync(UDEV_CONTROL)) return;
  try {
    if (!existsSync(UDEVD)) throw new Error(`${UDEVD} is missing: install Debian's udev package (scripts/vm/config.mjs HOST_PACKAGES)`);
    mkdirSync('/run/udev', { recursive: true });
    // its messages go to the test's stderr (no pipe: the tests count this process's fds)
    const child = spawn(UDEVD, [], { stdio: ['ignore', 'ignore', 'inherit'] });
    let exited = false;
    child.on('exit', () => (exited = true));
    udevd = child;
    if (!(await until(() => existsSync(UDEV_CONTROL) || exited, 30_000, 20)) || exited) {
      udevd = undefined;
      child.kill('SIGKILL');
      throw new Error('systemd-udevd did not start (its messages are on stderr)');
    }
  } catch (err) {
    udevUsers--;
    throw err;
  }
}

/** Done with udev: the daemon acquireUdev started stops with its last user. */
export async function releaseUdev(): Promise<void> {
  if (udevUsers > 0) udevUsers--;
  if (udevUsers > 0 || !udevd) return;
  const child = udevd;
  udevd = undefined;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  if (existsSync(UDEV_CONTROL)) rmSync(UDEV_CONTROL, { force: true }); // a stale socket would read as "running"
}

/** Whether udev has a database entry for the device's event node (/run/udev/data/c<major>:<minor>): it has processed it. */
export function udevInitialized(d: { devnum: string }): boolean {
  return existsSync(`/run/udev/data/c${d.devnum}`);
}

// US layout: character -> [evdev code, shifted]
const US: Record<string, [number, boolean]> = (() => {
  const map: Record<string, [number, boolean]> = {};
  const rows: Array<[string, string, number]> = [
    ['1234567890-=', '!@#$%^&*()_+', 2],
    ['qwertyuiop[]', 'QWERTYUIOP{}', 16],
    ["asdfghjkl;'`", 'ASDFGHJKL:"~', 30],
  ];
  for (const [plain, shifted, first] of rows) {
    [...plain].forEach((c, i) => (map[c] = [first + i, false]));
    [...shifted].forEach((c, i) => (map[c] = [first + i, true]));
  }
  map['\\'] = [43, false];
  map['|'] = [43, true];
  [...'zxcvbnm,./'].forEach((c, i) => (map[c] = [44 + i, false]));
  [...'ZXCVBNM<>?'].forEach((c, i) => (map[c] = [44 + i, true]));
  map[' '] = [57, false];
  map['\n'] = [28, false];
  map['\t'] = [15, false];
  return map;
})();

/** The evdev key code and whether shift is needed for `ch` on a US keyboard. */
export function usKey(ch: string): [number, boolean] {
  const k = US[ch];
  if (!k) throw new Error(`no US key for ${JSON.stringify(ch)}`);
  return k;
}

export class VirtualInput {
  readonly keyboard: VirtualDevice;
  readonly pointer: VirtualDevice;
  readonly touch: VirtualDevice;
  #child: ChildProcessWithoutNullStreams;
  #replies: Array<(line: string) => void> = [];
  #exited: Promise<number | null>;
  #stderr = '';
  #closed = false;

  private constructor(child: ChildProcessWithoutNullStreams, devices: Map<VirtualDeviceKind, VirtualDevice>, lines: AsyncIterator<string>, exited: Promise<number | null>) {
    this.#child = child;
    this.keyboard = devices.get('keyboard')!;
    this.pointer = devices.get('pointer')!;
    this.touch = devices.get('touch')!;
    this.#exited = exited;
    child.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    void (async () => {
      for (;;) {
        const r = await lines.next();
        if (r.done) break;
        this.#replies.shift()?.(r.value);
      }
      for (const waiting of this.#replies.splice(0)) waiting('error uinput-inject exited');
    })();
  }

  /** Starts udevd when needed, creates the three devices and waits until udev has initialized them. */
  static async create(name = 'primebuf-test'): Promise<VirtualInput> {
    if (!existsSync(UINPUT_INJECT)) throw new Error(`${UINPUT_INJECT} is missing: run \`npm run build\``);
    await acquireUdev();
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(UINPUT_INJECT, [name], { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      await releaseUdev();
      throw err;
    }
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const rl = createInterface({ input: child.stdout });
    const lines = rl[Symbol.asyncIterator]();
    const devices = new Map<VirtualDeviceKind, VirtualDevice>();
    for (;;) {
      const r = await lines.next();
      if (r.done) {
        await releaseUdev();
        throw new Error(`uinput-inject exited before it was ready: ${stderr.trim()}`);
      }
      const m = /^device (\w+) (\S+) (\S+)$/.exec(r.value);
      if (m) {
        const kind = m[1] as VirtualDeviceKind;
        const sysname = m[3]!.replace('/dev/input/', '');
        const devnum = readFileSync(`/sys/class/input/${sysname}/dev`, 'utf8').trim();
        devices.set(kind, { kind, input: m[2]!, node: m[3]!, sysname, devnum });
      } else if (r.value === 'ready') {
        break;
      }
    }
    const vi = new VirtualInput(child, devices, lines, exited);
    const list = [...devices.values()];
    if (!(await until(() => list.every(udevInitialized), 30_000, 20))) {
      await vi.close();
      throw new Error(`udev never initialized ${list.filter((d) => !udevInitialized(d)).map((d) => d.node).join(', ')}`);
    }
    return vi;
  }

  /** Sends one command line; resolves on its `ok`. */
  async send(line: string): Promise<void> {
    if (this.#closed) throw new Error('VirtualInput is closed');
    const reply = new Promise<string>((resolve) => this.#replies.push(resolve));
    this.#child.stdin.write(`${line}\n`);
    const r = await reply;
    if (r !== 'ok') throw new Error(`uinput-inject: ${line}: ${r} ${this.#stderr.trim()}`);
  }

  /** A key: pressed (1), released (0), or 2 for a kernel-style repeat. */
  key(code: number, pressed: boolean | 2): Promise<void> {
    return this.send(`key ${code} ${pressed === 2 ? 2 : pressed ? 1 : 0}`);
  }

  /** Types text on a US keyboard: each character pressed and released, with shift around it when needed. */
  async type(text: string): Promise<void> {
    for (const ch of text) {
      const [code, shift] = usKey(ch);
      if (shift) await this.key(KEY_LEFTSHIFT, true);
      await this.key(code, true);
      await this.key(code, false);
      if (shift) await this.key(KEY_LEFTSHIFT, false);
    }
  }

  move(dx: number, dy: number): Promise<void> {
    return this.send(`rel ${Math.trunc(dx)} ${Math.trunc(dy)}`);
  }

  button(code: number, pressed: boolean): Promise<void> {
    return this.send(`btn ${code} ${pressed ? 1 : 0}`);
  }

  async click(button = BTN_LEFT): Promise<void> {
    await this.button(button, true);
    await this.button(button, false);
  }

  /** Vertical wheel clicks (positive: away from the user, i.e. scroll up). */
  wheel(clicks: number): Promise<void> {
    return this.send(`wheel ${Math.trunc(clicks)}`);
  }

  /** Horizontal wheel clicks (positive: right). */
  hwheel(clicks: number): Promise<void> {
    return this.send(`hwheel ${Math.trunc(clicks)}`);
  }

  /** A touch at x, y (fractions 0..1 of the screen). */
  touchDown(slot: number, x: number, y: number): Promise<void> {
    return this.send(`touch down ${slot} ${x} ${y}`);
  }

  touchMove(slot: number, x: number, y: number): Promise<void> {
    return this.send(`touch move ${slot} ${x} ${y}`);
  }

  touchUp(slot: number): Promise<void> {
    return this.send(`touch up ${slot}`);
  }

  /** Destroys one of the devices (it disappears from the system). */
  remove(kind: VirtualDeviceKind): Promise<void> {
    return this.send(`remove ${kind}`);
  }

  /**
   * Destroys every device left, waits for the tool to exit and for udev to have dropped the
   * devices (so a libinput context opened next does not enumerate them). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#child.stdin.end();
      const code = await this.#exited;
      if (code !== 0) throw new Error(`uinput-inject exited with ${code}: ${this.#stderr.trim()}`);
      const gone = (d: VirtualDevice) => !existsSync(`/sys/class/input/${d.input}`) && !udevInitialized(d);
      if (!(await until(() => [this.keyboard, this.pointer, this.touch].every(gone), 30_000, 20))) {
        throw new Error('udev did not drop the virtual devices in 30 s');
      }
    } finally {
      await releaseUdev();
    }
  }
}
