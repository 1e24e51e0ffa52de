// Python's imaplib, an IMAP4rev1 client, against the server: STARTTLS and LOGIN, APPEND with
// flags and a date, SELECT, SEARCH, FETCH of BODYSTRUCTURE, ENVELOPE and BODY[], STORE, COPY,
// EXPUNGE, STATUS and LOGOUT. Mailbox names in modified UTF-7 are in imaplib-utf7.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, python, type TestServer } from '../helpers/server.js';

let srv: TestServer;
before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.close();
});

// The script prints one JSON object; bytes are passed on as latin1 text.
const script = String.raw`
import imaplib, json, os, ssl, time

def s(v):
    if isinstance(v, bytes):
        return v.decode('latin1')
    if isinstance(v, (list, tuple)):
        return [s(x) for x in v]
    return v

res = {}
ctx = ssl.create_default_context(cadata=os.environ['CA'])
m = imaplib.IMAP4('localhost', int(os.environ['PORT']))
res['caps_before'] = sorted(m.capabilities)
typ, _ = m.starttls(ssl_context=ctx)
res['starttls'] = typ
res['caps_after'] = sorted(m.capabilities)
typ, data = m.login('jane@example.test', 'secret-pass')
res['login'] = [typ, s(data)]

msgs = [
    (r'(\Seen)', '"14-Mar-2023 09:26:53 +0100"',
     b'From: Alice Example <alice@example.org>\r\nTo: jane@example.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from Alice\r\n'
     b'Date: Tue, 14 Mar 2023 09:26:53 +0100\r\nMessage-ID: <one@example.org>\r\nMIME-Version: 1.0\r\n'
     b'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHallo Jane, sch=C3=B6ne Gr=C3=BC=C3=9Fe.\r\n'),
    (None, imaplib.Time2Internaldate(time.mktime((2024, 2, 29, 23, 59, 0, 0, 0, -1))),
     b'From: bob@example.net\r\nTo: Jane <jane@example.test>, team@example.net\r\nCc: carol@example.com\r\nSubject: report\r\n'
     b'Date: Thu, 29 Feb 2024 23:59:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
     b'--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee the attached numbers.\r\n'
     b'--b1\r\nContent-Type: application/octet-stream; name="data.bin"\r\nContent-Disposition: attachment; filename="data.bin"\r\n'
     b'Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--b1--\r\n'),
    (r'(\Flagged $Todo)', None,
     b'From: carol@example.com\r\nTo: jane@example.test\r\nSubject: lunch?\r\nDate: Fri, 1 Mar 2024 12:00:00 +0000\r\n\r\nNoon at the usual place.\r\n'),
]
res['append'] = []
res['sizes'] = [len(b) for _, _, b in msgs]
for flags, date, body in msgs:
    typ, data = m.append('INBOX', flags, date, body)
    res['append'].append([typ, s(data)])

typ, data = m.select('INBOX')
res['select'] = [typ, s(data)]
res['select_untagged'] = {k: s(m.untagged_responses.get(k, [])) for k in ('FLAGS', 'EXISTS', 'UIDVALIDITY', 'UIDNEXT', 'PERMANENTFLAGS')}

res['search'] = {}
for name, crit in [('all', ['ALL']), ('from_bob', ['FROM', 'bob']), ('subject_utf8', ['CHARSET', 'UTF-8', 'SUBJECT', '"Gr\xfc\xdfe"']),
                   ('unseen', ['UNSEEN']), ('flagged', ['FLAGGED']), ('keyword', ['KEYWORD', '$Todo']),
                   ('body', ['BODY', '"sch\xf6ne"']), ('since', ['SENTSINCE', '1-Mar-2024']), ('or', ['OR', 'FROM', 'alice', 'CC', 'carol']),
                   ('larger', ['LARGER', '400']), ('text_numbers', ['TEXT', 'numbers'])]:
    if name in ('subject_utf8', 'body'):
        m.literal = crit[-1][1:-1].encode('utf-8')
        crit = crit[:-1]
    typ, data = m.search(None, *crit)
    res['search'][name] = [typ, s(data)]
typ, data = m.uid('SEARCH', 'FROM', 'carol')
res['uid_search'] = [typ, s(data)]

typ, data = m.fetch('1:3', '(UID FLAGS INTERNALDATE RFC822.SIZE)')
res['fetch_fast'] = [typ, s(data)]
res['internaldates'] = [time.mktime(imaplib.Internaldate2tuple(d)) for d in data]
res['date2'] = time.mktime((2024, 2, 29, 23, 59, 0, 0, 0, -1))
typ, data = m.fetch('2', '(BODYSTRUCTURE)')
res['bodystructure'] = [typ, s(data)]
typ, data = m.fetch('1', '(ENVELOPE)')
res['envelope'] = [typ, s(data)]
typ, data = m.fetch('2', '(BODY[])')
res['body'] = [typ, s(data)]
typ, data = m.fetch('2', '(FLAGS)')
res['seen_after_body'] = s(data)
typ, data = m.fetch('2', '(BODY.PEEK[2] BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
res['sections'] = [typ, s(data)]

typ, data = m.store('3', '+FLAGS', r'(\Answered)')
res['store_add'] = [typ, s(data)]
typ, data = m.store('3', '-FLAGS.SILENT', r'(\Flagged)')
res['store_silent'] = [typ, s(data)]
typ, data = m.uid('STORE', '1', 'FLAGS', r'(\Seen $Label1)')
res['uid_store'] = [typ, s(data)]

typ, data = m.create('Kept')
res['create'] = typ
typ, data = m.copy('1:2', 'Kept')
res['copy'] = [typ, s(data)]
typ, data = m.copy('1', 'Missing')
res['copy_missing'] = [typ, s(data)]

typ, data = m.store('1,3', '+FLAGS.SILENT', r'(\Deleted)')
typ, data = m.expunge()
res['expunge'] = [typ, s(data)]
typ, data = m.fetch('1:*', '(UID)')
res['after_expunge'] = s(data)

typ, data = m.status('Kept', '(MESSAGES UIDNEXT UNSEEN)')
res['status_kept'] = [typ, s(data)]
typ, data = m.status('INBOX', '(MESSAGES RECENT UIDVALIDITY)')
res['status_inbox'] = [typ, s(data)]
m.close()
typ, data = m.select('Kept', readonly=True)
res['examine'] = [typ, s(data)]
typ, data = m.fetch('1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
res['kept'] = s(data)
typ, data = m.logout()
res['logout'] = [typ, s(data)]
print(json.dumps(res))
`;

/** The flags in the first FLAGS (...) of a response, sorted. */
function flagsOf(line: string): string[] {
  const m = /FLAGS \(([^)]*)\)/.exec(line);
  assert.ok(m, line);
  return m[1]!.split(' ').filter(Boolean).sort();
}

test('imaplib: STARTTLS, append, select, search, fetch, store, copy, expunge, status, logout', async () => {
  const out = JSON.parse(await python(script, { PORT: srv.ports.imap, CA: srv.certPEM })) as Record<string, any>;

  // STARTTLS: login is refused before TLS (LOGINDISABLED) and offered after it.
  assert.ok(out.caps_before.includes('STARTTLS') && out.caps_before.includes('LOGINDISABLED'), out.caps_before.join(' '));
  assert.equal(out.starttls, 'OK');
  assert.ok(!out.caps_after.includes('LOGINDISABLED') && out.caps_after.includes('AUTH=PLAIN'), out.caps_after.join(' '));
  assert.equal(out.login[0], 'OK');

  assert.equal(out.append.length, 3);
  out.append.forEach(([typ, data]: [string, string[]], i: number) => {
    assert.equal(typ, 'OK');
    assert.match(data[0]!, new RegExp(`^\\[APPENDUID \\d+ ${i + 1}\\]`));
  });

  assert.deepEqual(out.select, ['OK', ['3']]);
  assert.match(out.select_untagged.FLAGS[0], /\\Seen/);
  assert.match(out.select_untagged.FLAGS[0], /\$Todo/);
  assert.match(out.select_untagged.PERMANENTFLAGS[0], /\\\*/);
  assert.deepEqual(out.select_untagged.UIDNEXT, ['4']);

  const search = out.search as Record<string, [string, string[]]>;
  const expect: Record<string, string> = {
    all: '1 2 3',
    from_bob: '2',
    subject_utf8: '1',
    unseen: '2 3',
    flagged: '3',
    keyword: '3',
    body: '1',
    since: '3',
    or: '1 2',
    larger: '2',
    text_numbers: '2',
  };
  for (const [name, want] of Object.entries(expect)) assert.deepEqual(search[name], ['OK', [want]], name);
  assert.deepEqual(out.uid_search, ['OK', ['3']]);

  // FETCH of index data: UIDs, flags, the dates given to APPEND, sizes.
  const fast: string[] = out.fetch_fast[1];
  assert.equal(fast.length, 3);
  assert.match(fast[0]!, /^1 \(UID 1 FLAGS \(\\Seen\) INTERNALDATE "14-Mar-2023 08:26:53 \+0000" RFC822.SIZE \d+\)$/);
  assert.match(fast[1]!, /^2 \(UID 2 FLAGS \(\) INTERNALDATE "\d\d-(Feb|Mar)-2024 \d\d:\d\d:00 \+0000" RFC822.SIZE \d+\)$/);
  assert.match(fast[2]!, /^3 \(UID 3 FLAGS \(\\Flagged \$Todo\) INTERNALDATE ".*" RFC822.SIZE \d+\)$/);
  assert.deepEqual(
    fast.map((l) => Number(/RFC822.SIZE (\d+)/.exec(l)![1])),
    out.sizes,
  );
  // imaplib reads the dates back as the moments it appended.
  assert.equal(out.internaldates[0], Date.UTC(2023, 2, 14, 8, 26, 53) / 1000);
  assert.equal(out.internaldates[1], out.date2);

  // BODYSTRUCTURE of the multipart message (one literal-free line). The CRLF before a
  // delimiter belongs to the delimiter (RFC 2046 5.1.1): the text part is 25 bytes, 0 lines.
  assert.equal(out.bodystructure[0], 'OK');
  assert.equal(
    out.bodystructure[1][0],
    '2 (BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 25 0 NIL NIL NIL NIL)' +
      '("application" "octet-stream" ("name" "data.bin") NIL NIL "base64" 16 NIL ("attachment" ("filename" "data.bin")) NIL NIL) "mixed" ("boundary" "b1") NIL NIL NIL))',
  );
  // ENVELOPE: the encoded-word subject is sent as it is in the header (RFC 3501 7.4.2).
  assert.equal(
    out.envelope[1][0],
    '1 (ENVELOPE ("Tue, 14 Mar 2023 09:26:53 +0100" "=?utf-8?q?Gr=C3=BC=C3=9Fe?= from Alice" (("Alice Example" NIL "alice" "example.org")) (("Alice Example" NIL "alice" "example.org")) (("Alice Example" NIL "alice" "example.org")) ((NIL NIL "jane" "example.test")) NIL NIL NIL "<one@example.org>"))',
  );
  // BODY[] comes as a literal: imaplib returns (prefix, bytes) pairs; fetching it sets \Seen.
  const [bodyHead, bodyBytes] = out.body[1][0] as [string, string];
  assert.match(bodyHead, /^2 \(BODY\[\] \{(\d+)\}$/);
  assert.equal(bodyBytes.length, Number(/\{(\d+)\}/.exec(bodyHead)![1]));
  assert.ok(bodyBytes.startsWith('From: bob@example.net\r\n') && bodyBytes.endsWith('AAECAwQFBgcICQ==\r\n--b1--\r\n'));
  assert.match(String(out.seen_after_body), /FLAGS \(\\Seen\)/);
  const sections = out.sections[1] as (string | string[])[];
  assert.match(sections[0]![0]!, /^2 \(BODY\[2\] \{16\}$/);
  assert.equal(sections[0]![1], 'AAECAwQFBgcICQ==');
  assert.match(sections[1]![0]!, /BODY\[HEADER.FIELDS \(SUBJECT\)\] \{19\}$/);
  assert.equal(sections[1]![1], 'Subject: report\r\n\r\n');

  // Flags are a set: their order in a response is not significant.
  assert.equal(out.store_add[0], 'OK');
  assert.match(out.store_add[1][0], /^3 \(FLAGS \([^)]*\)\)$/);
  assert.deepEqual(flagsOf(out.store_add[1][0]), ['$Todo', '\\Answered', '\\Flagged']);
  assert.deepEqual(out.store_silent, ['OK', [null]]);
  assert.equal(out.uid_store[0], 'OK');
  assert.match(out.uid_store[1][0], /^1 \(UID 1 FLAGS \([^)]*\)\)$/);
  assert.deepEqual(flagsOf(out.uid_store[1][0]), ['$Label1', '\\Seen']);

  assert.equal(out.create, 'OK');
  assert.equal(out.copy[0], 'OK');
  assert.match(out.copy[1][0], /^\[COPYUID \d+ 1:2 1:2\]/);
  assert.equal(out.copy_missing[0], 'NO');
  assert.match(out.copy_missing[1][0], /^\[TRYCREATE\]/);

  // EXPUNGE of 1 and 3: "1 EXPUNGE" then the old 3, now 2, as "2 EXPUNGE".
  assert.equal(out.expunge[0], 'OK');
  assert.deepEqual(out.expunge[1], ['1', '2']);
  assert.deepEqual(out.after_expunge, ['1 (UID 2)']);

  // The name may be an atom or a quoted string (RFC 3501 9, astring).
  assert.equal(out.status_kept[0], 'OK');
  assert.match(out.status_kept[1][0], /^"?Kept"? \(MESSAGES 2 UIDNEXT 3 UNSEEN 0\)$/);
  assert.equal(out.status_inbox[0], 'OK');
  assert.match(out.status_inbox[1][0], /^"?INBOX"? \(MESSAGES 1 RECENT 0 UIDVALIDITY \d+\)$/);
  assert.deepEqual(out.examine, ['OK', ['2']]);
  // The copies kept their flags, keywords included.
  // imaplib returns a (prefix, literal) pair and the closing ")" for each message.
  const kept = (out.kept as (string | [string, string])[]).filter((x): x is [string, string] => Array.isArray(x));
  assert.equal(kept.length, 2);
  assert.match(kept[0]![0], /^1 \(FLAGS \([^)]*\) BODY\[HEADER.FIELDS \(SUBJECT\)\]/);
  assert.deepEqual(flagsOf(kept[0]![0]), ['$Label1', '\\Seen']);
  assert.match(kept[0]![1], /^Subject: =\?utf-8\?q\?Gr=C3=BC=C3=9Fe\?= from Alice\r\n\r\n$/);
  assert.match(kept[1]![0], /^2 \(FLAGS \(\\Seen\) BODY\[HEADER.FIELDS \(SUBJECT\)\]/);
  assert.equal(out.logout[0], 'BYE');
});
