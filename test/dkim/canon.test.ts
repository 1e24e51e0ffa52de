import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { BodyCanon, type Canon, canonHeader, hashBody, signedFields } from '../../src/dkim/canon.js';
import { MAX_HEADER_BYTES, MessageError, MessageReader } from '../../src/dkim/message.js';
import { decodeQP, parseTags, TagError, withoutSignature } from '../../src/dkim/tags.js';

function body(canon: Canon, ...chunks: string[]): string {
  const out: Buffer[] = [];
  const c = new BodyCanon(canon, (d) => out.push(Buffer.from(d)));
  for (const chunk of chunks) c.write(Buffer.from(chunk, 'latin1'));
  c.end();
  return Buffer.concat(out).toString('latin1');
}

async function fields(message: string) {
  return new MessageReader(Buffer.from(message, 'latin1')).header();
}

// RFC 6376 3.4.5
const EXAMPLE = 'A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n';

test('RFC 6376 3.4.5 example, relaxed header and body', async () => {
  const f = await fields(EXAMPLE);
  assert.equal(f.map((x) => canonHeader(x.raw, 'relaxed')).join(''), 'a:X\r\nb:Y Z\r\n');
  assert.equal(body('relaxed', ' C \r\nD \t E\r\n\r\n\r\n'), ' C\r\nD E\r\n');
});

test('RFC 6376 3.4.5 example, simple header and body', async () => {
  const f = await fields(EXAMPLE);
  assert.equal(f.map((x) => canonHeader(x.raw, 'simple')).join(''), 'A: X\r\nB : Y\t\r\n\tZ  \r\n');
  assert.equal(body('simple', ' C \r\nD \t E\r\n\r\n\r\n'), ' C \r\nD \t E\r\n');
});

test('empty body: one CRLF in simple, nothing in relaxed (RFC 6376 3.4.3, 3.4.4)', () => {
  assert.equal(body('simple'), '\r\n');
  assert.equal(body('relaxed'), '');
  assert.equal(body('simple', '\r\n\r\n\r\n'), '\r\n');
  assert.equal(body('relaxed', '\r\n \t\r\n\r\n'), '');
  // The well-known hashes of the two empty bodies.
  const sha = (s: string) => createHash('sha256').update(s).digest('base64');
  assert.equal(sha(body('simple')), 'frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=');
  assert.equal(sha(body('relaxed')), '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
});

test('a last line without CRLF gets one', () => {
  assert.equal(body('simple', 'abc'), 'abc\r\n');
  assert.equal(body('relaxed', 'abc \t'), 'abc\r\n');
  assert.equal(body('simple', 'abc\r\n\r\nx'), 'abc\r\n\r\nx\r\n');
});

test('whitespace-only lines: content in simple, empty in relaxed', () => {
  assert.equal(body('simple', 'a\r\n  \r\n'), 'a\r\n  \r\n');
  assert.equal(body('relaxed', 'a\r\n  \r\n'), 'a\r\n');
  assert.equal(body('relaxed', 'a\r\n  \r\nb\r\n'), 'a\r\n\r\nb\r\n');
});

test('inner empty lines are kept, trailing ones dropped', () => {
  assert.equal(body('simple', 'a\r\n\r\n\r\nb\r\n\r\n'), 'a\r\n\r\n\r\nb\r\n');
  assert.equal(body('relaxed', 'a\r\n\r\n\r\nb\r\n\r\n'), 'a\r\n\r\n\r\nb\r\n');
});

test('bare LF ends lines, a lone CR is content', () => {
  assert.equal(body('simple', 'a\nb\n\n'), 'a\r\nb\r\n');
  assert.equal(body('relaxed', 'a \nb\r\n'), 'a\r\nb\r\n');
  assert.equal(body('simple', 'a\rb\r\n'), 'a\rb\r\n');
  assert.equal(body('relaxed', 'a \r b\r\n'), 'a \r b\r\n');
  assert.equal(body('simple', 'a\r'), 'a\r\r\n');
});

test('output does not depend on chunk boundaries', () => {
  const input = ' x  \t y\r\n\r\n\t\r\nz\r\r\n\r\n  \r\nend  \r\n\r\n \r\n';
  for (const canon of ['simple', 'relaxed'] as const) {
    const whole = body(canon, input);
    assert.equal(body(canon, ...input.split('')), whole, canon);
    for (let i = 0; i <= input.length; i++) assert.equal(body(canon, input.slice(0, i), input.slice(i)), whole, `${canon} ${i}`);
  }
});

test('body hash limit (l=) and canonical length', async () => {
  async function* chunks() {
    yield Buffer.from('Hello  world \r\n');
    yield Buffer.from('more\r\n\r\n');
  }
  const [full, cut, simple] = await hashBody(chunks(), [
    { canon: 'relaxed' },
    { canon: 'relaxed', limit: 5 },
    { canon: 'simple' },
  ]);
  const sha = (s: string) => createHash('sha256').update(s).digest();
  assert.deepEqual(full!.hash, sha('Hello world\r\nmore\r\n'));
  assert.equal(full!.length, 19);
  assert.deepEqual(cut!.hash, sha('Hello'));
  assert.equal(cut!.length, 19);
  assert.deepEqual(simple!.hash, sha('Hello  world \r\nmore\r\n'));
});

test('a long run of empty lines and spaces uses bounded memory', () => {
  let out = 0;
  const c = new BodyCanon('relaxed', (d) => (out += d.length));
  const blank = Buffer.alloc(1 << 20, '\r\n');
  const spaces = Buffer.alloc(1 << 20, ' ');
  for (let i = 0; i < 8; i++) c.write(blank);
  for (let i = 0; i < 8; i++) c.write(spaces);
  c.write(Buffer.from('x'));
  c.end();
  // 4 Mi empty lines, then " x" and the added CRLF.
  assert.equal(out, 8 * (1 << 20) + 4);
});

test('header fields: unfolding, names, malformed lines', async () => {
  const f = await fields('Subject : a\r\n  b\r\nX-Empty:\r\nnot a field\r\nFrom:c\n\nbody');
  assert.deepEqual(
    f.map((x) => x.key),
    ['subject', 'x-empty', '', 'from'],
  );
  assert.equal(f[0]!.raw, 'Subject : a\r\n  b');
  assert.equal(canonHeader(f[0]!.raw, 'relaxed'), 'subject:a b\r\n');
  assert.equal(canonHeader(f[1]!.raw, 'relaxed'), 'x-empty:\r\n');
  assert.equal(canonHeader(f[3]!.raw, 'simple'), 'From:c\r\n');
});

test('relaxed header keeps non-ASCII bytes and their case', () => {
  const raw = Buffer.from('SUBJECT:  Ünïcode   Ä\t', 'utf8').toString('latin1');
  assert.equal(Buffer.from(canonHeader(raw, 'relaxed'), 'latin1').toString('utf8'), 'subject:Ünïcode Ä\r\n');
});

test('header and body are split across chunks; body streams the rest', async () => {
  const msg = 'A: 1\r\nB: 2\r\n\r\nline1\r\nline2\r\n';
  async function* bytes() {
    for (const ch of msg) yield Buffer.from(ch);
  }
  const r = new MessageReader(bytes());
  const f = await r.header();
  assert.deepEqual(
    f.map((x) => x.raw),
    ['A: 1', 'B: 2'],
  );
  const parts: Buffer[] = [];
  for await (const c of r.body()) parts.push(Buffer.from(c));
  assert.equal(Buffer.concat(parts).toString(), 'line1\r\nline2\r\n');
});

test('message without a body or blank line', async () => {
  const r = new MessageReader(Buffer.from('A: 1\r\nB: 2'));
  assert.deepEqual(
    (await r.header()).map((x) => x.raw),
    ['A: 1', 'B: 2'],
  );
  for await (const _ of r.body()) assert.fail('no body expected');
});

test('header section over the limit is refused', async () => {
  const big = Buffer.alloc(MAX_HEADER_BYTES + 10, 'a');
  await assert.rejects(new MessageReader(Buffer.concat([Buffer.from('X: '), big])).header(), MessageError);
});

test('signed fields are taken from the bottom up, missing ones add nothing', async () => {
  const f = await fields('Received: 1\r\nFrom: a\r\nReceived: 2\r\nTo: b\r\n\r\n');
  assert.equal(signedFields(f, ['received', 'Received', 'received', 'from', 'cc'], -1, 'simple'), 'Received: 2\r\nReceived: 1\r\nFrom: a\r\n');
  assert.equal(signedFields(f, ['received'], 2, 'relaxed'), 'received:1\r\n');
});

test('tag lists (RFC 6376 3.2)', () => {
  const t = parseTags(' v=1; a = rsa-sha256 ;\r\n\th=From : To;b=ab\r\n cd;');
  assert.deepEqual([...t], [
    ['v', '1'],
    ['a', 'rsa-sha256'],
    ['h', 'From : To'],
    ['b', 'ab\r\n cd'],
  ]);
  assert.throws(() => parseTags('a=1; a=2'), TagError);
  assert.deepEqual([...parseTags('a=1;; b=2;')], [
    ['a', '1'],
    ['b', '2'],
  ]);
  assert.equal(parseTags('').size, 0);
  assert.throws(() => parseTags('1a=1'), TagError);
  assert.throws(() => parseTags('a'), TagError);
  assert.throws(() => parseTags('a=\x01'), TagError);
  assert.equal(decodeQP('j=3Do=20e@x', 'i'), 'j=o e@x');
  assert.throws(() => decodeQP('a=zz@x', 'i'), TagError);
});

test('b= value and its surrounding whitespace are removed (RFC 6376 3.7)', () => {
  assert.equal(withoutSignature('DKIM-Signature: a=1; b= ab\r\n cd ; bh=x'), 'DKIM-Signature: a=1; b=; bh=x');
  assert.equal(withoutSignature('DKIM-Signature: bh=x;\r\n b=abc'), 'DKIM-Signature: bh=x;\r\n b=');
});
