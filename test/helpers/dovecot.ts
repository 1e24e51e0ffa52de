// A private Dovecot IMAP server for differential tests (Debian package
// dovecot-imapd), plus a minimal raw IMAP client and a parser for IMAP
// response data. Dovecot runs from its own temporary directory with its
// own configuration, listens only on 127.0.0.1, and is stopped through
// its own master pid file; system services are never touched.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { retryWhenPortTaken } from './ports.js';

export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin'];
  return dirs.map((d) => join(d, name)).find((p) => existsSync(p));
}

/** Why Dovecot cannot be used here, or false if it can. */
export function dovecotUnavailable(): string | false {
  if (!findBinary('dovecot')) return 'needs the Debian package dovecot-imapd';
  if (process.getuid?.() !== 0) return 'needs root to start a private dovecot';
  return false;
}

export interface Dovecot {
  port: number;
  user: string;
  password: string;
  dir: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

function idOf(flag: '-u' | '-g', name: string): number {
  return Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts Dovecot with one passwd-file user whose mail is in a private Maildir; again on another
 * port when the chosen one was taken before Dovecot bound it.
 */
export function startDovecot(): Promise<Dovecot> {
  return retryWhenPortTaken(() => startDovecotOnce());
}

async function startDovecotOnce(): Promise<Dovecot> {
  const dovecot = findBinary('dovecot')!;
  const dir = mkdtempSync(join(tmpdir(), 'postern-dovecot-'));
  chmodSync(dir, 0o755); // the login and auth processes run as dovenull/dovecot
  const port = await freePort();
  const uid = idOf('-u', 'nobody');
  const gid = idOf('-g', 'nobody');
  const user = 'test@postern.test';
  const password = 'secret';
  mkdirSync(join(dir, 'mail'));
  chownSync(join(dir, 'mail'), uid, gid);
  writeFileSync(join(dir, 'users'), `${user}:{PLAIN}${password}::::::\n`);
  chmodSync(join(dir, 'users'), 0o644);
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(
    conf,
    `instance_name = postern-test-${port}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = ${uid}
first_valid_gid = ${gid}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = static
  args = uid=${uid} gid=${gid} home=${dir}/mail/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
`,
  );
  // The daemon must not inherit pipes we wait on: its output goes to a file.
  const out = openSync(join(dir, 'start.log'), 'w');
  const r = spawnSync(dovecot, ['-c', conf], { stdio: ['ignore', out, out] });
  closeSync(out);
  if (r.status !== 0) {
    const log = readFileSync(join(dir, 'start.log'), 'utf8');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`dovecot failed to start: ${log}`);
  }
  const stop = async () => {
    const pidFile = join(dir, 'run', 'master.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      try {
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 100; i++) {
          process.kill(pid, 0);
          await sleep(100);
        }
      } catch {
        // gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (i > 100) {
      const log = existsSync(join(dir, 'dovecot.log')) ? readFileSync(join(dir, 'dovecot.log'), 'utf8') : '';
      await stop();
      throw new Error(`dovecot did not listen on 127.0.0.1:${port}\n${log}`);
    }
    await sleep(100);
  }
  return { port, user, password, dir, stop };
}

/** A raw IMAP connection: each response is kept as the exact bytes of its line(s) and literals. */
export class RawImap {
  private data = Buffer.alloc(0);
  private waiting?: () => void;
  private tagSeq = 0;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.waiting?.();
    });
    sock.on('close', () => this.waiting?.());
  }

  static async connect(port: number): Promise<RawImap> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const c = new RawImap(sock);
    await c.response(); // greeting
    return c;
  }

  /** The next complete response, literals included. */
  private async response(): Promise<Buffer> {
    for (;;) {
      let pos = 0;
      for (;;) {
        const nl = this.data.indexOf('\r\n', pos);
        if (nl < 0) break;
        const lit = /\{(\d+)\+?\}$/.exec(this.data.toString('latin1', Math.max(pos, nl - 20), nl));
        if (!lit) {
          const out = this.data.subarray(0, nl + 2);
          this.data = this.data.subarray(nl + 2);
          return out;
        }
        const next = nl + 2 + Number(lit[1]);
        if (next > this.data.length) break;
        pos = next;
      }
      if (this.sock.destroyed) throw new Error('connection closed');
      await new Promise<void>((r) => (this.waiting = r));
    }
  }

  /** Send a command (tag added) and return its untagged responses; throws unless it ends in OK. */
  async command(...parts: (string | Buffer)[]): Promise<Buffer[]> {
    const tag = `t${++this.tagSeq}`;
    this.sock.write(Buffer.concat([Buffer.from(tag + ' '), ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)), Buffer.from('\r\n')]));
    const out: Buffer[] = [];
    for (;;) {
      const r = await this.response();
      if (r.toString('latin1', 0, tag.length + 1) === tag + ' ') {
        if (!/^\S+ OK/.test(r.toString('latin1'))) throw new Error(`${parts.join('').slice(0, 200)}: ${r.toString('latin1')}`);
        return out;
      }
      out.push(r);
    }
  }

  async close(): Promise<void> {
    try {
      await this.command('LOGOUT');
    } catch {
      // already closed
    }
    this.sock.destroy();
  }
}

/** A parsed IMAP data value: a string (byte string), a number, NIL (null), an atom, or a list. */
export type ImapValue = string | number | null | { atom: string } | ImapValue[];

/**
 * Parse IMAP response data (RFC 9051 9: quoted strings, literals, NIL,
 * numbers, atoms, lists). Quoted and literal strings both become byte
 * strings, as they are equivalent forms. Atoms such as BODY[1.MIME] keep
 * their bracketed part. Throws on syntax errors.
 */
export function parseImapData(input: Buffer | string): ImapValue[] {
  const s = typeof input === 'string' ? input : input.toString('latin1');
  let i = 0;
  const stack: ImapValue[][] = [[]];
  const push = (v: ImapValue) => stack[stack.length - 1]!.push(v);
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\r' || c === '\n') {
      i++;
    } else if (c === '(') {
      const l: ImapValue[] = [];
      push(l);
      stack.push(l);
      i++;
    } else if (c === ')') {
      if (stack.length < 2) throw new Error(`unbalanced ) at ${i}`);
      stack.pop();
      i++;
    } else if (c === '"') {
      let v = '';
      for (i++; s[i] !== '"'; i++) {
        if (i >= s.length) throw new Error('unterminated quoted string');
        if (s[i] === '\\') {
          i++;
          if (s[i] !== '"' && s[i] !== '\\') throw new Error(`bad escape at ${i}`);
        } else if (s[i] === '\r' || s[i] === '\n') throw new Error('CR or LF in quoted string');
        v += s[i];
      }
      i++;
      push(v);
    } else if (c === '{' || (c === '~' && s[i + 1] === '{')) {
      const m = /^~?\{(\d+)\+?\}\r\n/.exec(s.slice(i, i + 30));
      if (!m) throw new Error(`bad literal at ${i}`);
      i += m[0].length;
      const n = Number(m[1]);
      if (i + n > s.length) throw new Error('short literal');
      push(s.slice(i, i + n));
      i += n;
    } else {
      const start = i;
      while (i < s.length && !' ()\r\n"'.includes(s[i]!)) {
        if (s[i] === '[') {
          const close = s.indexOf(']', i);
          if (close < 0) throw new Error('unterminated [');
          i = close;
        }
        i++;
      }
      const atom = s.slice(start, i);
      if (!atom) throw new Error(`unexpected ${JSON.stringify(c)} at ${i}`);
      if (/^NIL$/i.test(atom)) push(null);
      else if (/^\d+$/.test(atom)) push(Number(atom));
      else push({ atom });
    }
  }
  if (stack.length !== 1) throw new Error('unbalanced (');
  return stack[0]!;
}
