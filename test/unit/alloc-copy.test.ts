// copyContent (the re-allocation copy of BufferRequest) carries every byte of each plane's
// kernel extent (planeHeight rows of minPitch bytes) across buffers whose pitches differ, for
// packed, multi-planar and block formats alike.
import t from 'tap';
import { CacheDomainTracker } from '../../src/alloc/index.js';
import { copyContent } from '../../src/alloc/request.js';
import { type BufferDescription } from '../../src/constraints/index.js';
import { linearLayout } from '../../src/constraints/solve.js';
import { fourcc, minPitch, planeHeight } from '../../src/formats/index.js';
import { FakeAllocator, FakeBacking } from './fake-alloc.js';

const owner = new FakeAllocator({ name: 'fake' } as never);
const rules = (pitchAlign: number) => ({ pitchAlign, offsetAlign: 64, sizeAlign: 4096, widthAlign: 1, heightAlign: 1 });

function backing(format: number, w: number, h: number, pitchAlign: number): FakeBacking {
  const desc: BufferDescription = { ...linearLayout(rules(pitchAlign), w, h, format), allocator: 'fake', contiguous: false, cpuCache: 'cached' };
  return new FakeBacking(desc, owner);
}

for (const name of ['XRGB8888', 'RGB565', 'NV12', 'YUV420', 'P010', 'Y0L0']) {
  t.test(`${name}: every byte of every plane's extent is copied, pitches differing`, async (t) => {
    const format = fourcc(name);
    const [w, h] = [37, 23]; // odd sizes: subsampled planes round up
    const src = backing(format, w, h, 64);
    const dst = backing(format, w, h, 256);
    for (let i = 0; i < src.memory.length; i++) src.memory[i] = (i * 131 + 7) & 0xff;
    const r = copyContent(src, new CacheDomainTracker((f) => src.sync(f)), dst, new CacheDomainTracker((f) => dst.sync(f)));
    t.same(r, { copied: true });
    let checked = 0;
    src.description.planes.forEach((sp, i) => {
      const dp = dst.description.planes[i]!;
      t.not(sp.pitch, dp.pitch, `plane ${i} pitches differ`);
      const rowBytes = Number(minPitch(format, w, i));
      const rows = planeHeight(format, h, i);
      let bad = 0;
      for (let y = 0; y < rows; y++) {
        const s = src.memory.subarray(Number(sp.offset + BigInt(y) * sp.pitch), Number(sp.offset + BigInt(y) * sp.pitch) + rowBytes);
        const d = dst.memory.subarray(Number(dp.offset + BigInt(y) * dp.pitch), Number(dp.offset + BigInt(y) * dp.pitch) + rowBytes);
        if (Buffer.compare(s, d) !== 0) bad++;
        checked += rowBytes;
      }
      t.equal(bad, 0, `plane ${i}: ${rows} rows of ${rowBytes} bytes equal`);
    });
    t.ok(checked > 0);
    t.same(src.syncs.length > 0 && dst.syncs.length > 0, true, 'both sides were bracketed by syncs');
  });
}
