// The package's face: the root ('primebuf') stays small, and every subpath package.json
// "exports" names resolves by name, to built files, with the names its area is known by.
// Imported by package name (the package's self-reference), as an embedder imports them.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native.js';

/** The root's budget of runtime values (types are not counted: they have no runtime trace). */
const ROOT_MAX_VALUES = 40;

const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types?: string; default?: string }>;
};

/** A few names each module is known by (the README's Public API section lists them all). */
const expected: Record<string, readonly string[]> = {
  primebuf: ['Device', 'WaylandServer', 'LinuxDmabuf', 'installShm', 'Presenter', 'CameraSource', 'fourcc', 'FormatSet', 'PrimebufError', 'SystemError'],
  'primebuf/kms': ['Device', 'Framebuffer', 'AtomicRequest', 'PropertyBlob', 'DrmEventDispatcher', 'addWriteback'],
  'primebuf/formats': ['fourcc', 'formatInfo', 'modifierName', 'FormatSet', 'DRM_FORMAT_MOD_LINEAR'],
  'primebuf/dmabuf': ['Dmabuf', 'Mapping', 'SyncFile', 'OwnedFd', 'DmabufAttributes', 'PrimeImporter'],
  'primebuf/constraints': ['scanoutConstraint', 'merge', 'solve', 'ConstraintSet', 'ConstraintConflictError', 'describeKmsDevice'],
  'primebuf/alloc': ['BufferRequest', 'AllocatorPool', 'DumbBuffer', 'UdmabufAllocator', 'openSystemAllocators'],
  'primebuf/scanout': ['Presenter', 'ScanoutChecker', 'CopyRing', 'copyRects', 'assignPlanes', 'resolvePlacement', 'composeLayers'],
  'primebuf/wayland': ['WaylandServer', 'LinuxDmabuf', 'installShm', 'ShmBuffer', 'WaylandConnection', 'ProtocolError'],
  'primebuf/client': ['ClientDmabuf', 'BufferRing', 'pickFormat', 'clientAllocators'],
  'primebuf/v4l2': ['V4l2Device', 'CaptureStream', 'CameraSource', 'OutputStream'],
  'primebuf/input': ['openInput', 'KeyState', 'KeymapError', 'InputError', 'KEY', 'BTN'],
  'primebuf/session': ['openSession', 'sessionOpener', 'SessionError'],
};

const specs = Object.entries(pkg.exports)
  .filter(([key, target]) => typeof target === 'object' && key !== './package.json')
  .map(([key, target]) => ({ spec: key === '.' ? 'primebuf' : `primebuf/${key.slice(2)}`, target: target as { types?: string; default?: string } }));

t.test(`the package root exports at most ${ROOT_MAX_VALUES} runtime values`, async (t) => {
  const root = (await import('primebuf')) as Record<string, unknown>;
  const values = Object.keys(root);
  t.ok(values.length > 0, 'the root exports values');
  t.ok(values.length <= ROOT_MAX_VALUES, `${values.length} runtime values: ${values.sort().join(', ')}`);
});

t.test('package.json exports the root and each area, every entry with built types and code', async (t) => {
  t.same(
    specs.map((s) => s.spec).sort(),
    Object.keys(expected).sort(),
    'the subpaths this test knows are those package.json exports (a new one is added to both)',
  );
  for (const { spec, target } of specs) {
    t.match(target.types, /^\.\/dist\/src\/.*\.d\.ts$/, `${spec}: "types" points into dist/src`);
    t.match(target.default, /^\.\/dist\/src\/.*\.js$/, `${spec}: "default" points into dist/src`);
    t.ok(target.types && existsSync(join(packageRoot, target.types)), `${spec}: ${target.types} was built`);
    t.ok(target.default && existsSync(join(packageRoot, target.default)), `${spec}: ${target.default} was built`);
  }
});

t.test('every subpath resolves by name and exports what its area is known by', async (t) => {
  for (const { spec } of specs) {
    const mod = (await import(spec)) as Record<string, unknown>;
    const missing = (expected[spec] ?? []).filter((n) => mod[n] === undefined);
    t.same(missing, [], `${spec} resolves and exports ${(expected[spec] ?? []).join(', ')}`);
  }
});

t.test("a root value is its area's own object, not a copy", async (t) => {
  const root = (await import('primebuf')) as Record<string, unknown>;
  const areas = await Promise.all(specs.filter((s) => s.spec !== 'primebuf').map(async (s) => [s.spec, (await import(s.spec)) as Record<string, unknown>] as const));
  // The errors and Resource belong to no area: the root is their home.
  const rootOwn = new Set(['PrimebufError', 'SystemError', 'ClosedError', 'InvalidArgumentError', 'NativeUnavailableError', 'Resource']);
  const homeless: string[] = [];
  for (const [name, value] of Object.entries(root)) {
    if (rootOwn.has(name)) continue;
    const homes = areas.filter(([, mod]) => name in mod);
    if (homes.length === 0) homeless.push(name);
    for (const [spec, mod] of homes) t.equal(mod[name], value, `${name}: the same object from 'primebuf' and '${spec}'`);
  }
  t.same(homeless, [], 'root values exported by no subpath');
});
