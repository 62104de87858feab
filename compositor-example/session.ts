/**
 * How the kiosk gets its display device (--session auto|libseat|direct): through a libseat session
 * (seatd or logind: no root needed, DRM master dropped and taken back when the session is switched
 * away and back) or by opening the node itself (root). `auto` takes libseat when a seat manager
 * answers, else opens directly when the kiosk runs as root; when neither works the error names
 * both ways.
 *
 * While the session is disabled the kiosk presents nothing (no commit: the device is not its
 * own); it keeps every framebuffer and buffer (the kernel keeps them with the fd, only master is
 * revoked), lets the frame in flight end, then acknowledges. On enable it takes the output back
 * with a full commit (the modeset again) of what it showed.
 */
import { Device } from 'primebuf';
import { SessionError, openSession, type Session, type SessionOptions } from 'primebuf/session';

export type SessionMode = 'auto' | 'libseat' | 'direct';

export const SESSION_MODES: readonly SessionMode[] = ['auto', 'libseat', 'direct'];

/** How the kiosk opens device nodes, and the session it holds (none when direct). */
export interface DeviceAccess {
  readonly via: 'libseat' | 'direct';
  readonly session: Session | undefined;
  /** e.g. "libseat (seatd), seat seat0" or "direct (root)" */
  readonly description: string;
  /** Opens a DRM node: through the session (the Device releases it through the session), or open(2). */
  open(path: string): Device;
  /** Closes the session (after every device it opened was closed); idempotent. */
  close(): void;
}

/** Neither libseat nor a direct open can give the kiosk its device: the message says how to fix it. */
export class SessionUnavailableError extends Error {
  override name = 'SessionUnavailableError';
  constructor(
    message: string,
    readonly mode: SessionMode,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** The two ways, for error messages. */
export const HOW_TO_GET_A_SEAT =
  'either run a seat manager the kiosk\'s user may use (seatd as root, e.g. `seatd -g video` with the user in group video, ' +
  'or systemd-logind with a login session of that user on the seat: see compositor-example/primebuf-kiosk.service), ' +
  'or run the kiosk as root (--session direct)';

export interface OpenAccessOptions {
  readonly log?: (line: string) => void;
  /** (tests) instead of primebuf/session's openSession */
  readonly openSession?: (opts: SessionOptions) => Session;
  /** (tests) instead of process.geteuid() */
  readonly euid?: number;
  /** how long a new session may take to become active (default 10 s) */
  readonly activeTimeoutMs?: number;
}

function direct(): DeviceAccess {
  return { via: 'direct', session: undefined, description: 'direct (root)', open: (p) => Device.open(p), close: () => undefined };
}

function through(session: Session): DeviceAccess {
  return {
    via: 'libseat',
    session,
    description: `libseat (${session.backend}), seat ${session.seatName}`,
    open(path: string): Device {
      const dev = session.openDevice(path);
      return Device.fromFd(dev.fd, path, () => session.closeDevice(dev));
    },
    close: () => session.close(),
  };
}

function why(err: unknown): string {
  if (err instanceof SessionError && err.attempts.length > 0) return err.attempts.map((a) => `${a.backend}: ${a.code}: ${a.message}`).join('; ');
  return err instanceof Error ? err.message : String(err);
}

/** The kiosk's way to its devices for `mode` (see the file's comment). */
export async function openDeviceAccess(mode: SessionMode, opts: OpenAccessOptions = {}): Promise<DeviceAccess> {
  const log = opts.log ?? (() => undefined);
  const euid = opts.euid ?? process.geteuid?.() ?? -1;
  if (mode === 'direct') return direct();
  const open = opts.openSession ?? openSession;
  let session: Session;
  try {
    session = open({ log: (l) => log(`session: ${l}`) });
  } catch (err) {
    if (mode === 'auto' && euid === 0) {
      log(`session: no libseat seat manager (${why(err)}): opening devices directly as root`);
      return direct();
    }
    const whoAmI = euid === 0 ? '' : ` and the kiosk is not root (uid ${euid})`;
    throw new SessionUnavailableError(`cannot open the display: no libseat seat manager answered (${why(err)})${mode === 'auto' ? whoAmI : ''}; ${HOW_TO_GET_A_SEAT}`, mode, err);
  }
  try {
    await session.whenActive(opts.activeTimeoutMs);
  } catch (err) {
    session.close();
    throw new SessionUnavailableError(`cannot open the display: the libseat session (${session.backend}) did not become active (${why(err)}); ${HOW_TO_GET_A_SEAT}`, mode, err);
  }
  return through(session);
}

/** What the kiosk does when its session is switched away and back (kiosk.ts implements it). */
export interface PauseTarget {
  /** Stop presenting; resolves when no frame is in flight any more. */
  pause(): Promise<void>;
  /** Take the output back: a full commit (with the modeset) of what was shown, then frames again. */
  resume(): Promise<void>;
  readonly log: (line: string) => void;
}

/**
 * Follows a session's disable/enable: on disable pause() (within `ackTimeoutMs`, default 1 s,
 * so a frame that never flips cannot hold the seat manager), then ackDisable(); on enable,
 * resume(). Steps run in order (an enable that comes while the pause is still settling resumes
 * after it).
 */
export function followSession(session: Session, target: PauseTarget, ackTimeoutMs = 1000): void {
  let chain: Promise<void> = Promise.resolve();
  const step = (fn: () => Promise<void>): void => {
    chain = chain.then(fn).catch((err: unknown) => target.log(`session: ${err instanceof Error ? err.message : String(err)}`));
  };
  session.onDisable(() => {
    target.log('session disabled (switched away): presenting stops, DRM master goes to the next session');
    step(async () => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ackTimeoutMs)));
      try {
        await Promise.race([target.pause(), late]);
      } finally {
        clearTimeout(timer);
        session.ackDisable();
      }
    });
  });
  session.onEnable(() => {
    target.log('session enabled: taking the output back');
    step(() => target.resume());
  });
  session.onError((err) => target.log(`session: the seat's connection failed (${err.message}); the devices stay as they are`));
}
