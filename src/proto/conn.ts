// Buffered line-oriented connection used by the SMTP and IMAP servers and the SMTP client:
// bounded reads (lines, exact byte counts, raw chunks), buffered writes flushed when the
// peer has nothing more pipelined, read timeouts, and in-place TLS upgrade.
import type { Socket } from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';

export class ConnClosed extends Error {
  constructor() {
    super('connection closed');
  }
}
export class ReadTimeout extends Error {
  constructor() {
    super('read timeout');
  }
}

export interface Line {
  /** Line without its line ending. */
  line: Buffer;
  /** False when the line exceeded the maximum: its contents were discarded. */
  ok: boolean;
  /** Line ended in CRLF (not a bare LF). */
  crlf: boolean;
}

const highWater = 256 * 1024;

export class Conn {
  socket: Socket | tls.TLSSocket;
  private chunks: Buffer[] = [];
  private bufLen = 0;
  private eof = false;
  private error?: Error;
  private waiter?: () => void;
  private out: Buffer[] = [];
  private outLen = 0;
  private paused = false;
  /** Called before waiting for network input, e.g. to flush pipelined replies. */
  onWait?: () => void;
  closed = false;
  /** Output compressor once COMPRESS=DEFLATE is active (RFC 4978). */
  private deflate?: zlib.DeflateRaw;
  /** Blocked waiting for input from the peer. */
  waiting = false;
  bytesRead = 0;
  bytesWritten = 0;

  constructor(socket: Socket | tls.TLSSocket) {
    this.socket = socket;
    this.attach();
  }

  private readonly onData = (b: Buffer) => {
    this.chunks.push(b);
    this.bufLen += b.length;
    this.bytesRead += b.length;
    if (this.bufLen > highWater && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.wake();
  };
  private readonly onEnd = () => {
    this.eof = true;
    this.wake();
  };
  private readonly onError = (e: Error) => {
    this.error = e;
    this.eof = true;
    this.wake();
  };
  private readonly onClose = () => {
    this.closed = true;
    this.eof = true;
    this.wake();
  };

  private attach(): void {
    this.socket.on('data', this.onData);
    this.socket.on('end', this.onEnd);
    this.socket.on('error', this.onError);
    this.socket.on('close', this.onClose);
  }

  private detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Bytes received but not yet consumed. */
  get buffered(): number {
    return this.bufLen;
  }

  private async more(timeoutMs: number): Promise<void> {
    if (this.eof) throw this.error ?? new ConnClosed();
    this.waiting = true;
    this.onWait?.();
    this.flush();
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        this.waiting = false;
        reject(new ReadTimeout());
      }, timeoutMs);
      this.waiter = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.waiting = false;
    if (this.bufLen === 0 && this.eof) throw this.error ?? new ConnClosed();
  }

  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private consume(n: number): Buffer {
    const b = this.joined();
    const r = b.subarray(0, n);
    const rest = b.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.bufLen = rest.length;
    return r;
  }

  /**
   * Reads a line of at most max bytes (without line ending). Longer lines are read to their
   * end in bounded memory, with ok false and only their first max bytes in line.
   */
  async readLine(max: number, timeoutMs: number): Promise<Line> {
    let scanned = 0;
    let head: Buffer | undefined;
    for (;;) {
      const b = this.joined();
      const i = b.indexOf(10, scanned);
      if (i >= 0) {
        const raw = this.consume(i + 1);
        const crlf = i > 0 && raw[i - 1] === 13;
        const line = raw.subarray(0, crlf ? i - 1 : i);
        if (head || line.length > max) return { line: head ?? line.subarray(0, max), ok: false, crlf };
        return { line, ok: true, crlf };
      }
      if (b.length > max) {
        head ??= Buffer.from(b.subarray(0, max));
        // Keep the last byte: it may be the CR of a CRLF split across reads.
        this.consume(b.length - 1);
        scanned = 0;
      } else scanned = b.length;
      await this.more(timeoutMs);
    }
  }

  /** Reads exactly n bytes. */
  async readExact(n: number, timeoutMs: number): Promise<Buffer> {
    while (this.bufLen < n) await this.more(timeoutMs);
    return Buffer.from(this.consume(n));
  }

  /** Returns whatever is buffered, or waits for the next chunk. */
  async readChunk(timeoutMs: number): Promise<Buffer> {
    if (this.bufLen === 0) await this.more(timeoutMs);
    return this.consume(this.bufLen);
  }

  /** Puts bytes back in front of the buffer. */
  unread(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.unshift(b);
    this.bufLen += b.length;
  }

  /** Makes the pending or next read fail with e, e.g. to end an idle session at shutdown. */
  abort(e: Error): void {
    this.error = e;
    this.eof = true;
    this.wake();
  }

  /** Drops buffered input, e.g. anything pipelined after STARTTLS (RFC 3207 6). */
  discardBuffered(): void {
    this.chunks = [];
    this.bufLen = 0;
  }

  write(data: string | Buffer): void {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    this.out.push(b);
    this.outLen += b.length;
    if (this.outLen > 64 * 1024) this.flush();
  }

  flush(): void {
    if (this.outLen === 0 || this.closed) {
      this.out = [];
      this.outLen = 0;
      return;
    }
    const b = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    this.outLen = 0;
    this.bytesWritten += b.length;
    if (this.deflate) {
      this.deflate.write(b);
      // Each flush of output is one sync-flushed block, so the peer can decompress it at once.
      this.deflate.flush(zlib.constants.Z_SYNC_FLUSH);
    } else this.socket.write(b);
  }

  get compressed(): boolean {
    return this.deflate !== undefined;
  }

  /** Compresses both directions with raw DEFLATE from now on (RFC 4978 4). */
  startCompression(): void {
    this.flush();
    const inflate = zlib.createInflateRaw();
    const deflate = zlib.createDeflateRaw();
    this.socket.off('data', this.onData);
    this.socket.on('data', (d: Buffer) => inflate.write(d));
    inflate.on('data', this.onData);
    inflate.on('error', this.onError);
    deflate.on('data', (d: Buffer) => {
      if (!this.socket.destroyed) this.socket.write(d);
    });
    deflate.on('error', this.onError);
    this.deflate = deflate;
  }

  /** Waits until written data has been handed to the kernel, for back-pressure on large writes. */
  async drain(): Promise<void> {
    this.flush();
    if (!this.socket.writableNeedDrain || this.closed) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** Switches to TLS as server, after the STARTTLS reply was sent. */
  async startTLS(options: tls.TLSSocketOptions, timeoutMs: number): Promise<tls.TLSSocket> {
    this.flush();
    this.detach();
    this.discardBuffered();
    const ts = new tls.TLSSocket(this.socket, { ...options, isServer: true });
    await handshake(ts, 'secure', timeoutMs);
    this.socket = ts;
    this.eof = false;
    this.attach();
    return ts;
  }

  /** Switches to TLS as client. */
  async startTLSClient(options: tls.ConnectionOptions, timeoutMs: number): Promise<tls.TLSSocket> {
    this.flush();
    this.detach();
    this.discardBuffered();
    const ts = tls.connect({ ...options, socket: this.socket });
    await handshake(ts, 'secureConnect', timeoutMs);
    this.socket = ts;
    this.eof = false;
    this.attach();
    return ts;
  }

  close(): void {
    this.flush();
    this.closed = true;
    if (this.deflate) {
      // The compressor may still hold the last responses (e.g. BYE): end the socket after them.
      this.deflate.once('end', () => this.socket.end());
      this.deflate.end();
    } else this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

function handshake(ts: tls.TLSSocket, event: 'secure' | 'secureConnect', timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => fail(new Error('tls handshake timeout')), timeoutMs);
    const ok = () => {
      clearTimeout(t);
      ts.off('error', fail);
      resolve();
    };
    const fail = (e: Error) => {
      clearTimeout(t);
      // Later errors of the abandoned socket must not go unhandled.
      ts.on('error', () => {});
      ts.destroy();
      reject(e);
    };
    ts.once(event, ok);
    ts.once('error', fail);
  });
}
