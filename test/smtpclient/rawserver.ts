// A scripted SMTP server for tests: each connection runs a script that reads commands and writes
// replies byte for byte, so tests can send replies that no real server would.
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';

export class RawSession {
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake?: () => void;
  /** Bytes received since STARTTLS completed. */
  tlsBytes = 0;
  tls = false;

  constructor(public socket: net.Socket | tls.TLSSocket) {
    this.attach(socket);
  }

  private readonly onData = (d: Buffer) => {
    if (this.tls) this.tlsBytes += d.length;
    this.buf = Buffer.concat([this.buf, d]);
    this.wake?.();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake?.();
  };

  private attach(s: net.Socket): void {
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('close', this.onEnd);
    s.on('error', this.onEnd);
  }

  private async more(): Promise<void> {
    if (this.ended) throw new Error('client closed the connection');
    await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
  }

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Reads a line without its CRLF. */
  async line(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.subarray(0, i).toString('utf8');
        this.buf = this.buf.subarray(i + 2);
        return l;
      }
      await this.more();
    }
  }

  async bytes(n: number): Promise<Buffer> {
    while (this.buf.length < n) await this.more();
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return b;
  }

  /** Reads DATA content up to the end line, still dot-stuffed, without the final ".\r\n". */
  async dotted(): Promise<Buffer> {
    for (;;) {
      const empty = this.buf.subarray(0, 3).equals(Buffer.from('.\r\n'));
      const i = this.buf.indexOf('\r\n.\r\n');
      if (empty || i >= 0) {
        const end = empty ? 0 : i + 2;
        const b = this.buf.subarray(0, end);
        this.buf = this.buf.subarray(end + 3);
        return b;
      }
      await this.more();
    }
  }

  /** Waits until the client closes the connection. */
  async closed(): Promise<void> {
    while (!this.ended) await this.more().catch(() => undefined);
  }

  write(s: string | Buffer): void {
    this.socket.write(s);
  }

  /** Switches to TLS as the server, after the 220 reply to STARTTLS. */
  async startTLS(options: tls.TlsOptions): Promise<void> {
    const raw = this.socket;
    raw.off('data', this.onData);
    raw.off('end', this.onEnd);
    raw.off('close', this.onEnd);
    this.buf = Buffer.alloc(0);
    const ts = new tls.TLSSocket(raw, { ...options, isServer: true });
    ts.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ts.once('secure', resolve);
      ts.once('close', () => reject(new Error('connection closed in the TLS handshake')));
    });
    this.socket = ts;
    this.tls = true;
    this.attach(ts);
  }
}

export interface RawServer {
  port: number;
  /** The outcome of each connection's script, in connection order. */
  sessions: Promise<void>[];
  close(): Promise<void>;
}

export async function rawServer(script: (s: RawSession, index: number) => Promise<void>): Promise<RawServer> {
  const sockets = new Set<net.Socket>();
  const sessions: Promise<void>[] = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const s = new RawSession(socket);
    sessions.push(script(s, sessions.length).finally(() => socket.end()));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    sessions,
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

export const ehloReply = (...keywords: string[]) =>
  ['raw.test', ...keywords].map((k, i, all) => `250${i === all.length - 1 ? ' ' : '-'}${k}\r\n`).join('');

export interface Transaction {
  mail: string;
  rcpts: string[];
  /** BDAT command lines, when the message came in chunks. */
  bdat: string[];
  data: Buffer;
}

export interface ReceiveOptions {
  greeting?: string;
  /** Reply for the n-th recipient of a transaction, when not the default 250. */
  rcpt?: (address: string, n: number) => string | undefined;
}

/**
 * Greets, answers EHLO with the keywords (or refuses EHLO when null, leaving HELO) and receives
 * transactions until QUIT.
 */
export async function receive(s: RawSession, keywords: string[] | null, options: ReceiveOptions = {}): Promise<Transaction[]> {
  const txns: Transaction[] = [];
  let t: Transaction | undefined;
  s.write(options.greeting ?? '220 raw.test ESMTP\r\n');
  for (;;) {
    const l = await s.line();
    const verb = l.split(' ')[0]!.toUpperCase();
    if (verb === 'EHLO') s.write(keywords ? ehloReply(...keywords) : '502 5.5.1 EHLO not supported\r\n');
    else if (verb === 'HELO') s.write('250 raw.test\r\n');
    else if (verb === 'MAIL') {
      t = { mail: l, rcpts: [], bdat: [], data: Buffer.alloc(0) };
      s.write('250 2.1.0 ok\r\n');
    } else if (verb === 'RCPT') {
      const address = /<(.*)>/.exec(l)![1]!;
      const reply = options.rcpt?.(address, t!.rcpts.length) ?? '250 2.1.5 ok';
      if (reply.startsWith('250')) t!.rcpts.push(l);
      s.write(`${reply}\r\n`);
    } else if (verb === 'DATA') {
      s.write('354 go ahead\r\n');
      t!.data = await s.dotted();
      txns.push(t!);
      s.write('250 2.0.0 queued as 1\r\n');
    } else if (verb === 'BDAT') {
      const [, size, last] = l.split(' ');
      t!.bdat.push(l);
      t!.data = Buffer.concat([t!.data, await s.bytes(Number(size))]);
      if (last === 'LAST') txns.push(t!);
      s.write(last === 'LAST' ? '250 2.0.0 queued as 2\r\n' : `250 2.0.0 ${size} octets received\r\n`);
    } else if (verb === 'RSET') s.write('250 2.0.0 reset\r\n');
    else if (verb === 'QUIT') {
      s.write('221 2.0.0 bye\r\n');
      return txns;
    } else s.write('500 5.5.2 unknown command\r\n');
  }
}
