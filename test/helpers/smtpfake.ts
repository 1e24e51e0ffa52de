// A small receiving SMTP server for delivery tests, whose replies the test decides: per
// connection, it answers EHLO with chosen extensions, offers STARTTLS with a given certificate,
// and calls back for RCPT and for the end of the data, which may answer, fail or never reply.
import net from 'node:net';
import tls from 'node:tls';

export interface Received {
  from: string;
  rcpts: string[];
  data: Buffer;
  tls: boolean;
  /** MAIL FROM and RCPT TO lines as sent, with parameters. */
  lines: string[];
}

export type Answer = string | 'hang';

export interface FakeOptions {
  host: string;
  port: number;
  /** Extensions besides PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES (and STARTTLS with tls). */
  extensions?: string[];
  tls?: { certPEM: string; keyPEM: string };
  /** Reply to each RCPT; default 250. */
  rcpt?: (address: string, conn: number) => Answer;
  /** Reply after the data; default 250. Called with the message as received. */
  data?: (m: Received, conn: number) => Answer;
  /** Reply to QUIT; default 221. */
  quit?: (conn: number) => Answer;
}

export interface FakeServer {
  /** Messages for which the data was read completely, whatever the reply. */
  received: Received[];
  /** Connections so far. */
  connections: number;
  close(): Promise<void>;
}

export async function startFakeSMTP(o: FakeOptions): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  const fake: FakeServer = { received: [], connections: 0, close: async () => {} };
  const server = net.createServer((raw) => {
    const conn = ++fake.connections;
    let socket: net.Socket = raw;
    sockets.add(raw);
    raw.on('error', () => {});
    raw.on('close', () => sockets.delete(raw));
    let buf = Buffer.alloc(0);
    let inTLS = false;
    let tx: Received | undefined;
    let inData = false;
    const write = (s: string): void => void socket.write(s + '\r\n');
    const answer = (a: Answer) => {
      if (a !== 'hang') write(a);
    };
    const onLine = (line: string): void => {
      const verb = line.split(' ')[0]!.toUpperCase();
      switch (verb) {
        case 'EHLO': {
          const ext = ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', ...(o.extensions ?? []), ...(o.tls && !inTLS ? ['STARTTLS'] : [])];
          const lines = ['fake greets you', ...ext];
          lines.forEach((l, i) => write(`250${i === lines.length - 1 ? ' ' : '-'}${l}`));
          return;
        }
        case 'HELO':
          return write('250 fake');
        case 'STARTTLS': {
          write('220 2.0.0 go ahead');
          socket.removeListener('data', onData);
          const ts = new tls.TLSSocket(socket, { isServer: true, cert: o.tls!.certPEM, key: o.tls!.keyPEM });
          ts.on('error', () => {});
          socket = ts;
          inTLS = true;
          buf = Buffer.alloc(0);
          ts.on('data', onData);
          return;
        }
        case 'MAIL':
          tx = { from: /<([^>]*)>/.exec(line)?.[1] ?? '', rcpts: [], data: Buffer.alloc(0), tls: inTLS, lines: [line] };
          return write('250 2.1.0 ok');
        case 'RCPT': {
          const addr = /<([^>]*)>/.exec(line)?.[1] ?? '';
          tx?.lines.push(line);
          const a = o.rcpt?.(addr, conn) ?? '250 2.1.5 ok';
          if (a.startsWith('2')) tx?.rcpts.push(addr);
          return answer(a);
        }
        case 'DATA':
          inData = true;
          return write('354 go ahead');
        case 'RSET':
          tx = undefined;
          return write('250 2.0.0 ok');
        case 'NOOP':
          return write('250 2.0.0 ok');
        case 'QUIT': {
          const a = o.quit?.(conn) ?? '221 2.0.0 bye';
          answer(a);
          if (a !== 'hang') socket.end();
          return;
        }
        default:
          return write('500 5.5.2 unknown command');
      }
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          const atStart = buf.subarray(0, 3).toString() === '.\r\n';
          if (end < 0 && !atStart) return;
          const body = atStart ? Buffer.alloc(0) : buf.subarray(0, end + 2);
          buf = buf.subarray(atStart ? 3 : end + 5);
          inData = false;
          const m = { ...tx!, data: Buffer.from(body.toString('latin1').replace(/^\.\./gm, '.'), 'latin1') };
          fake.received.push(m);
          answer(o.data?.(m, conn) ?? '250 2.0.0 ok');
          continue;
        }
        const i = buf.indexOf('\r\n');
        if (i < 0) return;
        const line = buf.subarray(0, i).toString('utf8');
        buf = buf.subarray(i + 2);
        onLine(line);
      }
    };
    raw.on('data', onData);
    write('220 fake ESMTP');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  fake.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return fake;
}
