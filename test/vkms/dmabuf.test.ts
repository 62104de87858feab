// Conformance: dma-buf operations on real dma-bufs (system heap, udmabuf, vgem): size by lseek,
// DMA_BUF_IOCTL_SYNC brackets, shared CPU mappings that unmap once (also from an offset), sync_file export/import
// (DMA_BUF_IOCTL_EXPORT_SYNC_FILE / IMPORT_SYNC_FILE), and waiting on a sync_file on the loop.
import t from 'tap';
import { DumbBuffer } from '../../src/alloc/backends/dumb.js';
import { DmaHeap } from '../../src/alloc/backends/heap.js';
import { UdmabufAllocator } from '../../src/alloc/backends/udmabuf.js';
import { DMA_BUF_SYNC_START, DMA_BUF_SYNC_END, DMA_BUF_SYNC_RW } from '../../src/dmabuf/dmabuf.js';
import { SystemError } from '../../src/errors.js';
import { openDriver } from './devices-util.js';
import { leakFree } from './leak.js';

leakFree(t, 'size, sync brackets and shared mappings on heap, udmabuf and vgem dma-bufs', async (t) => {
  const heap = DmaHeap.open('system');
  const udma = UdmabufAllocator.open();
  const vgem = openDriver('vgem');
  const dumb = DumbBuffer.create(vgem, { width: 128, height: 64, bpp: 32 });
  const bufs = [
    ['system heap', heap.allocate(65536)],
    ['udmabuf', udma.allocate(65536)],
    ['vgem dumb', dumb.exportDmabuf()],
  ] as const;
  for (const [name, d] of bufs) {
    t.equal(d.size, name === 'vgem dumb' ? dumb.size : 65536n, `${name}: size by lseek`);
    d.beginCpuAccess('write');
    const a = d.map();
    const b = d.map({ writable: false });
    a.bytes()[100] = 0x5a;
    const tail = d.map({ offset: 4096 });
    t.equal(BigInt(tail.length), d.size - 4096n, `${name}: map({ offset }) maps the rest of the buffer`);
    tail.bytes()[0] = 0xa5;
    if (name === 'vgem dumb') {
      // Kernel fact (6.12 guest): vgem's dma-buf mmap (the GEM shmem helper's fault handler
      // picks the page from the address within the mapping) ignores the mmap offset, so the
      // byte lands at [0]. primebuf passes the offset correctly (heap and udmabuf prove it);
      // this is reported, not asserted.
      t.comment(`vgem dumb: a byte written at map({ offset: 4096 })[0] shows at [0]: ${a.bytes()[0] === 0xa5}, at [4096]: ${a.bytes()[4096] === 0xa5}`);
    } else {
      t.equal(a.bytes()[4096], 0xa5, `${name}: starting at the offset`);
    }
    tail.close();
    d.endCpuAccess('write');
    d.beginCpuAccess('read');
    t.equal(b.bytes()[100], 0x5a, `${name}: two mappings share pages`);
    d.endCpuAccess('read');
    d.sync(DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
    d.sync(DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
    const view = a.bytes();
    a.close();
    a.close();
    t.equal(view.byteLength, 0, `${name}: unmapped once, stale view detached`);
    b.close();
    const e = t.throws(() => d.sync(0xff)) as SystemError;
    t.equal(e.code, 'EINVAL', `${name}: bad sync flags are the kernel's EINVAL`);
    d.close();
  }
  dumb.close();
  vgem.close();
  udma.close();
  heap.close();
});

leakFree(t, 'sync_file export/import: an idle buffer exports a signaled fence; importing attaches it', async (t) => {
  const heap = DmaHeap.open('system');
  const a = heap.allocate(4096);
  const b = heap.allocate(4096);
  const f = a.exportSyncFile('rw');
  const st = f.status();
  t.ok(st.signaled, `an idle buffer's fence is signaled (${st.name}, ${st.numFences} fences)`);
  await f.wait(1000);
  t.pass('wait() resolves for a signaled fence');
  b.importSyncFile(f, 'write');
  const g = b.exportSyncFile('read');
  t.ok(g.signaled, 'the imported (signaled) fence shows up as signaled');
  const merged = f.merge(g);
  await merged.wait(1000);
  t.pass('a merged fence resolves');
  const pending = f.wait();
  f.close();
  await t.rejects(pending, { name: 'ClosedError' }, 'closing a SyncFile ends its waits (ClosedError), no poll left on a dead fd');
  for (const x of [g, merged, a, b, heap]) x.close();
});

