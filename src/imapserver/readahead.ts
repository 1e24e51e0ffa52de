// Reading the files of a run of messages ahead of their use: each file read is several round
// trips through the thread pool, so overlapping them is what makes FETCH of many bodies fast.
// Reads ahead of the one in use are bounded by count and by bytes, so large messages are not
// all held at once.

export class ReadAhead<T> {
  private readonly pending = new Map<number, Promise<Buffer>>();
  private next = 0;
  private bytes = 0;

  constructor(
    private readonly items: readonly T[],
    private readonly read: (item: T) => Promise<Buffer>,
    private readonly size: (item: T) => number,
    private readonly maxCount = 16,
    private readonly maxBytes = 4 << 20,
  ) {}

  /** The content of items[i]; items must be asked for in order. */
  get(i: number): Promise<Buffer> {
    this.fill(i);
    const p = this.pending.get(i)!;
    this.pending.delete(i);
    this.bytes -= this.size(this.items[i]!);
    this.fill(i + 1);
    return p;
  }

  private fill(from: number): void {
    if (this.next < from) this.next = from;
    while (this.next < this.items.length && (this.pending.size === 0 || (this.pending.size < this.maxCount && this.bytes + this.size(this.items[this.next]!) <= this.maxBytes))) {
      const p = this.read(this.items[this.next]!);
      // A read not waited for (the command failed first) must not become an unhandled rejection.
      p.catch(() => {});
      this.pending.set(this.next, p);
      this.bytes += this.size(this.items[this.next]!);
      this.next++;
    }
  }
}
