// Conformance: an embedder makes scanout buffers from the public API alone (everything below
// comes from the package root and its subpath exports, imported by name as an embedder does).
// Each allocator (dumb, dma-heap, udmabuf, GBM; then the same through the allocator pool) gives
// a buffer with a pitch, a counted GEM handle on the KMS device, a dma-buf and a CPU mapping;
// the CPU's pixels are seen through the other path, and vkms takes the buffer as a framebuffer.
// Nothing leaks.
import t from 'tap';
import { Device, fourcc, listDevices, DRM_FORMAT_MOD_LINEAR } from 'primebuf';
import {
  AllocatorPool,
  BufferRequest,
  DmaHeap,
  DumbBuffer,
  GbmDevice,
  GBM_BO_USE_LINEAR,
  GBM_BO_USE_SCANOUT,
  UdmabufAllocator,
  openSystemAllocators,
} from 'primebuf/alloc';
import { cpuConstraint, describeKmsDevice, scanoutConstraint } from 'primebuf/constraints';
import { OwnedFd, type Dmabuf } from 'primebuf/dmabuf';
import { Framebuffer, type GemHandle } from 'primebuf/kms';
import { leakFree } from './leak.js';

const XR24 = fourcc('XRGB8888');
const W = 256;
const H = 128;

/** The vkms primary node, found and opened through the public API (fails when missing). */
function openVkms(): Device {
  for (const info of listDevices()) {
    if (info.nodeType !== 'primary') continue;
    const d = Device.open(info.path);
    if (d.version.name === 'vkms') return d;
    d.close();
  }
  throw new Error('no vkms primary node');
}

/** AddFB2 of a W x H XRGB8888 LINEAR buffer: vkms takes it for scanout. */
function addFb(card: Device, handle: GemHandle, pitch: number, offset = 0): number {
  const fb = Framebuffer.create(card, { width: W, height: H, format: XR24, modifier: DRM_FORMAT_MOD_LINEAR, planes: [{ handle, pitch, offset }] });
  const id = fb.id;
  fb.close();
  return id;
}

/** Writes a pattern through `write` and reads it back through the dma-buf's own mapping. */
function sameMemory(write: Uint8Array, dmabuf: Dmabuf): boolean {
  for (let i = 0; i < 64; i++) write[i] = (i * 7 + 3) & 0xff;
  const m = dmabuf.map({ writable: false, length: 64 });
  try {
    const r = m.bytes();
    return r.every((v, i) => v === ((i * 7 + 3) & 0xff));
  } finally {
    m.close();
  }
}

leakFree(t, 'the KMS device description scanoutConstraint needs, from an open Device', async (t) => {
  const card = openVkms();
  const desc = describeKmsDevice(card);
  t.equal(desc.driver, 'vkms');
  t.ok(desc.planes.some((p) => p.type === 'primary' && p.formats.has(XR24, DRM_FORMAT_MOD_LINEAR)), 'a primary plane takes XRGB8888 LINEAR');
  const c = scanoutConstraint(desc);
  t.equal(c.device, card.name);
  t.ok(c.formats!.has(XR24, DRM_FORMAT_MOD_LINEAR), 'the scanout constraint accepts XRGB8888 LINEAR');
  card.close();
});

leakFree(t, 'dumb buffer: pitch, counted GEM handle, dma-buf, CPU mapping, framebuffer', async (t) => {
  const card = openVkms();
  const dumb = DumbBuffer.create(card, { width: W, height: H, bpp: 32 });
  t.ok(dumb.pitch >= W * 4, `pitch ${dumb.pitch}`);
  t.ok(dumb.size >= BigInt(dumb.pitch * H), `size ${dumb.size}`);
  t.equal(dumb.handle.refCount, 1, 'one counted reference, the buffer\'s own');
  const dmabuf = dumb.exportDmabuf();
  const map = dumb.map();
  t.ok(sameMemory(map.bytes(), dmabuf), 'pixels written through the dumb mapping are in the dma-buf');
  t.ok(addFb(card, dumb.handle, dumb.pitch) > 0, 'AddFB2 of the dumb buffer');
  map.close();
  dmabuf.close();
  dumb.close();
  card.close();
});

leakFree(t, 'dma-heap and udmabuf: a dma-buf that imports into vkms as a counted GEM handle', async (t) => {
  const card = openVkms();
  const pitch = W * 4;
  const heap = DmaHeap.open('system');
  const udmabuf = UdmabufAllocator.open();
  for (const [name, dmabuf] of [['dma-heap:system', heap.allocate(pitch * H)], ['udmabuf', udmabuf.allocate(pitch * H)]] as const) {
    const map = dmabuf.map();
    t.ok(sameMemory(map.bytes(), dmabuf), `${name}: a second mapping sees the pixels`);
    const handle = card.importDmabuf(dmabuf);
    const again = card.importDmabuf(dmabuf);
    t.equal(again.handle, handle.handle, `${name}: the same dma-buf gives the same handle`);
    t.equal(handle.refCount, 2, `${name}: counted twice`);
    again.close();
    t.ok(addFb(card, handle, pitch) > 0, `${name}: AddFB2`);
    handle.close();
    map.close();
    dmabuf.close();
  }
  udmabuf.close();
  heap.close();
  card.close();
});

leakFree(t, 'GBM: a scanout bo with its stride, counted GEM handle on the device, dma-buf and mapping', async (t) => {
  const card = openVkms();
  const gbm = GbmDevice.create(card);
  const bo = gbm.createBo(W, H, XR24, null, GBM_BO_USE_SCANOUT | GBM_BO_USE_LINEAR);
  const plane = bo.planes[0]!;
  t.ok(plane.stride >= W * 4, `stride ${plane.stride}`);
  t.equal(card.gemHandleRefs(plane.handle.handle), 1, 'the bo holds one counted reference on the device');
  const imported = card.importDmabuf(plane.dmabuf);
  t.equal(imported.handle, plane.handle.handle, 'an import of its dma-buf shares that handle');
  imported.close();
  t.equal(card.gemHandleRefs(plane.handle.handle), 1, 'and gives its reference back');
  t.ok(addFb(card, plane.handle, plane.stride, plane.offset) > 0, 'AddFB2 of the bo');
  bo.close();
  t.equal(card.gemHandleCount, 0, 'the bo\'s reference went with it');
  gbm.close();
  card.close();
});

leakFree(t, 'the pool: every allocator of this machine makes a scanout buffer vkms takes', async (t) => {
  const sys = openSystemAllocators({ gbm: true });
  try {
    const card = [...sys.devices.values()].find((d) => d.version.name === 'vkms')!;
    const scanout = scanoutConstraint(describeKmsDevice(card));
    const names = sys.pool.allocators.map((a) => a.caps.name);
    for (const kind of ['dumb', 'dma-heap', 'udmabuf', 'gbm']) t.ok(sys.pool.allocators.some((a) => a.caps.kind === kind), `a ${kind} allocator among ${names.join(', ')}`);
    for (const a of sys.pool.allocators) {
      const req = new BufferRequest({ width: W, height: H, formats: [XR24], pool: new AllocatorPool([a]) });
      req.attach(scanout);
      req.attach(cpuConstraint('write'));
      const d = req.allocate();
      const px = req.beginCpuAccess('write');
      px.fill(0x40, 0, 16);
      req.endCpuAccess();
      const fd = req.exportFd();
      t.ok(fd instanceof OwnedFd, `${a.caps.name}: the exported dma-buf fd is an OwnedFd`);
      const h = card.importDmabuf(fd.fd);
      fd.close();
      t.ok(addFb(card, h, Number(d.planes[0]!.pitch)) > 0, `${a.caps.name}: AddFB2 (pitch ${d.planes[0]!.pitch})`);
      h.close();
      req.close();
    }
  } finally {
    sys.close();
  }
});
