// A raw socket client for protocol tests: exact bytes out, lines and SMTP replies in.
import net from 'node:net';
import tls from 'node:tls';

export interface SMTPReply {
  code: number;
  /** Text of all lines, without codes, joined by "\n". */
  text: string;
  lines: string[];
}

export class Raw {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  constructor(public socket: net.Socket | tls.TLSSocket) {
    this.attach();
  }

  private attach(): void {
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiters.splice(0).forEach((w) => w());
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    this.socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host, () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  static connectTLS(port: number, ca: string, host = '127.0.0.1'): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ port, host, ca, servername: 'localhost' }, () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Reads a line (without CRLF); rejects on close or after timeoutMs. */
  async line(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.subarray(0, i).toString('utf8');
        this.buf = this.buf.subarray(i + 2);
        return l;
      }
      if (this.closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.buf.toString())}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for line; pending: ${JSON.stringify(this.buf.toString())}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Reads exactly n bytes. */
  async bytes(n: number, timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.closed || Date.now() > deadline) throw new Error('short read');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return b;
  }

  /** Reads one SMTP reply, possibly multi-line. */
  async reply(timeoutMs?: number): Promise<SMTPReply> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      lines.push(l.slice(4));
      if (l[3] !== '-') return { code: Number(l.slice(0, 3)), text: lines.join('\n'), lines };
    }
  }

  async cmd(line: string, timeoutMs?: number): Promise<SMTPReply> {
    this.write(line + '\r\n');
    return this.reply(timeoutMs);
  }

  /** IMAP: sends a tagged command and collects lines up to its tagged response. */
  async imap(tag: string, command: string, timeoutMs?: number): Promise<{ untagged: string[]; status: string }> {
    this.write(`${tag} ${command}\r\n`);
    return this.imapUntil(tag, timeoutMs);
  }

  async imapUntil(tag: string, timeoutMs?: number): Promise<{ untagged: string[]; status: string }> {
    const untagged: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l.startsWith(tag + ' ')) return { untagged, status: l.slice(tag.length + 1) };
      untagged.push(l);
    }
  }

  /** Upgrades to TLS as client (after STARTTLS). */
  async startTLS(ca: string): Promise<void> {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    const ts = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const t = tls.connect({ socket: this.socket, ca, servername: 'localhost' }, () => resolve(t));
      t.once('error', reject);
    });
    this.socket = ts;
    this.buf = Buffer.alloc(0);
    this.attach();
  }

  close(): void {
    this.socket.destroy();
  }
}
