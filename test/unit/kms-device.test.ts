// Host tests of the DRM device layer (this host has no /dev/dri): dev_t arithmetic, discovery
// over a fixture sysfs tree (PCI, platform with and without device tree, overrides), and the
// typed failures of Device.open that must leak no fd.
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import { SystemError } from '../../src/errors.js';
import { Device, describeNode, listDevices } from '../../src/kms/index.js';
import { devMajor, devMinor, makeDev } from '../../src/kms/discovery.js';
import { testNative } from '../../src/native.js';

t.test('dev_t encoding matches the kernel/glibc layout', async (t) => {
  const rdev = statSync('/dev/null', { bigint: true }).rdev;
  t.equal(devMajor(rdev), 1);
  t.equal(devMinor(rdev), 3);
  t.equal(makeDev(226, 0), 0xe200n);
  t.equal(makeDev(226, 128), 0xe280n);
  // large numbers use the high bits
  const big = makeDev(0x12345, 0x6789a);
  t.equal(devMajor(big), 0x12345);
  t.equal(devMinor(big), 0x6789a);
});

function fixtureTree(t: { teardown(fn: () => void): void }): { root: string; sys: string; dev: string } {
  const root = mkdtempSync(join(tmpdir(), 'primebuf-sysfs-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const sys = join(root, 'sys');
  const dev = join(root, 'dev');
  mkdirSync(dev, { recursive: true });
  // A PCI GPU with card1 + renderD128.
  const pci = join(sys, 'devices', 'pci0000:00', '0000:00:02.0');
  mkdirSync(join(pci, 'drm', 'card1'), { recursive: true });
  mkdirSync(join(pci, 'drm', 'renderD128'), { recursive: true });
  mkdirSync(join(sys, 'bus', 'pci', 'drivers', 'i915'), { recursive: true });
  symlinkSync(join(sys, 'bus', 'pci'), join(pci, 'subsystem'));
  symlinkSync(join(sys, 'bus', 'pci', 'drivers', 'i915'), join(pci, 'driver'));
  writeFileSync(join(pci, 'vendor'), '0x8086\n');
  writeFileSync(join(pci, 'device'), '0x9a49\n');
  writeFileSync(join(pci, 'subsystem_vendor'), '0x1028\n');
  writeFileSync(join(pci, 'subsystem_device'), '0x0a21\n');
  writeFileSync(join(pci, 'revision'), '0x01\n');
  writeFileSync(join(pci, 'uevent'), 'DRIVER=i915\nPCI_SLOT_NAME=0000:00:02.0\n');
  // A platform display controller with a device-tree node whose parent bus is dma-coherent.
  const dt = join(sys, 'firmware', 'devicetree', 'base', 'soc', 'display@fd4a0000');
  mkdirSync(dt, { recursive: true });
  writeFileSync(join(dt, 'compatible'), 'xlnx,zynqmp-dpsub-1.7\0xlnx,dpsub\0');
  writeFileSync(join(dt, 'name'), 'display');
  writeFileSync(join(dirname(dt), 'name'), 'soc');
  writeFileSync(join(dirname(dt), 'dma-coherent'), '');
  const plat = join(sys, 'devices', 'platform', 'fd4a0000.display');
  mkdirSync(join(plat, 'drm', 'card0'), { recursive: true });
  mkdirSync(join(sys, 'bus', 'platform', 'drivers', 'zynqmp-dpsub'), { recursive: true });
  symlinkSync(join(sys, 'bus', 'platform'), join(plat, 'subsystem'));
  symlinkSync(join(sys, 'bus', 'platform', 'drivers', 'zynqmp-dpsub'), join(plat, 'driver'));
  symlinkSync(dt, join(plat, 'of_node'));
  // A virtual platform device without device tree (vkms).
  const vkms = join(sys, 'devices', 'platform', 'vkms');
  mkdirSync(join(vkms, 'drm', 'card2'), { recursive: true });
  mkdirSync(join(sys, 'bus', 'platform', 'drivers', 'vkms'), { recursive: true });
  symlinkSync(join(sys, 'bus', 'platform'), join(vkms, 'subsystem'));
  symlinkSync(join(sys, 'bus', 'platform', 'drivers', 'vkms'), join(vkms, 'driver'));
  // /sys/dev/char links
  mkdirSync(join(sys, 'dev', 'char'), { recursive: true });
  const link = (mm: string, target: string): void => {
    mkdirSync(join(sys, 'dev', 'char', mm), { recursive: true });
    symlinkSync(target, join(sys, 'dev', 'char', mm, 'device'));
  };
  link('226:0', plat);
  link('226:1', pci);
  link('226:128', pci);
  link('226:2', vkms);
  link('1:3', vkms); // /dev/null stands in for a char device node below
  return { root, sys, dev };
}



t.test('describeNode: a PCI device pairs its primary and render nodes', async (t) => {
  const { sys } = fixtureTree(t);
  const card = describeNode('/dev/dri/card1', makeDev(226, 1), { sysRoot: sys, envOverride: '' });
  t.equal(card.nodeType, 'primary');
  t.equal(card.driver, 'i915');
  t.equal(card.primaryNode, '/dev/dri/card1');
  t.equal(card.renderNode, '/dev/dri/renderD128');
  t.same(card.siblings, ['/dev/dri/renderD128']);
  t.same(card.bus, {
    type: 'pci',
    slot: '0000:00:02.0',
    vendorId: 0x8086,
    deviceId: 0x9a49,
    subsystemVendorId: 0x1028,
    subsystemDeviceId: 0x0a21,
    revision: 1,
  });
  t.equal(card.coherent, true);
  t.equal(card.coherentSource, 'pci');
  const render = describeNode('/dev/dri/renderD128', makeDev(226, 128), { sysRoot: sys, envOverride: '' });
  t.equal(render.nodeType, 'render');
  t.equal(render.primaryNode, '/dev/dri/card1');
  t.same(render.siblings, ['/dev/dri/card1']);
  t.equal(render.devId, makeDev(226, 128));
});

t.test('describeNode: device-tree dma-coherent is found on a parent bus node', async (t) => {
  const { sys } = fixtureTree(t);
  const d = describeNode('/dev/dri/card0', makeDev(226, 0), { sysRoot: sys, arch: 'arm64', envOverride: '' });
  t.equal(d.driver, 'zynqmp-dpsub');
  t.same(d.bus, { type: 'platform', name: 'fd4a0000.display', compatible: ['xlnx,zynqmp-dpsub-1.7', 'xlnx,dpsub'] });
  t.equal(d.renderNode, null);
  t.equal(d.coherent, true);
  t.equal(d.coherentSource, 'of_node');
  rmSync(join(sys, 'firmware', 'devicetree', 'base', 'soc', 'dma-coherent'));
  const nc = describeNode('/dev/dri/card0', makeDev(226, 0), { sysRoot: sys, arch: 'arm64', envOverride: '' });
  t.equal(nc.coherent, false, 'without the property the device is not coherent');
  t.equal(nc.coherentSource, 'of_node');
});

t.test('describeNode: no device tree -> architecture decides; overrides win', async (t) => {
  const { sys } = fixtureTree(t);
  const x86 = describeNode('/dev/dri/card2', makeDev(226, 2), { sysRoot: sys, arch: 'x64', envOverride: '' });
  t.equal(x86.coherent, true);
  t.equal(x86.coherentSource, 'arch');
  t.same(x86.bus, { type: 'platform', name: 'vkms', compatible: [] });
  const arm = describeNode('/dev/dri/card2', makeDev(226, 2), { sysRoot: sys, arch: 'arm64', envOverride: '' });
  t.equal(arm.coherent, false);
  t.equal(arm.coherentSource, 'default');
  const o1 = describeNode('/dev/dri/card2', makeDev(226, 2), { sysRoot: sys, coherent: { card2: false } });
  t.equal(o1.coherent, false);
  t.equal(o1.coherentSource, 'override');
  const o2 = describeNode('/dev/dri/card1', makeDev(226, 1), { sysRoot: sys, envOverride: 'card1=0,card2=1' });
  t.equal(o2.coherent, false);
  t.equal(o2.coherentSource, 'override');
  const o3 = describeNode('/dev/dri/card1', makeDev(226, 1), { sysRoot: sys, envOverride: '0' });
  t.equal(o3.coherent, false);
});

t.test('describeNode: a node without sysfs entry still has its dev_t and type', async (t) => {
  const d = describeNode('/dev/dri/renderD129', makeDev(226, 129), { sysRoot: '/nonexistent', envOverride: '' });
  t.equal(d.nodeType, 'render');
  t.equal(d.major, 226);
  t.equal(d.minor, 129);
  t.equal(d.driver, null);
  t.equal(d.bus, null);
  t.equal(d.renderNode, '/dev/dri/renderD129');
});

t.test('listDevices lists character-device nodes only, sorted, and [] without /dev/dri', async (t) => {
  const { sys, dev } = fixtureTree(t);
  symlinkSync('/dev/null', join(dev, 'card2'));
  writeFileSync(join(dev, 'card9'), 'not a device');
  writeFileSync(join(dev, 'by-path'), '');
  const list = listDevices({ devDir: dev, sysRoot: sys, envOverride: '' });
  t.equal(list.length, 1);
  t.equal(list[0]!.name, 'card2');
  t.equal(list[0]!.devId, statSync('/dev/null', { bigint: true }).rdev);
  t.equal(list[0]!.driver, 'vkms');
  t.same(listDevices({ devDir: join(dev, 'missing') }), []);
});

t.test('Device.open failures are typed SystemErrors and leak no fd', async (t) => {
  const base = testNative.countOpenFds();
  const e1 = t.throws(() => Device.open('/nonexistent/card0')) as SystemError;
  t.ok(e1 instanceof SystemError);
  t.equal(e1.code, 'ENOENT');
  t.equal(e1.syscall, 'open');
  t.match(e1.message, /nonexistent\/card0/);
  // /dev/null opens, but it is no DRM device: the version ioctl fails and the fd is closed.
  const e2 = t.throws(() => Device.open('/dev/null')) as SystemError;
  t.ok(e2 instanceof SystemError);
  t.equal(e2.syscall, 'DRM_IOCTL_VERSION');
  t.equal(e2.code, 'ENOTTY');
  t.equal(testNative.countOpenFds(), base);
});
