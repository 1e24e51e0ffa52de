// Shared pieces of the SMTP server tests: SMTP sessions over raw sockets, reading messages back
// over IMAP, and changes to a running server's domains.conf.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import type { TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

/** Connects, reads the greeting and says EHLO. */
export async function smtpSession(port: number, helo = 'client.example'): Promise<Raw> {
  const c = await Raw.connect(port);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd(`EHLO ${helo}`)).code, 250);
  return c;
}

export const plainAuth = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

/** A submission session on the STARTTLS port, authenticated as jane. */
export async function submissionSession(srv: TestServer): Promise<Raw> {
  const c = await smtpSession(srv.ports.submission);
  assert.equal((await c.cmd('STARTTLS')).code, 220);
  await c.startTLS(srv.certPEM);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  assert.equal((await c.cmd('AUTH PLAIN ' + plainAuth('jane@example.test', 'secret-pass'))).code, 235);
  return c;
}

/** MAIL, RCPTs (each must be accepted), DATA with the message (CRLF lines, without the final dot); returns the final reply. */
export async function sendData(c: Raw, from: string, rcpts: string[], msg: string | Buffer, mailParams = '') {
  const mail = await c.cmd(`MAIL FROM:<${from}>${mailParams ? ' ' + mailParams : ''}`);
  assert.equal(mail.code, 250, `MAIL: ${mail.text}`);
  for (const r of rcpts) {
    const rr = await c.cmd(`RCPT TO:<${r}>`);
    assert.equal(rr.code, 250, `RCPT ${r}: ${rr.text}`);
  }
  assert.equal((await c.cmd('DATA')).code, 354);
  const body = Buffer.isBuffer(msg) ? msg : Buffer.from(msg);
  const dotted = Buffer.from(body.toString('latin1').replace(/(^|\r\n)\./g, '$1..'), 'latin1');
  c.write(Buffer.concat([dotted, Buffer.from(dotted.length === 0 || dotted.subarray(-2).toString() === '\r\n' ? '.\r\n' : '\r\n.\r\n')]));
  return c.reply();
}

export interface Fetched {
  uid: number;
  source: Buffer;
}

export interface Login {
  user: string;
  pass: string;
}

const jane: Login = { user: 'jane@example.test', pass: 'secret-pass' };

async function imap(srv: TestServer, login: Login): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port: srv.ports.imaps,
    secure: true,
    tls: { ca: srv.certPEM, servername: 'localhost' },
    auth: login,
    logger: false,
  });
  await c.connect();
  return c;
}

/** All messages of one of jane's (or login's) mailboxes, fetched over IMAP in UID order; [] for a missing or empty mailbox. */
export async function fetchMailbox(srv: TestServer, mailbox = 'INBOX', login = jane): Promise<Fetched[]> {
  const c = await imap(srv, login);
  try {
    let mb;
    try {
      mb = await c.mailboxOpen(mailbox, { readOnly: true });
    } catch (e) {
      if ((e as { serverResponseCode?: string }).serverResponseCode === 'NONEXISTENT') return [];
      throw e;
    }
    if (mb.exists === 0) return [];
    const out: Fetched[] = [];
    for await (const m of c.fetch('1:*', { uid: true, source: true })) out.push({ uid: m.uid, source: m.source! });
    return out.sort((a, b) => a.uid - b.uid);
  } finally {
    await c.logout();
  }
}

/** Messages whose header contains the given Subject value. */
export async function findBySubject(srv: TestServer, subject: string, mailbox = 'INBOX', login = jane): Promise<Buffer[]> {
  const all = await fetchMailbox(srv, mailbox, login);
  return all.map((m) => m.source).filter((s) => headerValues(s, 'subject').some((v) => v === subject));
}

/** The header section of a message, up to and including the empty line. */
export function headerSection(msg: Buffer): string {
  const i = msg.indexOf('\r\n\r\n');
  return msg.subarray(0, i < 0 ? msg.length : i + 4).toString('utf8');
}

/** Unfolded values of all header fields with the name, in order. */
export function headerValues(msg: Buffer, name: string): string[] {
  const fields = headerSection(msg).replace(/\r\n(?=[ \t])/g, '').split('\r\n');
  const lower = name.toLowerCase() + ':';
  return fields.filter((f) => f.toLowerCase().startsWith(lower)).map((f) => f.slice(lower.length).trim());
}

/**
 * Adds lines to a running server's domains.conf right after a line equal to `afterLine`, and
 * waits until the server has reloaded it.
 */
export async function editDomains(srv: TestServer, afterLine: string, lines: string): Promise<void> {
  const file = path.join(path.dirname(srv.configFile), 'domains.conf');
  const text = fs.readFileSync(file, 'utf8');
  const i = text.indexOf(afterLine + '\n');
  assert.ok(i >= 0, `no line ${JSON.stringify(afterLine)} in domains.conf`);
  const reloads = srv.output.split('"domains.conf reloaded"').length;
  const at = i + afterLine.length + 1;
  fs.writeFileSync(file, text.slice(0, at) + lines + text.slice(at));
  for (let n = 0; srv.output.split('"domains.conf reloaded"').length === reloads; n++) {
    if (n > 100) throw new Error(`domains.conf not reloaded:\n${srv.output.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The results by method of the first Authentication-Results field, e.g. { spf: 'pass', dkim: ['pass'] }. */
export function authResults(msg: Buffer): { authserv: string; spf?: string; dkim: string[]; dmarc?: string; iprev?: string; text: string } {
  const v = headerValues(msg, 'authentication-results')[0];
  assert.ok(v !== undefined, 'no Authentication-Results field');
  const [authserv = '', ...resinfos] = v.split(';').map((s) => s.trim());
  const out = { authserv, dkim: [] as string[], text: v } as ReturnType<typeof authResults>;
  for (const r of resinfos) {
    const m = /^(spf|dkim|dmarc|iprev)=([a-z]+)/.exec(r);
    if (!m) continue;
    if (m[1] === 'dkim') out.dkim.push(m[2]!);
    else out[m[1] as 'spf' | 'dmarc' | 'iprev'] = m[2]!;
  }
  return out;
}
