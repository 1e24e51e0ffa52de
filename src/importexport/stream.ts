// Byte-stream plumbing shared by the archive and mailbox formats: writes that respect
// back-pressure, a pull reader over chunked input, and line-ending conversion.
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** Writes a chunk, waiting for the stream to drain when its buffer is full. */
export async function writeAll(out: Writable, buf: Buffer): Promise<void> {
  if (buf.length === 0) return;
  if (out.destroyed) throw out.errored ?? new Error('output stream closed');
  if (out.write(buf)) return;
  await new Promise<void>((resolve, reject) => {
    const settle = (err?: Error) => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => settle();
    const onClose = () => settle(out.errored ?? new Error('output stream closed'));
    out.on('drain', onDrain);
    out.on('close', onClose);
  });
}

/** Ends a writable stream and waits until everything is flushed. */
export async function endStream(out: Writable): Promise<void> {
  const done = once(out, 'finish');
  out.end();
  await done;
}

/**
 * Reads exact byte counts from chunked input, without holding more than one chunk plus
 * what the caller asked for.
 */
export class Pull {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private readonly it: AsyncIterator<Buffer | string> | Iterator<Buffer | string>;

  constructor(input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>) {
    this.it = Symbol.asyncIterator in input ? input[Symbol.asyncIterator]() : input[Symbol.iterator]();
  }

  private async more(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const c = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
    return true;
  }

  /** Up to n bytes at the start, without consuming them; fewer only at the end of input. */
  async peek(n: number): Promise<Buffer> {
    while (this.buf.length < n && (await this.more()));
    return this.buf.subarray(0, n);
  }

  /** Exactly n bytes, or fewer at the end of input. */
  async read(n: number): Promise<Buffer> {
    const b = await this.peek(n);
    this.buf = this.buf.subarray(b.length);
    return Buffer.from(b);
  }

  /** The next n bytes as they arrive; ends early only at the end of input. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0 && !(await this.more())) return;
      const c = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(c.length);
      n -= c.length;
      yield c;
    }
  }

  /** Discards n bytes; returns how many were there. */
  async skip(n: number): Promise<number> {
    let got = 0;
    for await (const c of this.chunks(n)) got += c.length;
    return got;
  }

  /** Stops reading: the input's iterator is told, so it can release what it holds. */
  async close(): Promise<void> {
    this.done = true;
    this.buf = Buffer.alloc(0);
    await this.it.return?.();
  }

  /** The rest of the input. */
  async *rest(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.buf.length) {
        const c = this.buf;
        this.buf = Buffer.alloc(0);
        yield c;
      }
      if (!(await this.more())) return;
    }
  }
}

/** Splits chunked input into lines that keep their LF; the last line may lack one. */
export async function* lines(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  for await (const raw of input) {
    const c = typeof raw === 'string' ? Buffer.from(raw) : raw;
    let start = 0;
    for (let nl = c.indexOf(10); nl >= 0; nl = c.indexOf(10, start)) {
      const piece = c.subarray(start, nl + 1);
      if (pending.length) {
        pending.push(piece);
        yield Buffer.concat(pending);
        pending = [];
      } else yield piece;
      start = nl + 1;
    }
    if (start < c.length) pending.push(c.subarray(start));
  }
  if (pending.length) yield Buffer.concat(pending);
}

/**
 * A message with CRLF line endings, as stored and served over IMAP (RFC 5322 2.1):
 * Unix tools write Maildir and mbox files with bare LF.
 */
export function toCRLF(msg: Buffer): Buffer {
  let bare = 0;
  for (let i = msg.indexOf(10); i >= 0; i = msg.indexOf(10, i + 1)) if (i === 0 || msg[i - 1] !== 13) bare++;
  if (bare === 0) return msg;
  const out = Buffer.allocUnsafe(msg.length + bare);
  let o = 0;
  let start = 0;
  for (let i = msg.indexOf(10); i >= 0; i = msg.indexOf(10, i + 1)) {
    if (i > 0 && msg[i - 1] === 13) continue;
    o += msg.copy(out, o, start, i);
    out[o++] = 13;
    out[o++] = 10;
    start = i + 1;
  }
  msg.copy(out, o, start);
  return out;
}

/** CRLF line endings to LF, the convention of files written for Unix mail tools; bare CRs stay. */
export function toLF(msg: Buffer): Buffer {
  if (msg.indexOf('\r\n') < 0) return msg;
  const out = Buffer.allocUnsafe(msg.length);
  let o = 0;
  let start = 0;
  for (let i = msg.indexOf('\r\n'); i >= 0; i = msg.indexOf('\r\n', i + 2)) {
    o += msg.copy(out, o, start, i);
    out[o++] = 10;
    start = i + 2;
  }
  o += msg.copy(out, o, start);
  return out.subarray(0, o);
}

/** Offset just past the blank line that ends the header, or -1 when there is none. */
export function headerEnd(msg: Buffer): number {
  if (msg[0] === 10) return 1;
  if (msg[0] === 13 && msg[1] === 10) return 2;
  for (let i = msg.indexOf(10); i >= 0 && i + 1 < msg.length; i = msg.indexOf(10, i + 1)) {
    if (msg[i + 1] === 10) return i + 2;
    if (msg[i + 1] === 13 && msg[i + 2] === 10) return i + 3;
  }
  return -1;
}
