// Differential test of Postern's IMAP server against Dovecot 2.3 (Debian package
// dovecot-imapd) over real sockets: every message of test/fixtures/mime is appended to both,
// and FETCH and SEARCH answers are compared. Both sessions are IMAP4rev1 (Dovecot 2.3 has
// no IMAP4rev2), so Postern answers as a rev1 server.
//
// NORMALIZATIONS
//
// Those of dovecot-structure.test.ts, numbered as there, apply as far as they concern what is
// compared here:
// 1. Message bytes: Dovecot stores bare LF and serves CRLF. Both servers get the fixture with
//    every line ending made CRLF, so both store the same bytes (checked with BODY[]).
// 2. Quoted strings and literals are two spellings of one string (RFC 3501 4.3): responses are
//    compared as parsed values.
// 3-6. BODYSTRUCTURE and ENVELOPE: case of media types, parameter names, encodings and
//    disposition types (RFC 2045 5.1, 6.1; RFC 2183 2), parameter order (RFC 2045 5.1),
//    RFC 2231 values decoded (RFC 3501 7.4.2 with RFC 2231 4) and whitespace runs in
//    ENVELOPE subject and display names (RFC 5322 2.2.3) are normalized.
// 7. The malformed fixtures 27, 28, 31 and 32 differ as described there; the same expected
//    differences are applied (28: no sections compared). In addition, for 32 (the message
//    ends inside its header: no blank line, no body) Dovecot appends a blank line to
//    HEADER.FIELDS; RFC 3501 6.4.5 includes the blank line "in all header fetches, except in
//    the case of a message which has no body and no blank line", as Postern does.
// 8. BINARY: where Dovecot refuses to decode (NO, allowed by RFC 3516 4.2 for content it
//    cannot decode), Postern's lenient answer is not compared; for message/* parts neither is.
// 9. A nested multipart's BODY[n] may end in one CRLF more at Dovecot (the line break before
//    the enclosing delimiter belongs to the delimiter, RFC 2046 5.1.1).
// 10. message/global (fixture 25) is a basic body in IMAP4rev1; sections inside it are not
//    compared.
//
// Added for the wire comparison:
// 11. Data item names: section specifiers are case-insensitive (RFC 3501 9, header-fld-name
//    is an astring and matching is case-insensitive, RFC 3501 6.4.5), and Dovecot repeats
//    field names in its own case: item names are upper-cased.
// 12. \Recent. Dovecot sets it on messages this session is the first to see (RFC 3501 2.3.2);
//    IMAP4rev2 removed the flag (RFC 9051 Appendix E) and Postern never sets it, answering
//    "0 RECENT" also to IMAP4rev1 clients. \Recent is left out when comparing FLAGS.
// 13. Raw 8-bit header text that is not UTF-8 (fixture 07, ISO-8859-1). RFC 5322 allows only
//    ASCII and RFC 6532 adds UTF-8; other bytes have no defined reading. Postern searches them
//    as ISO-8859-1, Dovecot as replacement characters, so Postern's SUBJECT "Café" also finds
//    07 ("Caf\xe9 cr\xe8me").
// 14. Two Subject fields (fixture 26). SUBJECT searches "the envelope structure's SUBJECT
//    field" (RFC 3501 6.4.4), which both servers fill from the last field (the ENVELOPE is
//    compared above); Dovecot's SUBJECT also matches the first field, Postern's does not.
// 15. No Date field. SENTBEFORE, SENTON and SENTSINCE compare the Date header's date (RFC 3501
//    6.4.4); a message without one has no sent date and Postern matches it with none of them.
//    Dovecot takes such a message as sent at the epoch, so SENTBEFORE finds it. Messages whose
//    ENVELOPE date is NIL are taken out of Dovecot's SENTBEFORE result.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { dovecotUnavailable, parseImapData, startDovecot, type Dovecot, type ImapValue } from '../helpers/dovecot.js';
import { startServe, type TestServer } from '../helpers/server.js';
import { parseMimeValue } from '../../src/message/params.js';
import { bytesToText } from '../../src/message/header.js';

const FIXTURES = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../fixtures/mime');
const files = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.eml'))
  .sort();
const skip = dovecotUnavailable();

/** An IMAP connection over TCP or TLS; responses are kept as bytes, literals included. */
class Conn {
  private data = Buffer.alloc(0);
  private waiting?: () => void;
  private tagSeq = 0;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.waiting?.();
    });
    sock.on('close', () => this.waiting?.());
    sock.on('error', () => {});
  }

  static async open(port: number, ca?: string): Promise<Conn> {
    const sock = ca ? tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' }) : net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once(ca ? 'secureConnect' : 'connect', () => resolve());
      sock.once('error', reject);
    });
    const c = new Conn(sock);
    await c.response();
    return c;
  }

  private async response(): Promise<Buffer> {
    for (;;) {
      let pos = 0;
      for (;;) {
        const nl = this.data.indexOf('\r\n', pos);
        if (nl < 0) break;
        const lit = /~?\{(\d+)\+?\}$/.exec(this.data.toString('latin1', Math.max(pos, nl - 24), nl));
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

  /** Sends a command; returns its untagged responses and the tagged status ("OK ...", "NO ...", "BAD ..."). */
  async command(...parts: (string | Buffer)[]): Promise<{ untagged: Buffer[]; status: string }> {
    const tag = `t${++this.tagSeq}`;
    this.sock.write(Buffer.concat([Buffer.from(tag + ' '), ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)), Buffer.from('\r\n')]));
    const untagged: Buffer[] = [];
    for (;;) {
      const r = await this.response();
      if (r.toString('latin1', 0, tag.length + 1) === tag + ' ') return { untagged, status: r.toString('latin1', tag.length + 1).trimEnd() };
      untagged.push(r);
    }
  }

  async ok(...parts: (string | Buffer)[]): Promise<Buffer[]> {
    const r = await this.command(...parts);
    if (!r.status.startsWith('OK')) throw new Error(`${parts.join('').slice(0, 200)}: ${r.status}`);
    return r.untagged;
  }

  close(): void {
    this.sock.destroy();
  }
}

let srv: TestServer | undefined;
let dovecot: Dovecot | undefined;
let P: Conn; // Postern
let D: Conn; // Dovecot
/** Sequence number of each fixture, the same on both servers. */
const seqs = new Map<string, number>();
/** The bytes both servers were given. */
const stored = new Map<string, Buffer>();

const DATE = '"05-Jul-2025 12:00:00 +0000"';

before(async () => {
  if (skip) return;
  [srv, dovecot] = await Promise.all([startServe(), startDovecot()]);
  P = await Conn.open(srv.ports.imaps, srv.certPEM);
  D = await Conn.open(dovecot.port);
  await P.ok('LOGIN jane@example.test secret-pass');
  await D.ok(`LOGIN "${dovecot.user}" "${dovecot.password}"`);
  let seq = 0;
  for (const f of files) {
    const msg = Buffer.from(readFileSync(join(FIXTURES, f)).toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    stored.set(f, msg);
    for (const c of [P, D]) await c.ok(`APPEND INBOX ${DATE} {${msg.length}+}\r\n`, msg);
    seqs.set(f, ++seq);
  }
  for (const c of [P, D]) await c.ok('SELECT INBOX');
  await fetchAll();
});

after(async () => {
  P?.close();
  D?.close();
  await Promise.all([srv?.close(), dovecot?.stop()]);
});

type Items = Map<string, ImapValue>;

/** FETCH data by sequence number: item name (rule 11: upper-cased) to value. */
function fetchData(untagged: Buffer[]): Map<number, Items> {
  const out = new Map<number, Items>();
  for (const r of untagged) {
    const v = parseImapData(r);
    if ((v[2] as { atom?: string })?.atom?.toUpperCase() !== 'FETCH') continue;
    const seq = v[1] as number;
    const items = out.get(seq) ?? new Map<string, ImapValue>();
    const list = v[3] as ImapValue[];
    for (let i = 0; i < list.length; i += 2) items.set((list[i] as { atom: string }).atom.toUpperCase(), list[i + 1]!);
    out.set(seq, items);
  }
  return out;
}

/** Runs the same FETCH on both servers. */
async function fetchBoth(cmd: string): Promise<{ p: Map<number, Items>; d: Map<number, Items>; pStatus: string; dStatus: string }> {
  const [pr, dr] = await Promise.all([P.command(cmd), D.command(cmd)]);
  return { p: fetchData(pr.untagged), d: fetchData(dr.untagged), pStatus: pr.status, dStatus: dr.status };
}

// ---- Normalizations of dovecot-structure.test.ts (rules 3 to 7), same code. ----

const collapse = (v: ImapValue) => (typeof v === 'string' ? v.replace(/[ \t]+/g, ' ') : v);

/** Rule 6 on an ENVELOPE value. */
function normalizeEnvelope(env: ImapValue): ImapValue {
  if (!Array.isArray(env)) return env;
  return env.map((field, i) => {
    if (i === 1) return collapse(field);
    if (i >= 2 && i <= 7 && Array.isArray(field)) return field.map((a) => (Array.isArray(a) ? [collapse(a[0]!), ...a.slice(1)] : a));
    return field;
  });
}

/** Rules 4 and 5 on a body parameter list. */
function normalizeParams(list: ImapValue): ImapValue {
  if (!Array.isArray(list)) return list;
  const pairs: [string, string][] = [];
  for (let i = 0; i < list.length; i += 2) {
    const name = String(list[i]).toLowerCase();
    const value = String(list[i + 1]);
    if (name.endsWith('*')) {
      const decoded = parseMimeValue(`x; ${name}=${value}`).params[0]!;
      pairs.push([decoded[0], bytesToText(decoded[1])]);
    } else pairs.push([name, bytesToText(value)]);
  }
  return pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).flat();
}

const lower = (v: ImapValue) => (typeof v === 'string' ? v.toLowerCase() : v);

/** Rules 3-6 on a BODY or BODYSTRUCTURE value. */
function normalizeBody(b: ImapValue): ImapValue {
  if (!Array.isArray(b)) return b;
  let i = 0;
  const out: ImapValue[] = [];
  if (Array.isArray(b[0])) {
    while (Array.isArray(b[i])) out.push(normalizeBody(b[i++]!));
    out.push(lower(b[i++]!));
    if (i < b.length) out.push(normalizeParams(b[i++]!));
  } else {
    const isMessage = lower(b[0]!) === 'message' && lower(b[1]!) === 'rfc822';
    out.push(lower(b[0]!), lower(b[1]!), normalizeParams(b[2]!), b[3]!, b[4]!, lower(b[5]!), b[6]!);
    i = 7;
    if (isMessage) out.push(normalizeEnvelope(b[i++]!), normalizeBody(b[i++]!), b[i++]!);
    else if (lower(b[0]!) === 'text') out.push(b[i++]!);
    if (i < b.length) out.push(b[i++]!);
  }
  if (i < b.length) {
    const dsp = b[i++]!;
    out.push(Array.isArray(dsp) ? [lower(dsp[0]!), normalizeParams(dsp[1]!)] : dsp);
  }
  while (i < b.length) out.push(b[i++]!);
  return out;
}

/** Rule 7: what Postern sends instead of Dovecot's BODYSTRUCTURE for the deliberately different fixtures. */
const EXPECTED_DIFFERENCES: Record<string, (dovecot: ImapValue) => ImapValue> = {
  '27-invalid-content-type.eml': (d) => {
    const parts = structuredClone(d) as ImapValue[][];
    assert.deepEqual([parts[0]![1], parts[1]!.slice(0, 2), parts[2]!.slice(0, 2)], ['', ['', ''], ['', '']]);
    parts[0]![1] = 'plain';
    for (const [k, charset] of [[1, 'us-ascii'], [2, 'utf-8']] as const) {
      const p = parts[k]!;
      parts[k] = ['text', 'plain', ['charset', charset], ...p.slice(3, 7), 0, ...p.slice(7)];
    }
    return parts;
  },
  '28-multipart-no-boundary.eml': (d) => {
    assert.deepEqual(d, [['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 0, 0, null, null, null, null], 'mixed', null, null, null, null]);
    return ['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 46, 5, null, null, null, null];
  },
  '31-base64-rfc822.eml': (d) => {
    const parts = structuredClone(d) as ImapValue[][];
    const msg = parts[0]!;
    msg[6] = (msg[6] as number) - 2;
    msg[9] = (msg[9] as number) - 1;
    return parts;
  },
};

// ---- FETCH ----

let structure: Awaited<ReturnType<typeof fetchBoth>>;
let sections: Awaited<ReturnType<typeof fetchBoth>>;
let parts: Awaited<ReturnType<typeof fetchBoth>>;
let part2: Awaited<ReturnType<typeof fetchBoth>>;

const SECTION_ITEMS = ['BODY[]', 'BODY[HEADER]', 'BODY[TEXT]', 'BODY[HEADER.FIELDS (FROM SUBJECT)]', 'BODY[]<0>', 'BODY[TEXT]<0>'];
const PART_ITEMS = ['BODY[1]', 'BODY[1.MIME]', 'BODY[1]<10>'];

async function fetchAll(): Promise<void> {
  structure = await fetchBoth('FETCH 1:* (BODYSTRUCTURE ENVELOPE RFC822.SIZE)');
  sections = await fetchBoth('FETCH 1:* (BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[HEADER.FIELDS (From Subject)] BODY.PEEK[]<0.100> BODY.PEEK[TEXT]<0.100>)');
  parts = await fetchBoth('FETCH 1:* (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[1]<10.50>)');
  part2 = await fetchBoth('FETCH 1:* (BODY.PEEK[2])');
}

/** Whether part 1 of the message is a multipart, as Dovecot's BODYSTRUCTURE says. */
function part1IsMultipart(bs: ImapValue): boolean {
  return Array.isArray(bs) && Array.isArray(bs[0]) && Array.isArray((bs[0] as ImapValue[])[0]);
}

for (const file of files) {
  test(`FETCH over IMAP matches Dovecot on ${file}`, { skip }, async () => {
    const seq = seqs.get(file)!;
    const diffs: string[] = [];
    const same = (what: string, ours: ImapValue | undefined, theirs: ImapValue | undefined) => {
      try {
        assert.deepEqual(ours, theirs);
      } catch {
        diffs.push(`${what}:\n  postern ${JSON.stringify(ours)}\n  dovecot ${JSON.stringify(theirs)}`);
      }
    };
    for (const r of [structure, sections, parts, part2]) {
      assert.match(r.pStatus, /^OK/);
      assert.match(r.dStatus, /^OK/);
    }
    const ps = structure.p.get(seq)!;
    const ds = structure.d.get(seq)!;
    same('RFC822.SIZE', ps.get('RFC822.SIZE'), ds.get('RFC822.SIZE'));
    assert.equal(ds.get('RFC822.SIZE'), stored.get(file)!.length);
    let theirs: ImapValue = ds.get('BODYSTRUCTURE')!;
    if (EXPECTED_DIFFERENCES[file]) theirs = EXPECTED_DIFFERENCES[file]!(theirs);
    same('BODYSTRUCTURE', normalizeBody(ps.get('BODYSTRUCTURE')!), normalizeBody(theirs));
    same('ENVELOPE', normalizeEnvelope(ps.get('ENVELOPE')!), normalizeEnvelope(ds.get('ENVELOPE')!));

    const stored1 = stored.get(file)!.toString('latin1');
    assert.equal(sections.d.get(seq)!.get('BODY[]'), stored1, 'rule 1 (Dovecot)');
    assert.equal(sections.p.get(seq)!.get('BODY[]'), stored1, 'rule 1 (Postern)');
    for (const item of SECTION_ITEMS) {
      let t = sections.d.get(seq)!.get(item);
      assert.notEqual(t, undefined, `Dovecot sent no ${item}`);
      const o = sections.p.get(seq)!.get(item);
      if (file.startsWith('32-') && item === 'BODY[HEADER.FIELDS (FROM SUBJECT)]' && t === `${o}\r\n`) t = o; // rule 7
      same(item, o, t);
    }
    if (!file.startsWith('28-')) {
      const multi = part1IsMultipart(ds.get('BODYSTRUCTURE')!);
      for (const item of PART_ITEMS) {
        let t = parts.d.get(seq)!.get(item);
        assert.notEqual(t, undefined, `Dovecot sent no ${item}`);
        const o = parts.p.get(seq)!.get(item);
        if (item === 'BODY[1]' && multi && t === `${o}\r\n`) t = o; // rule 9
        if (item === 'BODY[1]' && file.startsWith('31-') && t === `${o}\r\n`) t = o; // rule 7
        same(item, o, t);
      }
      assert.notEqual(part2.d.get(seq)!.get('BODY[2]'), undefined, 'Dovecot sent no BODY[2]');
      same('BODY[2]', part2.p.get(seq)!.get('BODY[2]'), part2.d.get(seq)!.get('BODY[2]'));
    }

    assert.deepEqual(diffs, []);
  });
}

// BINARY of part 1, where it is a leaf that is not a message (rule 8) and Dovecot decodes it.
for (const file of files.filter((f) => !f.startsWith('25-') && !f.startsWith('28-'))) {
  test(`BINARY.SIZE[1] and BINARY.PEEK[1] over IMAP match Dovecot on ${file}`, { skip }, async () => {
    const seq = seqs.get(file)!;
    const bs = structure.d.get(seq)!.get('BODYSTRUCTURE')!;
    const p1 = (Array.isArray(bs) && Array.isArray(bs[0]) ? bs[0] : bs) as ImapValue[];
    if (Array.isArray(p1[0]) || lower(p1[0]!) === 'message') return;
    let compared = 0;
    for (const item of ['BINARY.SIZE[1]', 'BINARY.PEEK[1]']) {
      const [pr, dr] = await Promise.all([P.command(`FETCH ${seq} (${item})`), D.command(`FETCH ${seq} (${item})`)]);
      if (!dr.status.startsWith('OK')) continue;
      assert.match(pr.status, /^OK/, `${item}: Dovecot answered ${dr.status}`);
      const name = item.replace('.PEEK', '');
      const theirs = fetchData(dr.untagged).get(seq)?.get(name);
      assert.notEqual(theirs, undefined);
      assert.deepEqual(fetchData(pr.untagged).get(seq)?.get(name), theirs, item);
      compared++;
    }
    // Dovecot refuses invalid base64 (13), invalid quoted-printable ("=ZZ", 24) and an unknown
    // transfer encoding (34); everywhere else both items are compared.
    if (!['13-bad-base64.eml', '24-qp-body.eml', '34-unknown-cte.eml'].includes(file)) assert.equal(compared, 2, 'Dovecot decoded part 1');
  });
}

// ---- SEARCH ----

/** A search string as a literal, for non-ASCII text with CHARSET UTF-8. */
const lit = (s: string): [string, Buffer] => {
  const b = Buffer.from(s, 'utf8');
  return [`{${b.length}+}\r\n`, b];
};

/** Sequence numbers of the fixtures whose name starts with the prefixes. */
const fixtureSeqs = (...prefixes: string[]) => files.filter((f) => prefixes.some((p) => f.startsWith(p))).map((f) => seqs.get(f)!);
const plus = (a: number[], b: number[]) => [...new Set([...a, ...b])].sort((x, y) => x - y);
const minus = (a: number[], b: number[]) => a.filter((n) => !b.includes(n));
/** Messages without a Date field, by Dovecot's ENVELOPE. */
const undated = () => [...structure.d].filter(([, items]) => (items.get('ENVELOPE') as ImapValue[])[0] === null).map(([seq]) => seq);

/** Expected differences in SEARCH results (rules 13-15): Postern's result from Dovecot's. */
const SEARCH_DIFFERENCES: Record<string, (dovecot: number[]) => number[]> = {
  'SUBJECT encoded words (Q)': (d) => plus(d, fixtureSeqs('07-')),
  'SUBJECT duplicate header, first': (d) => minus(d, fixtureSeqs('26-')),
  SENTBEFORE: (d) => minus(d, undated()),
};

/** Search keys with a description; the parts follow "SEARCH ". */
const SEARCHES: [string, (string | Buffer)[]][] = [
  ['FROM address', ['FROM alice']],
  ['FROM domain', ['FROM example.org']],
  ['FROM display name', ['FROM Carol']],
  ['FROM encoded-word display name', ['CHARSET UTF-8 FROM ', ...lit('Jörg')]],
  ['TO address', ['TO bob']],
  ['TO encoded-word display name', ['CHARSET UTF-8 TO ', ...lit('André')]],
  ['CC in a group', ['CC ann']],
  ['SUBJECT ASCII, case-insensitive', ['SUBJECT FWD']],
  ['SUBJECT encoded words (Q)', ['CHARSET UTF-8 SUBJECT ', ...lit('Café')]],
  ['SUBJECT encoded words (B), ISO-8859-1', ['CHARSET UTF-8 SUBJECT ', ...lit('and café')]],
  ['SUBJECT across adjacent encoded words', ['CHARSET UTF-8 SUBJECT ', ...lit('café €')]],
  ['SUBJECT raw UTF-8 header', ['CHARSET UTF-8 SUBJECT ', ...lit('Grüße aus Köln')]],
  ['SUBJECT quoted specials', ['SUBJECT "say \\"hello\\""']],
  ['SUBJECT duplicate header, first', ['SUBJECT "first subject"']],
  ['SUBJECT duplicate header, second', ['SUBJECT "second subject"']],
  ['BODY quoted-printable', ['CHARSET UTF-8 BODY ', ...lit('Café at noon')]],
  ['BODY quoted-printable soft line break', ['BODY "Soft line break"']],
  ['BODY non-ASCII in several encodings', ['CHARSET UTF-8 BODY ', ...lit('é')]],
  ['BODY base64 with a comment in the encoding field, HTML', ['BODY Hello']],
  ['BODY base64 text part', ['BODY "This is text."']],
  ['BODY not in the header', ['BODY Lunch']],
  ['BODY in an attached message', ['BODY "original text"']],
  ['TEXT header and body', ['TEXT Lunch']],
  ['TEXT body', ['TEXT "see attachments"']],
  ['HEADER field with value', ['HEADER Content-Type multipart/mixed']],
  ['HEADER with encoded words', ['CHARSET UTF-8 HEADER To ', ...lit('Quoted é')]],
  ['HEADER field present', ['HEADER MIME-Version ""']],
  ['HEADER field absent', ['HEADER X-Not-There ""']],
  ['HEADER duplicate field, second', ['HEADER Subject "second subject"']],
  ['LARGER', ['LARGER 500']],
  ['SMALLER', ['SMALLER 200']],
  ['LARGER and SMALLER', ['LARGER 300 SMALLER 1000']],
  ['NOT', ['NOT FROM a@example.com']],
  ['OR', ['OR FROM alice SUBJECT groups']],
  ['NOT OR', ['NOT OR LARGER 400 SMALLER 200']],
  ['nested OR with AND', ['OR (TO bob FROM alice) (SUBJECT nested NOT LARGER 10000)']],
  ['sequence set', ['1:5,38:*']],
  ['UID range', ['UID 5:10']],
  ['UID range to *', ['UID 30:*']],
  ['UID set and NOT UID', ['UID 3,7,20:22 NOT UID 21']],
  ['SENTBEFORE', ['SENTBEFORE 2-Jul-2025']],
  ['SENTSINCE', ['SENTSINCE 2-Jul-2025']],
  ['SENTON with a zone', ['SENTON 1-Jul-2025']],
  ['SENTON, folded Date', ['SENTON 3-Jul-2025']],
  ['SENTSINCE and SENTBEFORE', ['SENTSINCE 1-Jul-2025 SENTBEFORE 3-Jul-2025']],
  ['ON internal date', ['ON 5-Jul-2025']],
  ['SINCE internal date', ['SINCE 6-Jul-2025']],
  ['ESEARCH MIN MAX COUNT', ['RETURN (MIN MAX COUNT) FROM example.com']],
];

/** A SEARCH or ESEARCH response as text without the tag. */
function searchResult(untagged: Buffer[]): string {
  const lines = untagged.map((b) => b.toString('latin1').trimEnd()).filter((l) => /^\* (E?SEARCH)\b/.test(l));
  assert.equal(lines.length, 1, lines.join('\n'));
  return lines[0]!.replace(/\(TAG "[^"]*"\) ?/, '').trimEnd();
}

/** The numbers of a SEARCH response. */
const searchNumbers = (r: string): number[] =>
  r
    .replace(/^\* SEARCH/, '')
    .split(' ')
    .filter(Boolean)
    .map(Number);

async function searchBoth(parts: (string | Buffer)[], uid = false): Promise<{ ours: string; theirs: string }> {
  const cmd = [uid ? 'UID SEARCH ' : 'SEARCH ', ...parts];
  const [pr, dr] = await Promise.all([P.command(...cmd), D.command(...cmd)]);
  assert.match(dr.status, /^OK/, `Dovecot: ${dr.status}`);
  assert.match(pr.status, /^OK/, `Postern: ${pr.status}`);
  return { ours: searchResult(pr.untagged), theirs: searchResult(dr.untagged) };
}

for (const [name, parts] of SEARCHES) {
  test(`SEARCH ${name} matches Dovecot`, { skip }, async () => {
    // UIDs are 1 to 40 on both servers, as are the sequence numbers.
    for (const uid of [false, true]) {
      const { ours, theirs } = await searchBoth(parts, uid);
      const what = `${uid ? 'UID ' : ''}SEARCH ${parts.join('')}`;
      const fix = SEARCH_DIFFERENCES[name];
      if (!fix) {
        assert.equal(ours, theirs, what);
        continue;
      }
      const expected = fix(searchNumbers(theirs));
      assert.notDeepEqual(expected, searchNumbers(theirs), `${what}: the expected difference is gone`);
      assert.deepEqual(searchNumbers(ours), expected, what);
    }
  });
}

test('KEYWORD and flag searches after STORE on both match Dovecot', { skip }, async () => {
  for (const cmd of ['STORE 2,4,6 +FLAGS.SILENT ($Review)', 'STORE 5 +FLAGS.SILENT (\\Flagged $Review)', 'STORE 9 +FLAGS.SILENT (\\Flagged)', 'STORE 4 -FLAGS.SILENT ($Review)']) {
    for (const c of [P, D]) await c.ok(cmd);
  }
  const flags = await fetchBoth('FETCH 1:10 (FLAGS)');
  for (let n = 1; n <= 10; n++) {
    // Rule 12: without \Recent.
    const set = (m: Map<number, Items>) =>
      ((m.get(n)?.get('FLAGS') ?? []) as { atom: string }[])
        .map((f) => f.atom)
        .filter((f) => f !== '\\Recent')
        .sort();
    assert.deepEqual(set(flags.p), set(flags.d), `FLAGS of ${n}`);
  }
  for (const key of ['KEYWORD $Review', 'UNKEYWORD $Review', 'FLAGGED', 'KEYWORD $Review FLAGGED', 'OR KEYWORD $Review FLAGGED', 'NOT KEYWORD $Review', 'KEYWORD $Review UID 1:5', 'KEYWORD $Other']) {
    const { ours, theirs } = await searchBoth([key]);
    assert.equal(ours, theirs, key);
  }
  const { ours } = await searchBoth(['KEYWORD $Review']);
  assert.equal(ours, '* SEARCH 2 5 6');
});
