/**
 * The kiosk's command line, like cage:
 *   npm run kiosk -- [--device /dev/dri/cardN] [--connector NAME] [--socket NAME]
 *                    [--transform 0|90|180|270] [--stats FILE] [--force-copy] [--no-zero-copy]
 *                    [--camera /dev/videoN] [--hide-cursor] [--keymap LAYOUT[,VARIANT]]
 *                    [--quit-key KEYSPEC] [--no-input] [--session auto|libseat|direct]
 *                    [--no-direct-lane]
 *                    [-- COMMAND ARGS...]
 * Prints the socket it listens on. With a command it starts it with WAYLAND_DISPLAY set and exits
 * with its exit code when it ends; without one it runs until SIGINT or SIGTERM (exit 0); the
 * quit key ends it like SIGTERM. Every
 * kernel resource is released before it exits; --stats writes the stats JSON then.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { parseKeySpec, parseKeymapOption } from './input.js';
import { startKiosk, type Kiosk } from './kiosk.js';
import type { OutputTransform } from './output.js';
import { SESSION_MODES, type SessionMode } from './session.js';

const HELP = `usage: npm run kiosk -- [options] [-- COMMAND ARGS...]

A kiosk Wayland compositor on primebuf: the most recently mapped toplevel fullscreen on the
first connected connector of the first KMS device, client buffers on a plane when the kernel
takes them, copied otherwise.

  --device PATH      DRM device (default: the first primary node with KMS planes)
  --connector NAME   connector, e.g. Virtual-1 (default: the first connected one)
  --socket NAME      socket name in $XDG_RUNTIME_DIR (default: the first free wayland-N)
  --transform T      output transform: 0, 90, 180 or 270 degrees counter-clockwise
  --stats FILE       write the stats JSON to FILE on exit
  --force-copy       copy every frame (what could go on a plane too)
  --no-zero-copy     copy every wl_shm buffer (no udmabuf scanout; the benchmark's baseline)
  --no-direct-lane   every frame through JavaScript (by default a surface alone on a plane has
                     its steady-state frames run in the addon: primebuf/wayland DirectLane)
  --camera DEV       show a V4L2 camera (e.g. /dev/video0) fullscreen, centred at the largest
                     size it offers that fits the mode; a client toplevel is shown instead while
                     one is mapped
  --hide-cursor      no default cursor (without input, an arrow at the centre of the output)
  --keymap L[,V]     keyboard layout and variant, e.g. de or us,dvorak (default: the
                     XKB_DEFAULT_LAYOUT/VARIANT/MODEL/OPTIONS/RULES variables, else xkb's)
  --quit-key KEYS    a key the kiosk keeps to quit, e.g. ctrl+alt+BackSpace (modifiers shift,
                     ctrl, alt, super; a keysym name); the client never sees it (default: none)
  --no-input         run without input devices (a seat without capabilities)
  --session MODE     how the display device is opened: libseat (through seatd or logind, no
                     root needed), direct (open(2), as root), or auto (default: libseat when a
                     seat manager answers, else direct when root)
  --help             this text`;

function replacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

async function main(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const command = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values } = parseArgs({
    args: own,
    options: {
      device: { type: 'string' },
      connector: { type: 'string' },
      socket: { type: 'string' },
      transform: { type: 'string', default: '0' },
      stats: { type: 'string' },
      'force-copy': { type: 'boolean', default: false },
      'no-zero-copy': { type: 'boolean', default: false },
      'no-direct-lane': { type: 'boolean', default: false },
      camera: { type: 'string' },
      'hide-cursor': { type: 'boolean', default: false },
      keymap: { type: 'string' },
      'quit-key': { type: 'string' },
      'no-input': { type: 'boolean', default: false },
      session: { type: 'string', default: 'auto' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const transform = Number(values.transform);
  if (![0, 90, 180, 270].includes(transform)) {
    console.error(`kiosk: --transform ${values.transform}: expected 0, 90, 180 or 270`);
    return 2;
  }
  if (!SESSION_MODES.includes(values.session as SessionMode)) {
    console.error(`kiosk: --session ${values.session}: expected ${SESSION_MODES.join(', ')}`);
    return 2;
  }
  if (!process.env.XDG_RUNTIME_DIR) {
    console.error('kiosk: XDG_RUNTIME_DIR is not set (the socket lives there)');
    return 1;
  }
  let keymap: ReturnType<typeof parseKeymapOption>;
  try {
    keymap = parseKeymapOption(values.keymap);
    if (values['quit-key'] !== undefined) parseKeySpec(values['quit-key']);
  } catch (err) {
    console.error(`kiosk: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  const log = (line: string): void => console.log(`kiosk: ${line}`);
  let quit: (() => void) | undefined;
  let kiosk: Kiosk;
  try {
    kiosk = await startKiosk({
      ...(values.device ? { device: values.device } : {}),
      ...(values.connector ? { connector: values.connector } : {}),
      ...(values.socket ? { socket: values.socket } : {}),
      transform: transform as OutputTransform,
      forceCopy: values['force-copy'],
      shmZeroCopy: !values['no-zero-copy'],
      ...(values['no-direct-lane'] ? { directLane: false } : {}),
      ...(values.camera ? { camera: values.camera } : {}),
      hideCursor: values['hide-cursor'],
      ...(values['no-input'] ? { input: false as const } : {}),
      ...(keymap ? { keymap } : {}),
      ...(values['quit-key'] !== undefined ? { quitKey: values['quit-key'] } : {}),
      onQuit: () => quit?.(),
      session: values.session as SessionMode,
      log,
    });
  } catch (err) {
    console.error(`kiosk: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  console.log(`WAYLAND_DISPLAY=${kiosk.socket}`);

  let child: ReturnType<typeof spawn> | undefined;
  const code = await new Promise<number>((resolve) => {
    const signalled = (sig: NodeJS.Signals): void => {
      log(`${sig}: closing`);
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); // the command goes with the kiosk
      resolve(0);
    };
    quit = (): void => {
      log('quit key: closing');
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      resolve(0);
    };
    process.once('SIGINT', signalled);
    process.once('SIGTERM', signalled);
    if (command.length > 0) {
      child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, WAYLAND_DISPLAY: kiosk.socket } });
      child.on('error', (err) => {
        console.error(`kiosk: ${command[0]}: ${err.message}`);
        resolve(127);
      });
      child.on('exit', (c, sig) => {
        log(`${command[0]} exited with ${c ?? sig}`);
        resolve(c ?? 128 + (sig ? constants.signals[sig] : 0));
      });
    }
  });
  if (values.stats) writeFileSync(values.stats, JSON.stringify(kiosk.stats(), replacer, 2) + '\n');
  await kiosk.close();
  return code;
}


main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error('kiosk:', err);
    process.exitCode = 1;
  },
);
