// IMAP mailbox commands over real sockets: CREATE (with parents and special use), DELETE,
// RENAME, subscriptions, LIST with LIST-EXTENDED/LIST-STATUS/LIST-METADATA, STATUS,
// METADATA and QUOTA, with raw commands and with imapflow.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ImapFlow } from 'imapflow';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';
import { editDomains } from '../smtpserver/helpers.js';

let srv: TestServer;
before(async () => {
  srv = await startServe();
  // Deliveries to a nested mailbox create it without its parent: a hierarchy gap.
  await editDomains(srv, '        Mailbox: Archive', '      jane.lists@example.test:\n        Mailbox: Lists/foo\n');
});
after(async () => {
  await srv?.close();
});

async function session(): Promise<Raw> {
  const c = await Raw.connectTLS(srv.ports.imaps, srv.certPEM);
  assert.match(await c.line(), /^\* OK/);
  assert.match((await c.imap('l', 'LOGIN jane@example.test secret-pass')).status, /^OK/);
  return c;
}

async function ok(c: Raw, cmd: string): Promise<string[]> {
  const r = await c.imap('t', cmd);
  assert.match(r.status, /^OK/, `${cmd}: ${r.status}`);
  return r.untagged;
}

async function status(c: Raw, cmd: string): Promise<string> {
  return (await c.imap('t', cmd)).status;
}

async function append(c: Raw, mailbox: string, subject: string, flags = ''): Promise<void> {
  const m = `From: a@example.org\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`;
  await ok(c, `APPEND ${mailbox} ${flags}{${m.length}+}\r\n${m}`);
}

async function smtpDeliver(rcpt: string, subject: string): Promise<void> {
  const c = await Raw.connect(srv.ports.smtp);
  await c.reply();
  await c.cmd('EHLO x.example');
  await c.cmd('MAIL FROM:<a@example.org>');
  assert.equal((await c.cmd(`RCPT TO:<${rcpt}>`)).code, 250);
  await c.cmd('DATA');
  assert.equal((await c.cmd(`From: a@example.org\r\nSubject: ${subject}\r\n\r\nhi\r\n.`)).code, 250);
  c.close();
}

/** LIST responses as "attrs|name|extra". */
function lists(untagged: string[], kind = 'LIST'): string[] {
  return untagged.flatMap((l) => {
    const m = new RegExp(`^\\* ${kind} \\(([^)]*)\\) "/" ("(?:[^"\\\\]|\\\\.)*"|\\S+)(.*)$`).exec(l);
    return m ? [`${m[1]}|${m[2]!.replace(/^"|"$/g, '')}${m[3] ? '|' + m[3].trim() : ''}`] : [];
  });
}

function db(): Database.Database {
  return new Database(path.join(srv.dataDir, 'accounts', 'jane', 'index.db'), { readonly: true });
}

test('capabilities of the mailbox extensions', async () => {
  const c = await session();
  const cap = (await ok(c, 'CAPABILITY'))[0]!.split(' ');
  for (const want of ['CHILDREN', 'SPECIAL-USE', 'CREATE-SPECIAL-USE', 'LIST-EXTENDED', 'LIST-STATUS', 'STATUS=SIZE', 'METADATA', 'LIST-METADATA', 'QUOTA', 'QUOTA=RES-STORAGE', 'NAMESPACE']) {
    assert.ok(cap.includes(want), `missing ${want}`);
  }
  c.close();
});

test('CREATE makes missing parents; names are validated and unique regardless of case', async () => {
  const c = await session();
  await ok(c, 'CREATE a/b/c');
  assert.deepEqual(lists(await ok(c, 'LIST "" "a*"')), ['\\HasChildren|a', '\\HasChildren|a/b', '\\HasNoChildren|a/b/c']);
  assert.match(await status(c, 'CREATE a/b'), /^NO \[ALREADYEXISTS\]/);
  assert.match(await status(c, 'CREATE A/B'), /^NO \[ALREADYEXISTS\]/);
  assert.match(await status(c, 'CREATE inbox'), /^NO \[ALREADYEXISTS\]/);
  // A child takes the spelling of its existing parent.
  await ok(c, 'CREATE A/new');
  assert.deepEqual(lists(await ok(c, 'LIST "" "a/%"')), ['\\HasChildren|a/b', '\\HasNoChildren|a/new']);
  await ok(c, 'DELETE a/new');
  // Below INBOX: any spelling of INBOX is INBOX, shown in upper case.
  await ok(c, 'CREATE inbox/Sub');
  assert.deepEqual(lists(await ok(c, 'LIST "" "INBOX/*"')), ['\\HasNoChildren|INBOX/Sub']);
  assert.deepEqual(lists(await ok(c, 'LIST "" "inbox/%"')), ['\\HasNoChildren|INBOX/Sub']);
  assert.deepEqual(lists(await ok(c, 'LIST "" "INBOX"')), ['\\HasChildren|INBOX']);
  assert.match(await status(c, 'CREATE INBOX/sub'), /^NO \[ALREADYEXISTS\]/);
  assert.match((await c.imap('s', 'SELECT Inbox/SUB')).status, /^OK/);
  // Invalid names.
  for (const bad of ['"a//b"', '"x/../y"', '"#news"', '"star*"', '"pct%"', '"/lead"', '" pad"']) {
    assert.match(await status(c, `CREATE ${bad}`), /^NO \[CANNOT\]/, bad);
  }
  // A trailing separator declares children to come; the mailbox is created.
  await ok(c, 'CREATE t/');
  assert.deepEqual(lists(await ok(c, 'LIST "" t')), ['\\HasNoChildren|t']);
  c.close();
});

test('CREATE with special use (RFC 6154): one mailbox per use, unsupported uses refused', async () => {
  const c = await session();
  assert.match(await status(c, 'CREATE Bin (USE (\\Trash))'), /^NO \[USEATTR\]/);
  assert.match(await status(c, 'CREATE Everything (USE (\\All))'), /^NO \[USEATTR\]/);
  assert.match(await status(c, 'CREATE Two (USE (\\Junk \\Drafts))'), /^NO \[USEATTR\]/);
  assert.match(await status(c, 'CREATE Odd (COLOR red)'), /^BAD/);
  assert.deepEqual(lists(await ok(c, 'LIST "" "Bin"')), []);
  await ok(c, 'DELETE Trash');
  await ok(c, 'CREATE Bin/Old (USE (\\trash))');
  assert.deepEqual(lists(await ok(c, 'LIST "" "Bin*"')), ['\\HasChildren|Bin', '\\HasNoChildren \\Trash|Bin/Old']);
  await ok(c, 'CREATE Plain (USE ())');
  c.close();
});

test('DELETE: INBOX, missing and parent mailboxes refused; messages go, UIDVALIDITY is not reused', async () => {
  const c = await session();
  assert.match(await status(c, 'DELETE INBOX'), /^NO/);
  assert.match(await status(c, 'DELETE Nope'), /^NO \[NONEXISTENT\]/);
  await ok(c, 'CREATE Doomed/Child');
  assert.match(await status(c, 'DELETE Doomed'), /^NO \[HASCHILDREN\]/);
  await ok(c, 'DELETE Doomed/Child');
  await append(c, 'Doomed', 'one');
  await append(c, 'Doomed', 'two');
  const before = (await ok(c, 'STATUS Doomed (UIDVALIDITY MESSAGES)'))[0]!;
  const uv = Number(/UIDVALIDITY (\d+)/.exec(before)![1]);
  assert.match(before, /MESSAGES 2/);
  const d = db();
  const ids = d.prepare("SELECT id FROM message WHERE mailbox_id = (SELECT id FROM mailbox WHERE name = 'Doomed')").pluck().all() as number[];
  assert.equal(ids.length, 2);
  await ok(c, 'SETMETADATA Doomed (/private/comment "gone soon")');
  await ok(c, 'DELETE Doomed');
  assert.equal(d.prepare(`SELECT count(*) FROM message WHERE id IN (${ids.join(',')})`).pluck().get(), 0);
  // The files are deleted later through removedfile.
  assert.equal(d.prepare(`SELECT count(*) FROM removedfile WHERE id IN (${ids.join(',')})`).pluck().get(), 2);
  assert.deepEqual(lists(await ok(c, 'LIST "" "Doomed*"')), []);
  await ok(c, 'CREATE Doomed');
  const again = (await ok(c, 'STATUS Doomed (UIDVALIDITY MESSAGES UIDNEXT)'))[0]!;
  assert.ok(Number(/UIDVALIDITY (\d+)/.exec(again)![1]) > uv, again);
  assert.match(again, /MESSAGES 0 UIDNEXT 1/);
  // Metadata went with the mailbox.
  assert.deepEqual(await ok(c, 'GETMETADATA Doomed /private/comment'), []);
  d.close();
  c.close();
});

test('DELETE of a selected mailbox: this session leaves it, others get BYE', async () => {
  const a = await session();
  const b = await session();
  await ok(a, 'CREATE Busy');
  await append(a, 'Busy', 'x');
  await ok(b, 'SELECT Busy');
  await ok(a, 'SELECT Busy');
  const r = await ok(a, 'DELETE Busy');
  assert.ok(r.some((l) => /^\* OK \[CLOSED\]/.test(l)), r.join('\n'));
  assert.match(await status(a, 'FETCH 1 FLAGS'), /^BAD/);
  assert.match(await b.line(), /^\* BYE /);
  await assert.rejects(b.line(), /connection closed/);
  // An idling session is told too.
  await ok(a, 'CREATE Busy2');
  const i = await session();
  await ok(i, 'SELECT Busy2');
  i.write('i IDLE\r\n');
  assert.match(await i.line(), /^\+ /);
  await ok(a, 'DELETE Busy2');
  assert.match(await i.line(), /^\* BYE /);
  await assert.rejects(i.line(), /connection closed/);
  a.close();
});

test('RENAME moves children, creates parents, keeps UIDVALIDITY and special use', async () => {
  const c = await session();
  await ok(c, 'CREATE r1/r2/r3');
  await append(c, 'r1/r2', 'kept');
  const uv = /UIDVALIDITY (\d+)/.exec((await ok(c, 'STATUS r1/r2 (UIDVALIDITY)'))[0]!)![1];
  const other = await session();
  await ok(other, 'SELECT r1/r2');
  await ok(c, 'RENAME r1 n1/m1');
  assert.deepEqual(lists(await ok(c, 'LIST "" "r1*"')), []);
  assert.deepEqual(lists(await ok(c, 'LIST "" "n1*"')), ['\\HasChildren|n1', '\\HasChildren|n1/m1', '\\HasChildren|n1/m1/r2', '\\HasNoChildren|n1/m1/r2/r3']);
  const st = (await ok(c, 'STATUS n1/m1/r2 (UIDVALIDITY MESSAGES)'))[0]!;
  assert.match(st, new RegExp(`UIDVALIDITY ${uv} MESSAGES 1`));
  // The other session keeps the mailbox selected.
  assert.ok((await ok(other, 'FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]')).some((l) => l.includes('Subject: kept')));
  other.close();
  // Errors.
  assert.match(await status(c, 'RENAME nothere x'), /^NO \[NONEXISTENT\]/);
  assert.match(await status(c, 'RENAME n1 Sent'), /^NO \[ALREADYEXISTS\]/);
  assert.match(await status(c, 'RENAME n1 n1/below'), /^NO \[CANNOT\]/);
  assert.match(await status(c, 'RENAME n1 "bad//name"'), /^NO \[CANNOT\]/);
  assert.match(await status(c, 'RENAME n1 INBOX'), /^NO \[ALREADYEXISTS\]/);
  // Only the case changes.
  await ok(c, 'RENAME n1 N1');
  assert.deepEqual(lists(await ok(c, 'LIST "" "N1/%"')), ['\\HasChildren|N1/m1']);
  // Special use stays with the mailbox.
  await ok(c, 'RENAME Sent "Sent Items"');
  assert.deepEqual(lists(await ok(c, 'LIST "" "Sent*"')), ['\\HasNoChildren \\Sent|Sent Items']);
  c.close();
});

test('RENAME INBOX moves its messages to a new mailbox and leaves INBOX and its children', async () => {
  const c = await session();
  await append(c, 'INBOX', 'first');
  await append(c, 'INBOX', 'second');
  const n = Number(/MESSAGES (\d+)/.exec((await ok(c, 'STATUS INBOX (MESSAGES)'))[0]!)![1]);
  assert.ok(n >= 2);
  const watcher = await session();
  await ok(watcher, 'SELECT INBOX');
  await ok(c, 'RENAME INBOX Old/Inbox');
  assert.match((await ok(c, 'STATUS INBOX (MESSAGES UIDNEXT)'))[0]!, /MESSAGES 0 /);
  assert.match((await ok(c, 'STATUS Old/Inbox (MESSAGES UIDNEXT)'))[0]!, new RegExp(`MESSAGES ${n} UIDNEXT ${n + 1}\\)`));
  assert.deepEqual(lists(await ok(c, 'LIST "" "INBOX*"')), ['\\HasChildren|INBOX', '\\HasNoChildren|INBOX/Sub']);
  // A session with INBOX selected sees the messages go.
  const noop = await ok(watcher, 'NOOP');
  assert.equal(noop.filter((l) => /^\* \d+ EXPUNGE$/.test(l)).length, n, noop.join('\n'));
  await ok(c, 'SELECT Old/Inbox');
  assert.ok((await ok(c, 'FETCH 1:* BODY.PEEK[HEADER.FIELDS (SUBJECT)]')).some((l) => l.includes('Subject: second')));
  assert.match(await status(c, 'RENAME INBOX Old/Inbox'), /^NO \[ALREADYEXISTS\]/);
  watcher.close();
  c.close();
});

test('SUBSCRIBE, UNSUBSCRIBE and LSUB; subscriptions outlive DELETE and follow RENAME', async () => {
  const c = await session();
  await ok(c, 'CREATE s1/child');
  await ok(c, 'SUBSCRIBE s1/child');
  await ok(c, 'SUBSCRIBE s1/child');
  assert.deepEqual(lists(await ok(c, 'LSUB "" "s1*"'), 'LSUB'), ['\\HasNoChildren|s1/child']);
  // "%" stops at the unsubscribed parent, which LSUB shows as \Noselect (RFC 3501 6.3.9).
  assert.deepEqual(lists(await ok(c, 'LSUB "" "s%"'), 'LSUB'), ['\\Noselect \\HasChildren|s1']);
  // A name need not exist to be subscribed.
  await ok(c, 'SUBSCRIBE future');
  assert.deepEqual(lists(await ok(c, 'LIST (SUBSCRIBED) "" "future"')), ['\\NonExistent \\Subscribed|future']);
  await ok(c, 'UNSUBSCRIBE future');
  await ok(c, 'UNSUBSCRIBE future');
  assert.deepEqual(lists(await ok(c, 'LIST (SUBSCRIBED) "" "future"')), []);
  await ok(c, 'RENAME s1 s2');
  assert.deepEqual(lists(await ok(c, 'LIST (SUBSCRIBED) "" "s*"')), ['\\NonExistent \\Subscribed|s1/child', '\\HasNoChildren \\Subscribed|s2/child']);
  await ok(c, 'DELETE s2/child');
  assert.deepEqual(lists(await ok(c, 'LIST (SUBSCRIBED) "" "s2*"')), ['\\NonExistent \\Subscribed|s2/child']);
  assert.deepEqual(lists(await ok(c, 'LSUB "" "s2/*"'), 'LSUB'), ['\\Noselect|s2/child']);
  // Subscribing matches names regardless of case, stored as the mailbox is spelled.
  await ok(c, 'SUBSCRIBE S2');
  assert.deepEqual(lists(await ok(c, 'LSUB "" "s2"'), 'LSUB'), ['\\HasNoChildren|s2']);
  await ok(c, 'UNSUBSCRIBE S2');
  assert.deepEqual(lists(await ok(c, 'LSUB "" "s2"'), 'LSUB'), []);
  c.close();
});

test('LIST: wildcards, reference, patterns, selection and return options', async () => {
  const c = await session();
  await ok(c, 'CREATE w/x/y');
  await ok(c, 'CREATE w/z');
  assert.deepEqual(lists(await ok(c, 'LIST "" "w/%"')), ['\\HasChildren|w/x', '\\HasNoChildren|w/z']);
  assert.deepEqual(lists(await ok(c, 'LIST "" "w/*"')), ['\\HasChildren|w/x', '\\HasNoChildren|w/x/y', '\\HasNoChildren|w/z']);
  assert.deepEqual(lists(await ok(c, 'LIST "w/" "%"')), ['\\HasChildren|w/x', '\\HasNoChildren|w/z']);
  assert.deepEqual(lists(await ok(c, 'LIST "" "w/%/y"')), ['\\HasNoChildren|w/x/y']);
  assert.deepEqual(await ok(c, 'LIST "" ""'), ['* LIST (\\Noselect) "/" ""']);
  // Several patterns, each mailbox once.
  assert.deepEqual(lists(await ok(c, 'LIST "" ("INBOX" "Sent*" "INBOX")')), ['\\HasChildren|INBOX', '\\HasNoChildren \\Sent|Sent Items']);
  // Special-use selection.
  const su = lists(await ok(c, 'LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)'));
  assert.deepEqual(su.map((l) => l.split('|')[1]).sort(), ['Archive', 'Bin/Old', 'Drafts', 'Junk', 'Sent Items']);
  assert.ok(su.every((l) => /\\(Archive|Drafts|Junk|Sent|Trash)/.test(l)));
  // RECURSIVEMATCH: parents of subscribed names that do not match the pattern.
  await ok(c, 'SUBSCRIBE w/x/y');
  assert.deepEqual(lists(await ok(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "w/%" RETURN (CHILDREN)')), ['\\HasChildren|w/x|("CHILDINFO" ("SUBSCRIBED"))']);
  assert.deepEqual(lists(await ok(c, 'LIST (SUBSCRIBED) "" "w/%"')), []);
  assert.deepEqual(lists(await ok(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "w/*"')), ['\\HasNoChildren \\Subscribed|w/x/y']);
  await ok(c, 'DELETE w/x/y');
  assert.deepEqual(lists(await ok(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "w"')), ['\\HasChildren|w|("CHILDINFO" ("SUBSCRIBED"))']);
  assert.deepEqual(lists(await ok(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "w/*"')), ['\\NonExistent \\Subscribed|w/x/y']);
  // Return option SUBSCRIBED marks subscribed mailboxes among all.
  assert.deepEqual(lists(await ok(c, 'LIST "" "Drafts" RETURN (SUBSCRIBED)')), ['\\HasNoChildren \\Subscribed \\Drafts|Drafts']);
  assert.deepEqual(lists(await ok(c, 'LIST "" "Drafts"')), ['\\HasNoChildren \\Drafts|Drafts']);
  // Errors: RFC 5258 3.
  assert.match(await status(c, 'LIST (RECURSIVEMATCH) "" "*"'), /^BAD/);
  assert.match(await status(c, 'LIST (BOGUS) "" "*"'), /^BAD/);
  assert.match(await status(c, 'LIST "" "*" RETURN (BOGUS)'), /^BAD/);
  assert.match(await status(c, 'LIST "" "*" RETURN (STATUS (BOGUS))'), /^BAD/);
  // Extended syntax with empty options is the plain listing.
  assert.deepEqual(lists(await ok(c, 'LIST () "" "w/z" RETURN ()')), ['\\HasNoChildren|w/z']);
  c.close();
});

test('delivery to a nested mailbox creates its parents as real mailboxes', async () => {
  await smtpDeliver('jane.lists@example.test', 'to a list');
  const c = await session();
  assert.deepEqual(lists(await ok(c, 'LIST "" "L%"')), ['\\HasChildren|Lists']);
  assert.deepEqual(lists(await ok(c, 'LIST "" "Lists*"')), ['\\HasChildren|Lists', '\\HasNoChildren|Lists/foo']);
  assert.match(await status(c, 'SELECT Lists'), /^OK/);
  c.close();
});

test('LIST-STATUS and LIST-METADATA return data after each LIST response', async () => {
  const c = await session();
  await ok(c, 'CREATE ls/one');
  await append(c, 'ls/one', 'a', '(\\Seen) ');
  await append(c, 'ls/one', 'b');
  await ok(c, 'SETMETADATA ls/one (/private/comment "note")');
  const r = await ok(c, 'LIST "" "ls*" RETURN (STATUS (MESSAGES UNSEEN SIZE) METADATA (/private/comment /shared/comment))');
  assert.equal(r.length, 5, r.join('\n'));
  assert.match(r[0]!, /^\* LIST \(\\HasChildren\) "\/" "ls"$/);
  assert.match(r[1]!, /^\* STATUS "ls" \(MESSAGES 0 UNSEEN 0 SIZE 0\)$/);
  assert.match(r[2]!, /^\* LIST \(\\HasNoChildren\) "\/" "ls\/one"$/);
  assert.match(r[3]!, /^\* STATUS "ls\/one" \(MESSAGES 2 UNSEEN 1 SIZE \d+\)$/);
  assert.equal(r[4], '* METADATA "ls/one" ("/private/comment" "note")');
  const m = await ok(c, 'LIST "" "ls/one" RETURN (METADATA (/private/comment /shared/comment))');
  assert.deepEqual(m.slice(1), ['* METADATA "ls/one" ("/private/comment" "note")']);
  c.close();
});

test('STATUS items, including HIGHESTMODSEQ, APPENDLIMIT and DELETED-STORAGE', async () => {
  const c = await session();
  await ok(c, 'CREATE St');
  await append(c, 'St', 'one', '(\\Seen) ');
  await append(c, 'St', 'two', '(\\Deleted) ');
  const sel = await ok(c, 'SELECT St (CONDSTORE)');
  const hms = /HIGHESTMODSEQ (\d+)/.exec(sel.join('\n'))![1];
  const size = (await ok(c, 'FETCH 1:2 RFC822.SIZE')).map((l) => Number(/RFC822.SIZE (\d+)/.exec(l)![1]));
  await ok(c, 'UNSELECT');
  const st = (await ok(c, 'STATUS St (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT DELETED-STORAGE)'))[0]!;
  assert.match(
    st,
    new RegExp(`^\\* STATUS "St" \\(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \\d+ UNSEEN 1 DELETED 1 SIZE ${size[0]! + size[1]!} RECENT 0 HIGHESTMODSEQ ${hms} APPENDLIMIT 104857600 DELETED-STORAGE 1\\)$`),
  );
  assert.match(await status(c, 'STATUS St (BOGUS)'), /^BAD/);
  assert.match(await status(c, 'STATUS St ()'), /^BAD/);
  assert.match(await status(c, 'STATUS Missing (MESSAGES)'), /^NO \[NONEXISTENT\]/);
  c.close();
});

test('METADATA: mailbox and server entries, options, limits and errors', async () => {
  const c = await session();
  await ok(c, 'SETMETADATA INBOX (/private/comment "mine" /shared/comment "ours" /private/x/a "1" /private/x/a/b "2")');
  assert.deepEqual(await ok(c, 'GETMETADATA INBOX /private/comment'), ['* METADATA "INBOX" ("/private/comment" "mine")']);
  // Entry names are case-insensitive.
  assert.deepEqual(await ok(c, 'GETMETADATA INBOX (/Private/Comment /shared/COMMENT)'), ['* METADATA "INBOX" ("/private/comment" "mine" "/shared/comment" "ours")']);
  assert.deepEqual(await ok(c, 'GETMETADATA INBOX /private/none'), []);
  // DEPTH.
  assert.deepEqual(await ok(c, 'GETMETADATA (DEPTH 1) INBOX /private/x'), ['* METADATA "INBOX" ("/private/x/a" "1")']);
  assert.deepEqual(await ok(c, 'GETMETADATA (DEPTH infinity) INBOX /private/x'), ['* METADATA "INBOX" ("/private/x/a" "1" "/private/x/a/b" "2")']);
  assert.deepEqual(await ok(c, 'GETMETADATA (DEPTH 1) INBOX /private'), ['* METADATA "INBOX" ("/private/comment" "mine")']);
  // MAXSIZE leaves out larger values and says how large the largest was.
  const r = await c.imap('m', 'GETMETADATA (MAXSIZE 3 DEPTH 0) INBOX (/private/comment /shared/comment)');
  assert.deepEqual(r.untagged, []);
  assert.match(r.status, /^OK \[METADATA LONGENTRIES 4\]/);
  // NIL removes.
  await ok(c, 'SETMETADATA INBOX (/shared/comment NIL /private/never NIL)');
  assert.deepEqual(await ok(c, 'GETMETADATA INBOX /shared/comment'), []);
  // Server entries: mailbox "".
  await ok(c, 'SETMETADATA "" (/shared/admin "mailto:jane@example.test")');
  assert.deepEqual(await ok(c, 'GETMETADATA "" /shared/admin'), ['* METADATA "" ("/shared/admin" "mailto:jane@example.test")']);
  // Values with line breaks or NUL come back as literal and literal8.
  c.write('b SETMETADATA "" (/private/bin ~{3+}\r\na\0b /private/lines {4+}\r\nx\r\ny)\r\n');
  assert.match((await c.imapUntil('b')).status, /^OK/);
  c.write('g GETMETADATA "" (/private/bin /private/lines)\r\n');
  assert.equal(await c.line(), '* METADATA "" ("/private/bin" ~{3}');
  assert.deepEqual([...(await c.bytes(3))], [0x61, 0, 0x62]);
  assert.equal(await c.line(), ' "/private/lines" {4}');
  assert.equal((await c.bytes(4)).toString(), 'x\r\ny');
  assert.equal(await c.line(), ')');
  assert.match((await c.imapUntil('g')).status, /^OK/);
  // Limits: value size and number of entries, all-or-nothing.
  const big = 'v'.repeat(64 * 1024 + 1);
  assert.match(await status(c, `SETMETADATA INBOX (/private/ok "1" /private/big {${big.length}+}\r\n${big})`), /^NO \[METADATA MAXSIZE 65536\]/);
  assert.deepEqual(await ok(c, 'GETMETADATA INBOX /private/ok'), []);
  const many = Array.from({ length: 260 }, (_, i) => `/private/n/${i} "v"`).join(' ');
  assert.match(await status(c, `SETMETADATA INBOX (${many})`), /^NO \[METADATA TOOMANY\]/);
  assert.deepEqual(await ok(c, 'GETMETADATA (DEPTH 1) INBOX /private/n'), []);
  // Bad entry names and missing mailboxes.
  for (const bad of ['/other/x', '/private', '"/private/a*"', '"/private//a"', '"/private/a/"', 'comment']) {
    assert.match(await status(c, `SETMETADATA INBOX (${bad} "v")`), /^BAD/, bad);
  }
  assert.match(await status(c, 'GETMETADATA (DEPTH 2) INBOX /private/comment'), /^BAD/);
  assert.match(await status(c, 'GETMETADATA Missing /private/comment'), /^NO \[NONEXISTENT\]/);
  assert.match(await status(c, 'SETMETADATA Missing (/private/comment "x")'), /^NO \[NONEXISTENT\]/);
  c.close();
});

test('METADATA moves with RENAME; /private/specialuse reflects and sets the special use', async () => {
  const c = await session();
  await ok(c, 'CREATE m1');
  await ok(c, 'SETMETADATA m1 (/private/comment "travels")');
  await ok(c, 'RENAME m1 m2');
  assert.deepEqual(await ok(c, 'GETMETADATA m2 /private/comment'), ['* METADATA "m2" ("/private/comment" "travels")']);
  assert.deepEqual(await ok(c, 'GETMETADATA Junk /private/specialuse'), ['* METADATA "Junk" ("/private/specialuse" "\\\\Junk")']);
  assert.match(await status(c, 'SETMETADATA m2 (/private/specialuse "\\\\Junk")'), /^NO \[USEATTR\]/);
  await ok(c, 'SETMETADATA Junk (/private/specialuse NIL)');
  await ok(c, 'SETMETADATA m2 (/private/specialuse "\\\\Junk")');
  assert.deepEqual(lists(await ok(c, 'LIST "" "m2"')), ['\\HasNoChildren \\Junk|m2']);
  assert.deepEqual(lists(await ok(c, 'LIST "" "Junk"')), ['\\HasNoChildren|Junk']);
  c.close();
});

test('QUOTA: root "" for all mailboxes, usage in KiB, limit from the account configuration', async () => {
  const c = await session();
  // Without a limit there is no resource to report.
  assert.deepEqual(await ok(c, 'GETQUOTAROOT INBOX'), ['* QUOTAROOT "INBOX" ""']);
  assert.deepEqual(await ok(c, 'GETQUOTA ""'), []);
  assert.match(await status(c, 'GETQUOTA "other"'), /^NO/);
  assert.match(await status(c, 'GETQUOTAROOT Missing'), /^NO \[NONEXISTENT\]/);
  assert.match(await status(c, 'SETQUOTA "" (STORAGE 512)'), /^NO \[NOPERM\]/);
  assert.match(await status(c, 'SETQUOTA "" STORAGE'), /^BAD/);
  await editDomains(srv, '    Domain: example.test', '    QuotaMessageSize: 1048576\n');
  const d = db();
  const used = d.prepare('SELECT sum(size) FROM message').pluck().get() as number;
  d.close();
  const r = await ok(c, 'GETQUOTAROOT Drafts');
  assert.deepEqual(r, ['* QUOTAROOT "Drafts" ""', `* QUOTA "" (STORAGE ${Math.ceil(used / 1024)} 1024)`]);
  assert.deepEqual(await ok(c, 'GETQUOTA ""'), [`* QUOTA "" (STORAGE ${Math.ceil(used / 1024)} 1024)`]);
  // APPENDLIMIT: what fits in the quota now.
  assert.match((await ok(c, 'STATUS INBOX (APPENDLIMIT)'))[0]!, new RegExp(`APPENDLIMIT ${1048576 - used}\\)`));
  c.close();
});

test('imapflow: list with special use, create, rename, delete, status and quota', async () => {
  const f = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user: 'jane@example.test', pass: 'secret-pass' }, logger: false });
  const raw = await session();
  const oldInbox = Number(/MESSAGES (\d+)/.exec((await ok(raw, 'STATUS Old/Inbox (MESSAGES)'))[0]!)![1]);
  raw.close();
  await f.connect();
  try {
    const created = await f.mailboxCreate(['Projects', 'Flow']);
    assert.equal(created.path, 'Projects/Flow');
    const renamed = await f.mailboxRename('Projects/Flow', 'Projects/Stream');
    assert.equal(renamed.newPath, 'Projects/Stream');
    const list = await f.list({ statusQuery: { messages: true, uidNext: true } });
    const by = new Map(list.map((m) => [m.path, m]));
    assert.equal(by.get('Drafts')?.specialUse, '\\Drafts');
    assert.equal(by.get('m2')?.specialUse, '\\Junk');
    assert.equal(by.get('Sent Items')?.specialUse, '\\Sent');
    assert.ok(by.has('Projects/Stream'));
    assert.ok(!by.has('Projects/Flow'));
    assert.equal(by.get('Old/Inbox')?.status?.messages, oldInbox);
    const st = await f.status('Projects/Stream', { messages: true, uidNext: true, unseen: true });
    assert.ok(st);
    assert.equal(st.messages, 0);
    assert.equal(st.uidNext, 1);
    const q = await f.getQuota('INBOX');
    assert.ok(q && q.storage, JSON.stringify(q));
    assert.equal(q.storage.limit, 1024 * 1024);
    assert.ok(q.storage.usage! > 0);
    await f.mailboxDelete('Projects/Stream');
    const after = await f.list();
    assert.ok(!after.some((m) => m.path === 'Projects/Stream'));
    await assert.rejects(f.mailboxDelete('INBOX'));
  } finally {
    await f.logout();
  }
});
