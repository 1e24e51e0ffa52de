// Shared pieces of the outbound delivery tests: a receiving Postern for remote.test, polling,
// mailboxes read over IMAP, and submission of messages to the sending server.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { msgsPerDir } from '../../src/store/account.js';
import { startServe, type ServeOptions, type TestServer } from '../helpers/server.js';
import { sendData, submissionSession } from '../smtpserver/helpers.js';

/** A Postern that receives mail for bob@remote.test (password "bob-pass") as mx.remote.test. */
export function startReceiver(opts: ServeOptions = {}): Promise<TestServer> {
  return startServe({
    hostname: 'mx.remote.test',
    domains: '  remote.test: {}\n',
    accounts: '  bob:\n    Domain: remote.test\n    Destinations:\n      bob@remote.test: {}\n',
    passwords: { bob: 'bob-pass' },
    ...opts,
  });
}

/** Calls f until it returns a value other than undefined or false. */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Messages of a mailbox in UID order, read from the account's index and files with a read-only
 * database connection, so that the server's state is not touched.
 */
export function mailbox(srv: TestServer, account: string, name = 'Inbox'): Buffer[] {
  const dir = path.join(srv.dataDir, 'accounts', account);
  if (!fs.existsSync(path.join(dir, 'index.db'))) return [];
  const db = new Database(path.join(dir, 'index.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare('SELECT m.id, m.prefix FROM message m JOIN mailbox b ON m.mailbox_id = b.id WHERE b.namekey = ? ORDER BY m.uid')
      .all(name.toLowerCase()) as { id: number; prefix: Buffer }[];
    return rows.map((r) => Buffer.concat([r.prefix, fs.readFileSync(path.join(dir, 'msg', String(Math.floor(r.id / msgsPerDir)), String(r.id)))]));
  } finally {
    db.close();
  }
}

export const bobInbox = async (srv: TestServer) => mailbox(srv, 'bob');
export const janeInbox = async (srv: TestServer) => mailbox(srv, 'jane');

/** Waits until a mailbox has a message with the subject, and returns it. */
export function waitForSubject(what: string, box: () => Promise<Buffer[]>, subject: string, timeoutMs?: number): Promise<Buffer> {
  return waitFor(what, async () => (await box()).find((m) => m.toString('utf8').includes(`\r\nSubject: ${subject}\r\n`) || m.toString('utf8').startsWith(`Subject: ${subject}\r\n`)), timeoutMs);
}

/** Submits a message from jane@example.test; returns the final reply code. */
export async function submit(srv: TestServer, rcpts: string[], subject: string, opts: { mailParams?: string; rcptParams?: string; body?: string; headers?: string } = {}): Promise<void> {
  const c = await submissionSession(srv);
  try {
    const msg = `From: jane@example.test\r\nTo: ${rcpts.join(', ')}\r\nSubject: ${subject}\r\n${opts.headers ?? ''}\r\n${opts.body ?? 'Hello from the sender.\r\n'}`;
    if (opts.rcptParams) {
      assert.equal((await c.cmd(`MAIL FROM:<jane@example.test>${opts.mailParams ? ' ' + opts.mailParams : ''}`)).code, 250);
      for (const r of rcpts) assert.equal((await c.cmd(`RCPT TO:<${r}> ${opts.rcptParams}`)).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      const r = await c.cmd(msg + '.');
      assert.equal(r.code, 250, r.text);
    } else {
      const r = await sendData(c, 'jane@example.test', rcpts, msg, opts.mailParams);
      assert.equal(r.code, 250, r.text);
    }
  } finally {
    c.close();
  }
}

/** Queue entries as the server lists them. */
export async function queued(srv: TestServer): Promise<{ id: number; recipient: string; attempts: number; hold: number; lasterror: string | null; nextattempt: number; transport: string }[]> {
  return (await srv.ctl('queue list')) as never;
}

/** A header field's unfolded value. */
export function header(msg: Buffer, name: string): string | undefined {
  const head = msg.toString('utf8').split('\r\n\r\n')[0]!.replace(/\r\n[ \t]/g, ' ');
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'));
  return line?.slice(name.length + 1).trim();
}

/** Points the sender's DNS for a domain at an MX host with an address. */
export function mx(srv: TestServer, domain: string, host: string, ip = '127.0.0.1'): void {
  srv.dns.set(domain, 'MX', [{ preference: 10, exchange: host }]);
  srv.dns.set(host, 'A', [ip]);
}
