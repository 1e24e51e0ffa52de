// Differential test of the IMAP structure renderers against Dovecot 2.3
// (Debian package dovecot-imapd): every message of test/fixtures/mime is
// appended to a private Dovecot, and its BODYSTRUCTURE, BODY, ENVELOPE,
// BODY[section] and BINARY[section] answers are compared with Postern's.
// Dovecot speaks IMAP4rev1 only, so Postern renders with utf8: false.
//
// Normalized differences, each applied to both sides:
//
// 1. Message bytes. Dovecot stores bare LF line endings and serves CRLF
//    (RFC 5322 2.1 allows only CRLF). Postern is run on the bytes Dovecot
//    serves for BODY[], which are checked to be the fixture with bare LF
//    turned into CRLF; bare LF parsing is covered by test/message.
// 2. String forms. Quoted strings and literals are two spellings of one
//    string (RFC 9051 4.3), so responses are compared as parsed values.
// 3. Case. Media type, subtype, parameter names, transfer encoding and
//    disposition type are case-insensitive (RFC 2045 5.1 and 6.1, RFC 2183
//    2); Dovecot repeats them as written, Postern lower-cases them.
// 4. Parameter order is not significant (RFC 2045 5.1 defines a set of
//    attribute/value pairs; RFC 2231 3 orders continuations by index);
//    Dovecot lists RFC 2231 parameters after the others. Pairs are sorted.
// 5. RFC 2231 values. Dovecot joins continuations but passes "name*"
//    values as written (charset'language'%XX) and raw 8-bit values as
//    they are. Postern decodes them (RFC 9051 7.5.2: servers SHOULD
//    decode RFC 2231) and, with no UTF-8 on the connection, sends non-ASCII
//    text as name*=utf-8''%XX. Both sides are decoded to text and compared
//    under the plain name (RFC 2231 4).
// 6. ENVELOPE subject and display names. Dovecot rewrites them for display,
//    turning tabs and runs of spaces into one space; Postern sends the
//    unfolded value (RFC 5322 2.2.3 unfolding removes only the CRLF). Runs
//    of whitespace are collapsed on both sides.
// 7. Malformed fixtures where the two differ on purpose; the test states
//    what each side sends, so a change in either is noticed:
//    - 27: an invalid Content-Type. Dovecot keeps the fragments ("text" "",
//      "" ""); Postern uses text/plain; charset=us-ascii as RFC 2045 5.2
//      requires, and reads "text/plain charset=utf-8" despite the missing
//      semicolon.
//    - 28: multipart without boundary. Dovecot sends an empty multipart;
//      Postern shows the body as text/plain (RFC 2046 5.1.1 makes the
//      boundary mandatory, RFC 2045 5.2 gives the default). Sections are
//      not compared for it.
//    - 31: a base64 message/rfc822 whose encapsulated "header" has no blank
//      line. Dovecot counts the line break before the next delimiter into
//      the part; Postern leaves it to the delimiter (RFC 2046 5.1.1), so
//      the part is 2 bytes and 1 line shorter, and so is BODY[1].
//    - 32: the message ends inside its header, without a line break.
//      Postern ends the last field with CRLF in HEADER.FIELDS.NOT as in
//      HEADER.FIELDS (RFC 5322 2.2: a field ends with CRLF); Dovecot does
//      so only for HEADER.FIELDS.
// 8. BINARY[section]. Where Dovecot refuses to decode (NO, RFC 3516 allows
//    it for content it cannot decode), Postern's lenient result is not
//    compared. For a message/* part Dovecot answers empty while Postern
//    removes the transfer encoding (RFC 3516 4), so those are not compared.
// 9. The line break between a nested multipart's close delimiter and the
//    enclosing delimiter ("--inner--CRLF--outer"). Dovecot counts it into
//    BODY[n] of the nested multipart; Postern gives it to the enclosing
//    delimiter (RFC 2046 5.1.1: delimiter := CRLF dash-boundary). Dovecot's
//    value for a multipart part may thus end in one extra CRLF.
// 10. message/global. RFC 3501 has no encapsulated message/global (RFC 9051
//    and RFC 6532 3.7 add it), so with utf8: false Postern sends it as a
//    basic body, as Dovecot 2.3 does; but Postern still answers sections
//    inside it, which Dovecot does not parse, so those are not compared.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dovecotUnavailable, parseImapData, RawImap, startDovecot, type Dovecot, type ImapValue } from '../helpers/dovecot.js';
import { parseMessage, type Part } from '../../src/message/part.js';
import { decodedBody, decodedSize } from '../../src/message/decode.js';
import { findPart, renderBody, renderBodyStructure, renderEnvelope, sectionBytes, type Section } from '../../src/imapserver/structure.js';
import { parseMimeValue } from '../../src/message/params.js';
import { bytesToText } from '../../src/message/header.js';

const FIXTURES = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../fixtures/mime');
const files = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.eml'))
  .sort();
const skip = dovecotUnavailable();

let dovecot: Dovecot | undefined;
let imap: RawImap | undefined;
const uids = new Map<string, number>();

before(async () => {
  if (skip) return;
  dovecot = await startDovecot();
  imap = await RawImap.connect(dovecot.port);
  await imap.command(`LOGIN "${dovecot.user}" "${dovecot.password}"`);
  await imap.command('SELECT INBOX');
  let uid = 0;
  for (const f of files) {
    const msg = readFileSync(join(FIXTURES, f));
    await imap.command(`APPEND INBOX {${msg.length}+}\r\n`, msg);
    uids.set(f, ++uid);
  }
});

after(async () => {
  await imap?.close();
  await dovecot?.stop();
});

/** Fetch one item; returns its value, or undefined if Dovecot answered NO. */
async function fetchItem(uid: number, item: string, tolerateNo = false): Promise<ImapValue | undefined> {
  let responses: Buffer[];
  try {
    responses = await imap!.command(`UID FETCH ${uid} (${item})`);
  } catch (e) {
    if (tolerateNo) return undefined;
    throw e;
  }
  const fetch = responses.map((r) => parseImapData(r)).find((v) => (v[2] as { atom: string })?.atom === 'FETCH');
  const items = fetch![3] as ImapValue[];
  for (let i = 0; i < items.length; i += 2) {
    const name = (items[i] as { atom: string }).atom;
    if (name !== 'UID') return items[i + 1];
  }
  throw new Error(`no ${item} in response`);
}

const parsed = (b: Buffer) => parseImapData(b)[0]!;

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
      // Reuse the parser's RFC 2231 decoding to read the wire form back.
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
    out.push(lower(b[i++]!)); // subtype
    if (i < b.length) out.push(normalizeParams(b[i++]!));
  } else {
    const isMessage = lower(b[0]!) === 'message' && lower(b[1]!) === 'rfc822';
    out.push(lower(b[0]!), lower(b[1]!), normalizeParams(b[2]!), b[3]!, b[4]!, lower(b[5]!), b[6]!);
    i = 7;
    if (isMessage) out.push(normalizeEnvelope(b[i++]!), normalizeBody(b[i++]!), b[i++]!);
    else if (lower(b[0]!) === 'text') out.push(b[i++]!);
    if (i < b.length) out.push(b[i++]!); // md5
  }
  if (i < b.length) {
    const dsp = b[i++]!;
    out.push(Array.isArray(dsp) ? [lower(dsp[0]!), normalizeParams(dsp[1]!)] : dsp);
  }
  while (i < b.length) out.push(b[i++]!);
  return out;
}

/** Rule 7: what Postern sends instead of Dovecot's answer for the deliberately different fixtures. */
const EXPECTED_DIFFERENCES: Record<string, (dovecot: ImapValue, ext: boolean) => ImapValue> = {
  '27-invalid-content-type.eml': (d) => {
    const parts = structuredClone(d) as ImapValue[][];
    assert.deepEqual([parts[0]![1], parts[1]!.slice(0, 2), parts[2]!.slice(0, 2)], ['', ['', ''], ['', '']]);
    parts[0]![1] = 'plain';
    for (const [k, charset] of [[1, 'us-ascii'], [2, 'utf-8']] as const) {
      const p = parts[k]!;
      // basic body becomes text: type, subtype, charset parameter, and a line count after the size
      parts[k] = ['text', 'plain', ['charset', charset], ...p.slice(3, 7), 0, ...p.slice(7)];
    }
    return parts;
  },
  '28-multipart-no-boundary.eml': (d, ext) => {
    assert.deepEqual(d, [['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 0, 0, ...(ext ? [null, null, null, null] : [])], 'mixed', ...(ext ? [null, null, null, null] : [])]);
    return ['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 46, 5, ...(ext ? [null, null, null, null] : [])];
  },
  '31-base64-rfc822.eml': (d) => {
    const parts = structuredClone(d) as ImapValue[][];
    const msg = parts[0]!;
    msg[6] = (msg[6] as number) - 2;
    msg[9] = (msg[9] as number) - 1;
    return parts;
  },
};

function allPaths(root: Part): number[][] {
  const out: number[][] = [];
  const walk = (prefix: number[]) => {
    for (let n = 1; findPart(root, [...prefix, n]); n++) {
      out.push([...prefix, n]);
      // rule 10
      if (findPart(root, [...prefix, n])!.subtype !== 'global') walk([...prefix, n]);
    }
  };
  walk([]);
  return out;
}

for (const file of files) {
  test(`matches Dovecot on ${file}`, { skip }, async () => {
    const uid = uids.get(file)!;
    const fixture = readFileSync(join(FIXTURES, file));
    const served = Buffer.from((await fetchItem(uid, 'BODY.PEEK[]')) as string, 'latin1');
    assert.deepEqual(served, Buffer.from(fixture.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1'), 'rule 1');
    const root = parseMessage(served);
    const opts = { utf8: false };

    for (const [item, ours, ext] of [
      ['BODYSTRUCTURE', renderBodyStructure(root, opts), true],
      ['BODY', renderBody(root, opts), false],
    ] as const) {
      let theirs: ImapValue = (await fetchItem(uid, item)) ?? null;
      const fix = EXPECTED_DIFFERENCES[file];
      if (fix) theirs = fix(theirs, ext);
      assert.deepEqual(normalizeBody(parsed(ours)), normalizeBody(theirs), item);
    }
    assert.deepEqual(normalizeEnvelope(parsed(renderEnvelope(root.envelope, opts))), normalizeEnvelope((await fetchItem(uid, 'ENVELOPE'))!), 'ENVELOPE');

    if (file.startsWith('28-')) return;
    const sections: [string, Section][] = [
      ['HEADER', { part: [], text: 'HEADER' }],
      ['TEXT', { part: [], text: 'TEXT' }],
      ['HEADER.FIELDS (From To Content-Type)', { part: [], text: 'HEADER.FIELDS', fields: ['From', 'To', 'Content-Type'] }],
      ['HEADER.FIELDS.NOT (Subject Received)', { part: [], text: 'HEADER.FIELDS.NOT', fields: ['Subject', 'Received'] }],
    ];
    for (const path of allPaths(root)) {
      const p = findPart(root, path)!;
      const n = path.join('.');
      sections.push([n, { part: path }], [`${n}.MIME`, { part: path, text: 'MIME' }]);
      if (p.message && p.subtype === 'rfc822') {
        sections.push(
          [`${n}.HEADER`, { part: path, text: 'HEADER' }],
          [`${n}.TEXT`, { part: path, text: 'TEXT' }],
          [`${n}.HEADER.FIELDS (Subject)`, { part: path, text: 'HEADER.FIELDS', fields: ['Subject'] }],
        );
      }
      if (!p.parts && p.type !== 'message') {
        const size = await fetchItem(uid, `BINARY.SIZE[${n}]`, true);
        const content = await fetchItem(uid, `BINARY.PEEK[${n}]`, true);
        if (size !== undefined && content !== undefined) {
          assert.equal(decodedSize(served, p), size, `BINARY.SIZE[${n}]`);
          assert.deepEqual(decodedBody(served, p), Buffer.from(content as string, 'latin1'), `BINARY[${n}]`);
        }
      }
    }
    for (const [spec, section] of sections) {
      let theirs = (await fetchItem(uid, `BODY.PEEK[${spec}]`)) as string | null;
      const ours = sectionBytes(served, root, section)?.toString('latin1') ?? null;
      if (section.part.length && !section.text && findPart(root, section.part)!.parts && theirs === ours + '\r\n') theirs = ours; // rule 9
      if (file.startsWith('31-') && spec === '1' && theirs === ours + '\r\n') theirs = ours; // rule 7
      if (file.startsWith('32-') && section.text === 'HEADER.FIELDS.NOT' && theirs + '\r\n' === ours) theirs = ours; // rule 7
      assert.equal(ours, theirs, `BODY[${spec}]`);
    }
  });
}
