import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allParts, parseMessage, type Part } from '../../src/message/part.js';
import { decodedText } from '../../src/message/decode.js';
import { bytesToText } from '../../src/message/header.js';
import { getParam } from '../../src/message/params.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/mime');
const crlf = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'), 'latin1');
const body = (msg: Buffer, p: Part) => msg.toString('latin1', p.body, p.end);
const header = (msg: Buffer, p: Part) => msg.toString('latin1', p.start, p.body);

/** Structural invariants that hold for any input. */
function checkInvariants(msg: Buffer, root: Part): void {
  const walk = (p: Part) => {
    assert.ok(p.start <= p.body && p.body <= p.end && p.end <= msg.length, `offsets ${p.start} ${p.body} ${p.end}`);
    if (p.parts) {
      let pos = p.body;
      for (const c of p.parts) {
        assert.ok(c.start >= pos && c.end <= p.end, 'child inside parent, in order');
        pos = c.end;
        walk(c);
      }
    } else {
      let lf = 0;
      for (let i = p.body; i < p.end; i++) if (msg[i] === 10) lf++;
      assert.equal(p.lines, lf);
    }
    if (p.message) {
      assert.equal(p.message.start, p.body);
      assert.ok(p.message.end <= p.end);
      assert.ok(p.message.envelope);
      walk(p.message);
    }
  };
  walk(root);
  assert.deepEqual(JSON.parse(JSON.stringify(root)), root);
}

test('a nested message: byte-exact offsets (RFC 2046 5.1.1)', () => {
  const msg = crlf(`From: a@example.com
Subject: outer
Content-Type: multipart/mixed; boundary="b1"

preamble
--b1
Content-Type: text/plain; charset=utf-8

hello
world
--b1
Content-Type: message/rfc822

Subject: inner
Content-Type: multipart/alternative; boundary=b2

--b2

alt1
--b2--
--b1--
epilogue
`);
  const root = parseMessage(msg);
  checkInvariants(msg, root);
  assert.equal(header(msg, root), 'From: a@example.com\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n');
  assert.equal(root.end, msg.length);
  const [text, rfc822] = root.parts!;
  assert.equal(header(msg, text!), 'Content-Type: text/plain; charset=utf-8\r\n\r\n');
  assert.equal(body(msg, text!), 'hello\r\nworld'); // the CRLF before "--b1" belongs to the delimiter
  assert.equal(text!.lines, 1);
  assert.deepEqual(text!.params, [['charset', 'utf-8']]);
  assert.equal(body(msg, rfc822!), 'Subject: inner\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n--b2\r\n\r\nalt1\r\n--b2--');
  const inner = rfc822!.message!;
  assert.equal(inner.envelope!.subject, 'inner');
  assert.equal(inner.parts!.length, 1);
  assert.equal(body(msg, inner.parts![0]!), 'alt1');
  assert.deepEqual([inner.parts![0]!.type, inner.parts![0]!.subtype], ['text', 'plain']);
  assert.equal(root.envelope!.subject, 'outer');
  assert.deepEqual(root.envelope!.from, [{ mailbox: 'a', host: 'example.com' }]);
  assert.equal(inner.envelope!.from, undefined);
});

test('bare LF line endings', () => {
  const msg = Buffer.from('Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/html\n\n<p>a</p>\nb\n--x\n\nplain\n--x--\n');
  const root = parseMessage(msg);
  checkInvariants(msg, root);
  assert.deepEqual(
    root.parts!.map((p) => [p.subtype, body(msg, p), p.lines]),
    [
      ['html', '<p>a</p>\nb', 1],
      ['plain', 'plain', 0],
    ],
  );
});

test('missing final boundary, missing boundaries, boundary text in preamble and epilogue', () => {
  const unclosed = crlf('Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo, then the end\n');
  const p1 = parseMessage(unclosed);
  assert.deepEqual(
    p1.parts!.map((p) => body(unclosed, p)),
    ['one', 'two, then the end\r\n'],
  );
  const none = crlf('Content-Type: multipart/mixed; boundary=declared\n\n--other\n\ntext\n--other--\n');
  const p2 = parseMessage(none);
  assert.deepEqual(p2.parts, []);
  assert.equal(body(none, p2), '--other\r\n\r\ntext\r\n--other--\r\n');
  const noisy = crlf('Content-Type: multipart/mixed; boundary=pp\n\nmentions --pp here\n-pp\n--pp\n\nin\n--pp--\nepilogue\n--pp\nstill epilogue\n');
  const p3 = parseMessage(noisy);
  assert.deepEqual(
    p3.parts!.map((p) => body(noisy, p)),
    ['in'],
  );
  assert.equal(p3.end, noisy.length);
});

test('a boundary that extends an enclosing one is told apart (longest match)', () => {
  const msg = crlf('Content-Type: multipart/mixed; boundary="=_a"\n\n--=_a\nContent-Type: multipart/alternative; boundary="=_a_1"\n\n--=_a_1\n\nx\n--=_a_1--\n--=_a\n\ny\n--=_a--\n');
  const root = parseMessage(msg);
  checkInvariants(msg, root);
  assert.equal(root.parts!.length, 2);
  assert.equal(root.parts![0]!.parts!.length, 1);
  assert.equal(body(msg, root.parts![0]!.parts![0]!), 'x');
  assert.equal(body(msg, root.parts![1]!), 'y');
});

test('defaults: text/plain us-ascii (RFC 2045 5.2), message/rfc822 in a digest (RFC 2046 5.1.5)', () => {
  const msg = crlf('Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody\n--d\nContent-Type: text\n\nbad type\n--d\nContent-Type: multipart/mixed\n\nno boundary\n--d--\n');
  const [m, bad, noBoundary] = parseMessage(msg).parts!;
  assert.deepEqual([m!.type, m!.subtype, m!.message!.envelope!.subject], ['message', 'rfc822', 'one']);
  assert.deepEqual([bad!.type, bad!.subtype, bad!.params], ['text', 'plain', [['charset', 'us-ascii']]]);
  assert.deepEqual([noBoundary!.type, noBoundary!.subtype, noBoundary!.parts], ['text', 'plain', undefined]);
  const plain = parseMessage(crlf('Subject: x\n\nbody\n'));
  assert.deepEqual([plain.type, plain.subtype, plain.params], ['text', 'plain', [['charset', 'us-ascii']]]);
});

test('MIME fields: first occurrence; envelope fields: last occurrence', () => {
  const msg = crlf(`Subject: first
Subject: second
Content-Type: text/html; charset=utf-8
Content-Type: text/plain
Content-Transfer-Encoding: Quoted-Printable (comment)
Content-ID: <id@x>
Content-Description: desc
Content-Disposition: INLINE; filename="a.html"
Content-Language: en, de (German)
Content-Location: http://x.example/a
Content-MD5: abc=
Message-ID: <m@x>
In-Reply-To: <r@x>
Date: Tue, 1 Jul 2025 10:00:00 +0000

x
`);
  const p = parseMessage(msg);
  assert.deepEqual(
    { ...p, envelope: undefined },
    {
      start: 0,
      body: msg.indexOf('x\r\n', msg.length - 4),
      end: msg.length,
      lines: 1,
      type: 'text',
      subtype: 'html',
      params: [['charset', 'utf-8']],
      encoding: 'quoted-printable',
      id: '<id@x>',
      description: 'desc',
      disposition: 'inline',
      dispositionParams: [['filename', 'a.html']],
      language: ['en', 'de'],
      location: 'http://x.example/a',
      md5: 'abc=',
      envelope: undefined,
    },
  );
  assert.deepEqual(p.envelope, { subject: 'second', messageId: '<m@x>', inReplyTo: '<r@x>', date: 'Tue, 1 Jul 2025 10:00:00 +0000' });
});

test('encoded message/rfc822 is left unparsed (RFC 2046 5.2.1 allows no encoding)', () => {
  const msg = crlf('Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0KDQp5\n');
  const p = parseMessage(msg);
  assert.equal(p.message, undefined);
  assert.equal(decodedText(msg, p), 'Subject: x\r\n\r\ny');
});

test('nesting beyond the limit is opaque; the part limit stops adding children', () => {
  let deep = 'x\r\n';
  for (let i = 0; i < 10; i++) deep = `Content-Type: multipart/mixed; boundary=d${i}\r\n\r\n--d${i}\r\n${deep}\r\n--d${i}--`;
  const msg = Buffer.from(deep);
  const root = parseMessage(msg, { maxDepth: 3 });
  checkInvariants(msg, root);
  let p = root;
  for (let i = 0; i < 3; i++) p = p.parts![0]!;
  assert.equal(p.type, 'multipart');
  assert.equal(p.parts, undefined);
  assert.ok(body(msg, p).includes('--d5--'));
  assert.equal(allParts(parseMessage(msg)).length, 11);

  const many = Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n' + '--b\r\n\r\nx\r\n'.repeat(100) + '--b--\r\n');
  const limited = parseMessage(many, { maxParts: 10 });
  checkInvariants(many, limited);
  assert.equal(limited.parts!.length, 9);
  assert.equal(limited.end, many.length);
  assert.equal(parseMessage(many).parts!.length, 100);
});

test('parses every corpus message with sound offsets and compact JSON', () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.eml'));
  assert.ok(files.length >= 30);
  for (const f of files) {
    const msg = readFileSync(join(FIXTURES, f));
    const root = parseMessage(msg);
    checkInvariants(msg, root);
    assert.ok(JSON.stringify(root).length < 20_000, f);
  }
});

test('corpus details: RFC 2231 names, 8-bit headers, digest, bare LF', () => {
  const load = (f: string) => {
    const msg = readFileSync(join(FIXTURES, f));
    return { msg, root: parseMessage(msg) };
  };
  const rfc2231 = load('10-rfc2231-filename.eml').root.parts!;
  assert.equal(bytesToText(getParam(rfc2231[1]!.params, 'name')!), '€ rate été.pdf');
  assert.equal(bytesToText(getParam(rfc2231[1]!.dispositionParams, 'filename')!), '€ rate été.pdf');
  assert.equal(bytesToText(getParam(rfc2231[2]!.params, 'name')!), 'café.txt');
  assert.equal(getParam(rfc2231[2]!.dispositionParams, 'filename'), 'longname.txt');

  const utf8 = load('06-8bit-headers.eml').root;
  assert.equal(bytesToText(utf8.envelope!.subject!), 'Grüße aus Köln – 日本語');
  const latin1 = load('07-latin1-headers.eml');
  assert.equal(latin1.root.envelope!.subject, 'Caf\xe9 cr\xe8me');
  assert.equal(decodedText(latin1.msg, latin1.root), "Un café crème, s'il vous plaît.\r\n");

  const digest = load('20-digest.eml').root.parts!;
  assert.deepEqual(
    digest.map((p) => p.message?.envelope?.subject ?? `${p.type}/${p.subtype}`),
    ['first post', 'second post', 'text/plain'],
  );
  const lf = load('18-bare-lf.eml');
  assert.deepEqual(
    lf.root.parts!.map((p) => decodedText(lf.msg, p)),
    ['line one\nline two', 'softbreak'],
  );
  const deep = load('30-deep-nesting.eml');
  const leaves = allParts(deep.root).filter((p) => !p.parts);
  assert.equal(leaves.length, 1);
  assert.equal(body(deep.msg, leaves[0]!), 'innermost');
});

// A small deterministic generator, so failures can be reproduced.
function prng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

test('mutated corpus messages never throw and keep sound offsets', () => {
  const rnd = prng(42);
  const pieces = ['\r\n', '\n', '--', '--b', '\r\n\r\n', 'Content-Type: multipart/mixed; boundary=b\r\n', 'Content-Type: message/rfc822\r\n\r\n', '"', '(', ':', ';', '=?', '\xff', '\0'].map((s) => Buffer.from(s, 'latin1'));
  for (const f of readdirSync(FIXTURES).filter((x) => x.endsWith('.eml'))) {
    const original = readFileSync(join(FIXTURES, f));
    for (let i = 0; i < 25; i++) {
      let msg = Buffer.from(original);
      for (let k = 0; k < 1 + Math.floor(rnd() * 6); k++) {
        const at = Math.floor(rnd() * (msg.length + 1));
        const r = rnd();
        if (r < 0.4) msg = Buffer.concat([msg.subarray(0, at), pieces[Math.floor(rnd() * pieces.length)]!, msg.subarray(at)]);
        else if (r < 0.7) msg = Buffer.concat([msg.subarray(0, at), msg.subarray(Math.min(msg.length, at + 1 + Math.floor(rnd() * 40)))]);
        else if (at < msg.length) msg[at] = Math.floor(rnd() * 256);
      }
      checkInvariants(msg, parseMessage(msg, { maxDepth: 8 }));
    }
  }
});

test('10 MB with 1,000 parts parses well under a second into compact JSON', () => {
  const line = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n'.repeat(130);
  let s = 'From: a@example.com\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n';
  for (let i = 0; i < 1000; i++) s += `--b\r\nContent-Type: application/octet-stream; name="f${i}.bin"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="f${i}.bin"\r\n\r\n${line}`;
  const msg = Buffer.from(s + '--b--\r\n');
  assert.ok(msg.length > 10_000_000);
  parseMessage(msg); // warm up
  const t = performance.now();
  const root = parseMessage(msg);
  const elapsed = performance.now() - t;
  assert.equal(root.parts!.length, 1000);
  assert.ok(elapsed < 1000, `${elapsed} ms`);
  assert.ok(JSON.stringify(root).length < 300_000);
});

test('hostile shapes stay linear', () => {
  const cases = [
    Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n' + '--b\r\n'.repeat(1_000_000)),
    Buffer.from('Content-Type: message/rfc822\r\n\r\n'.repeat(200_000)),
    Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n' + '--\n'.repeat(1_000_000)),
    Buffer.from('To: ' + 'a@b, '.repeat(200_000) + '\r\n\r\n'),
    Buffer.alloc(5_000_000, 'x'),
  ];
  for (const msg of cases) {
    const t = performance.now();
    const root = parseMessage(msg);
    assert.ok(performance.now() - t < 2000);
    assert.ok(allParts(root).length <= 10_000);
    assert.ok(JSON.stringify(root).length < 2_000_000);
  }
});
