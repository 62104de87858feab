// Fake allocators for host tests of allocation policy: memory is a Uint8Array, syncs and
// exports are recorded, every buffer knows whether it was closed (leak checks).
import { type BufferDescription } from '../../src/constraints/index.js';
import { lcm } from '../../src/constraints/set.js';
import { linearLayout } from '../../src/constraints/solve.js';
import { linearOnly } from '../../src/alloc/catalog.js';
import { type AllocationPlan, type Allocator, type AllocatorCaps, type Backing, type FdOwner, type SyncFlags } from '../../src/alloc/index.js';

export class FakeBacking implements Backing {
  readonly description: BufferDescription;
  readonly memory: Uint8Array;
  readonly syncs: SyncFlags[] = [];
  closed = false;
  openExports = 0;
  constructor(description: BufferDescription, readonly owner: FakeAllocator) {
    this.description = description;
    this.memory = new Uint8Array(Number(description.size));
  }
  exportFd(): FdOwner {
    if (this.closed) throw new Error('export of a closed fake buffer');
    this.openExports++;
    let open = true;
    return {
      fd: 1000 + this.owner.made.length,
      close: () => {
        if (open) this.openExports--;
        open = false;
      },
    };
  }
  map(): Uint8Array {
    if (this.closed) throw new Error('map of a closed fake buffer');
    return this.memory;
  }
  sync(flags: SyncFlags): void {
    this.syncs.push(flags);
  }
  close(): void {
    this.closed = true;
  }
}

export class FakeAllocator implements Allocator {
  readonly made: FakeBacking[] = [];
  constructor(
    readonly caps: AllocatorCaps,
    readonly opts: { modifiers?: readonly bigint[]; driverPitchAlign?: number; pitchSkew?: number } = {},
  ) {}
  canAllocate(format: number, modifier: bigint): boolean {
    if (this.opts.modifiers) return this.opts.modifiers.includes(modifier);
    return linearOnly(format, modifier);
  }
  allocate(plan: AllocationPlan): FakeBacking {
    const layout =
      this.caps.layoutBy === 'driver'
        ? linearLayout({ ...plan.rules, pitchAlign: lcm(plan.rules.pitchAlign, this.opts.driverPitchAlign ?? 1) }, plan.width, plan.height, plan.format, plan.modifier)
        : plan.layout;
    const skew = BigInt(this.opts.pitchSkew ?? 0);
    const skewed = skew === 0n ? layout : { ...layout, planes: layout.planes.map((p) => ({ ...p, pitch: p.pitch + skew })) };
    const desc: BufferDescription = {
      ...skewed,
      allocator: this.caps.name,
      contiguous: this.caps.contiguous,
      cpuCache: this.caps.cpuCache,
      ...(this.caps.device !== undefined ? { allocatedOn: this.caps.device } : {}),
    };
    const b = new FakeBacking(desc, this);
    this.made.push(b);
    return b;
  }
  get open(): number {
    return this.made.filter((b) => !b.closed).length;
  }
}
