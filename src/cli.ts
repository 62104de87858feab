#!/usr/bin/env node
/**
 * The `primebuf` command. Each subcommand lives in src/cli/<name>.ts and exports
 * `run(argv): Promise<number>` (the exit status) and is loaded only when used, so that
 * `primebuf formats` does not open DRM devices or start a Wayland display.
 */
import { PrimebufError } from './errors.js';

interface Command {
  summary: string;
  load: () => Promise<{ run(argv: string[]): Promise<number> }>;
}

const commands: Record<string, Command> = {
  formats: { summary: 'the DRM pixel format table (planes, block sizes, subsampling, alpha, YUV)', load: () => import('./cli/formats.js') },
  modifier: { summary: 'decode a DRM format modifier (vendor, name, fields)', load: () => import('./cli/modifier.js') },
  serve: { summary: 'a Wayland server with linux-dmabuf v5 that imports and logs every client buffer', load: () => import('./cli/serve.js') },
  solve: { summary: 'merge device constraints, solve for a size and formats, pick an allocator (dry run)', load: () => import('./cli/solve.js') },
  explain: { summary: 'would this buffer scan out on this plane? the verdict with every reason (allocates a test buffer)', load: () => import('./cli/explain.js') },
  devices: { summary: 'DRM devices: caps, planes (formats x modifiers), CRTCs, connectors', load: () => import('./cli/devices.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length), 4);
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return ['usage: primebuf <command> [options]', '', 'commands:', ...lines, '', 'primebuf <command> --help for its options'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`primebuf: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof PrimebufError) {
      console.error(`primebuf: ${err.message}`);
    } else {
      console.error(err);
    }
    process.exitCode = 1;
  },
);
