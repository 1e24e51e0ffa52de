// IMAP message commands over raw sockets: APPEND (MULTIAPPEND, large literals, limits),
// COPY, MOVE, REPLACE with UIDPLUS codes, and CONDSTORE/QRESYNC.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

let srv: TestServer;
before(async () => {
  srv = await startServe({ domains: '' });
});
after(async () => {
  await srv?.close();
});

async function session(): Promise<Raw> {
  const c = await Raw.connectTLS(srv.ports.imaps, srv.certPEM);
  await c.line();
  assert.match((await c.imap('l', 'LOGIN jane@example.test secret-pass')).status, /^OK/);
  return c;
}

/** Sends a command with synchronizing literals, waiting for each continuation. */
async function withLiterals(c: Raw, tag: string, pieces: (string | Buffer)[]): Promise<{ untagged: string[]; status: string }> {
  // pieces alternate: command text ending in {n}, literal, text, literal, ..., final text.
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i]!;
    if (i % 2 === 0) {
      c.write(i === 0 ? `${tag} ${piece}` : piece);
      if (i < pieces.length - 1) {
        c.write('\r\n');
        const l = await c.line();
        if (!l.startsWith('+')) return { untagged: [], status: l.slice(tag.length + 1) };
      }
    } else c.write(piece);
  }
  c.write('\r\n');
  return c.imapUntil(tag);
}

const msg = (subject: string, body = 'hello') => Buffer.from(`From: a@example.org\r\nSubject: ${subject}\r\n\r\n${body}\r\n`);

test('APPEND stores flags, date and bytes; MULTIAPPEND is one transaction; APPENDUID', async () => {
  const c = await session();
  const m1 = msg('one');
  const r = await withLiterals(c, 'a1', [`APPEND Drafts (\\Draft $Work) "01-Feb-2024 10:00:00 +0100" {${m1.length}}`, m1, '']);
  assert.match(r.status, /^OK \[APPENDUID \d+ 1\] /);
  const m2 = msg('two');
  const m3 = msg('three');
  const r2 = await withLiterals(c, 'a2', [`APPEND Drafts {${m2.length}+}\r\n${m2.toString()} (\\Seen) {${m3.length}}`, m3, '']);
  assert.match(r2.status, /^OK \[APPENDUID \d+ 2:3\] /);
  await c.imap('s', 'SELECT Drafts');
  const f = await c.imap('f', 'FETCH 1:3 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])');
  const all = f.untagged.join('\n');
  assert.match(all, /^\* 1 FETCH \(FLAGS \(\\Draft \$Work\) INTERNALDATE "01-Feb-2024 09:00:00 \+0000" RFC822.SIZE 44 BODY\[\] \{44\}/);
  assert.ok(all.includes('Subject: one'));
  assert.match(all, /\* 3 FETCH \(FLAGS \(\\Seen\)/);
  // A mailbox that does not exist: TRYCREATE.
  const r3 = await withLiterals(c, 'a3', [`APPEND Nonexistent {${m1.length}}`, m1, '']);
  assert.match(r3.status, /^NO \[TRYCREATE\]/);
  c.close();
});

test('APPEND of a large message streams it; over APPENDLIMIT is refused before the data', async () => {
  const c = await session();
  const cap = await c.imap('c', 'CAPABILITY');
  const limit = Number(/APPENDLIMIT=(\d+)/.exec(cap.untagged[0]!)![1]);
  assert.equal(limit, 100 * 1024 * 1024);
  const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(3 * 1024 * 1024, 'abcdefghij\r\n')]);
  const r = await withLiterals(c, 'b1', [`APPEND INBOX {${big.length}}`, big, '']);
  assert.match(r.status, /^OK \[APPENDUID/);
  const uid = Number(/APPENDUID \d+ (\d+)/.exec(r.status)![1]);
  await c.imap('s', 'EXAMINE INBOX');
  c.write(`f UID FETCH ${uid} BODY.PEEK[]\r\n`);
  const head = await c.line();
  const n = Number(/\{(\d+)\}$/.exec(head)![1]);
  assert.equal(n, big.length);
  assert.ok((await c.bytes(n)).equals(big));
  await c.imapUntil('f');
  c.write(`t APPEND INBOX {${limit + 1}}\r\n`);
  assert.match(await c.line(), /^t NO \[TOOBIG\]/);
  assert.match((await c.imap('n', 'NOOP')).status, /^OK/);
  c.close();
});

test('COPY and MOVE give COPYUID; MOVE expunges from the source', async () => {
  const c = await session();
  await c.imap('cr', 'CREATE Work');
  for (const s of ['m1', 'm2', 'm3']) {
    const m = msg(s);
    await withLiterals(c, 'a', [`APPEND Work {${m.length}}`, m, '']);
  }
  await c.imap('s', 'SELECT Work');
  const cp = await c.imap('c', 'UID COPY 1:2 Archive');
  assert.match(cp.status, /^OK \[COPYUID \d+ 1:2 \d+:\d+\] /);
  const mv = await c.imap('m', 'MOVE 2 Trash');
  assert.match(mv.untagged[0]!, /^\* OK \[COPYUID \d+ 2 \d+\]/);
  assert.equal(mv.untagged[1], '* 2 EXPUNGE');
  const st = await c.imap('st', 'STATUS Work (MESSAGES)');
  assert.match(st.untagged[0]!, /MESSAGES 2/);
  const nomb = await c.imap('x', 'COPY 1 Nowhere');
  assert.match(nomb.status, /^NO \[TRYCREATE\]/);
  // Copied message is byte-identical.
  const src = await c.imap('f', 'UID FETCH 1 BODY.PEEK[TEXT]');
  await c.imap('s2', 'EXAMINE Archive');
  const dst = await c.imap('f2', 'FETCH 1 BODY.PEEK[TEXT]');
  assert.equal(src.untagged.slice(1).join('\n'), dst.untagged.slice(1).join('\n'));
  c.close();
});

test('REPLACE swaps a message for a new version', async () => {
  const c = await session();
  await c.imap('s', 'SELECT Drafts');
  const before = (await c.imap('st', 'STATUS Drafts (MESSAGES)')).untagged[0]!;
  const m = msg('one, edited');
  const r = await withLiterals(c, 'r', [`UID REPLACE 1 Drafts (\\Draft) {${m.length}}`, m, '']);
  assert.match(r.status, /^OK/);
  assert.ok(r.untagged.some((l) => /^\* OK \[APPENDUID \d+ \d+\]/.test(l)));
  assert.ok(r.untagged.includes('* 1 EXPUNGE'));
  const after = (await c.imap('st2', 'STATUS Drafts (MESSAGES)')).untagged[0]!;
  assert.equal(before, after);
  c.close();
});

test('CONDSTORE: MODSEQ in FETCH, CHANGEDSINCE, UNCHANGEDSINCE with MODIFIED', async () => {
  const a = await session();
  const b = await session();
  const sel = await a.imap('s', 'SELECT Work (CONDSTORE)');
  assert.ok(sel.untagged.some((l) => /^\* OK \[HIGHESTMODSEQ \d+\]/.test(l)));
  const f = await a.imap('f', 'FETCH 1:* (UID MODSEQ)');
  const modseqs = f.untagged.map((l) => Number(/MODSEQ \((\d+)\)/.exec(l)![1]));
  const base = Math.max(...modseqs);
  await b.imap('s', 'SELECT Work');
  await b.imap('st', 'STORE 1 +FLAGS (\\Flagged)');
  const ch = await a.imap('f2', `FETCH 1:* (FLAGS) (CHANGEDSINCE ${base})`);
  // Message 1 changed (reported, perhaps also as the other session's unsolicited update); 2 did not.
  assert.ok(ch.untagged.some((l) => /^\* 1 FETCH .*\\Flagged.*MODSEQ/.test(l)), ch.untagged.join('\n'));
  assert.ok(!ch.untagged.some((l) => /^\* 2 FETCH/.test(l)), ch.untagged.join('\n'));
  const cond = await a.imap('u', `STORE 1:2 (UNCHANGEDSINCE ${base}) +FLAGS (\\Seen)`);
  assert.match(cond.status, /^OK \[MODIFIED 1\]/);
  a.close();
  b.close();
});

test('QRESYNC: SELECT reports what vanished and changed; expunges come as VANISHED', async () => {
  const a = await session();
  assert.match((await a.imap('e', 'ENABLE QRESYNC')).untagged[0]!, /ENABLED.*QRESYNC/);
  const sel = await a.imap('s', 'SELECT Archive');
  const uidvalidity = Number(/UIDVALIDITY (\d+)/.exec(sel.untagged.join(' '))![1]);
  const hms = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.untagged.join(' '))![1]);
  await a.imap('st', 'STORE 1 +FLAGS.SILENT (\\Deleted)');
  const ex = await a.imap('x', 'EXPUNGE');
  assert.deepEqual(ex.untagged, ['* VANISHED 1']);
  await a.imap('u', 'UNSELECT');
  const re = await a.imap('s2', `SELECT Archive (QRESYNC (${uidvalidity} ${hms} 1:10))`);
  assert.ok(re.untagged.includes('* VANISHED (EARLIER) 1'), re.untagged.join('\n'));
  a.close();
});

test('FETCH SAVEDATE and PREVIEW', async () => {
  const c = await session();
  const m = Buffer.from('From: a@example.org\r\nSubject: pv\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHall=C3=B6 there,\r\n> quoted old text\r\nthe   real\r\ncontent.\r\n-- \r\nsignature\r\n');
  await withLiterals(c, 'a', [`APPEND INBOX {${m.length}}`, m, '']);
  await c.imap('e', 'ENABLE UTF8=ACCEPT');
  await c.imap('s', 'EXAMINE INBOX');
  const r = await c.imap('f', 'FETCH * (SAVEDATE PREVIEW)');
  assert.match(r.status, /^OK/);
  assert.match(r.untagged[0]!, /SAVEDATE "\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d \+0000" PREVIEW "Hallö there, the real content\."/);
  c.close();
});

test('ENVELOPE and BODYSTRUCTURE fetched again are the same, rendered for each session\'s UTF8=ACCEPT state', async () => {
  const m = Buffer.from('From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\nSubject: Grüße aus Köln\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; name="Grüße.txt"\r\n\r\nhi\r\n--b--\r\n');
  const a = await session();
  await withLiterals(a, 'a', [`APPEND Archive {${m.length}}`, m, '']);
  await a.imap('s', 'EXAMINE Archive');
  const fetch = async (c: Raw) => (await c.imap('f', 'FETCH * (ENVELOPE BODYSTRUCTURE BODY)')).untagged.join('\n');
  const plain = await fetch(a);
  // RFC 3501 has no 8-bit quoted strings: the subject is a literal.
  assert.match(plain, /ENVELOPE \(NIL \{17\}\n/);
  assert.equal(await fetch(a), plain);
  const b = await session();
  await b.imap('e', 'ENABLE UTF8=ACCEPT');
  await b.imap('s', 'EXAMINE Archive');
  const utf8 = await fetch(b);
  assert.match(utf8, /"Grüße aus Köln"/);
  assert.equal(await fetch(b), utf8);
  // The first session still gets its own form.
  assert.equal(await fetch(a), plain);
  a.close();
  b.close();
});

test('UIDONLY: UIDFETCH responses, VANISHED, sequence numbers refused', async () => {
  const c = await session();
  assert.match((await c.imap('e', 'ENABLE UIDONLY')).untagged[0]!, /ENABLED UIDONLY/);
  await c.imap('s', 'SELECT Archive');
  const bad = await c.imap('f', 'FETCH 1 FLAGS');
  assert.match(bad.status, /^BAD \[UIDREQUIRED\]/);
  const r = await c.imap('u', 'UID FETCH 1:* (FLAGS)');
  assert.ok(r.untagged.length > 0);
  for (const l of r.untagged) assert.match(l, /^\* \d+ UIDFETCH \(FLAGS \([^)]*\)\)$/);
  const uid = Number(/^\* (\d+)/.exec(r.untagged[0]!)![1]);
  await c.imap('st', `UID STORE ${uid} +FLAGS.SILENT (\\Deleted)`);
  const x = await c.imap('x', `UID EXPUNGE ${uid}`);
  assert.deepEqual(x.untagged, [`* VANISHED ${uid}`]);
  c.close();
});

test('NOTIFY: STATUS for new mail in other mailboxes and LIST for new mailboxes, without polling', async () => {
  const a = await session();
  const b = await session();
  await a.imap('s', 'SELECT INBOX');
  const r = await a.imap('n', 'NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge MailboxName))');
  assert.match(r.status, /^OK/);
  const bad = await a.imap('n2', 'NOTIFY SET (personal (AnnotationChange))');
  assert.match(bad.status, /^NO \[BADEVENT/);
  // Another session appends to Archive; a hears about it without sending a command.
  const m = msg('notified');
  b.write(`x APPEND Archive {${m.length}+}\r\n`);
  b.write(m);
  b.write('\r\n');
  await b.imapUntil('x');
  assert.match(await a.line(), /^\* STATUS "Archive" \(MESSAGES \d+ UIDNEXT \d+ UNSEEN \d+\)$/);
  await b.imap('c', 'CREATE Projects');
  assert.equal(await a.line(), '* LIST () "/" "Projects"');
  a.close();
  b.close();
});
