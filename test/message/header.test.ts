import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToText, decodeHeaderText, parseHeader, textToBytes } from '../../src/message/header.js';

test('splits fields keeping raw bytes, folding and offsets', () => {
  const msg = Buffer.from('Subject: hello\r\n  world\r\nFrom: a@b.example\r\n\r\nbody\r\n');
  const h = parseHeader(msg);
  assert.equal(h.fields.length, 2);
  const [subject, from] = h.fields;
  assert.equal(subject!.name, 'Subject');
  assert.equal(subject!.raw.toString(), 'Subject: hello\r\n  world\r\n');
  assert.equal(subject!.value, 'hello  world');
  assert.equal(subject!.start, 0);
  assert.equal(subject!.end, from!.start);
  assert.equal(msg.toString('latin1', subject!.valueStart, subject!.end), ' hello\r\n  world\r\n');
  assert.equal(from!.value, 'a@b.example');
  assert.equal(h.end, msg.indexOf('body'));
  assert.equal(msg.subarray(h.end).toString(), 'body\r\n');
});

test('looks fields up case-insensitively, in message order', () => {
  const h = parseHeader(Buffer.from('Received: one\r\nreceived: two\r\nRECEIVED: three\r\nTo: x\r\n\r\n'));
  assert.deepEqual(
    h.getAll('Received').map((f) => f.value),
    ['one', 'two', 'three'],
  );
  assert.equal(h.get('rEcEiVeD')!.value, 'one');
  assert.equal(h.get('to')!.name, 'To');
  assert.equal(h.get('cc'), undefined);
});

test('accepts bare LF, whitespace before the colon and lines without a colon', () => {
  const msg = Buffer.from('Subject : spaced\nnot a header line\nX-A:\tv\n continued\n\nbody');
  const h = parseHeader(msg);
  assert.deepEqual(
    h.fields.map((f) => [f.name, f.hasColon, f.value]),
    [
      ['Subject', true, 'spaced'],
      ['not a header line', false, ''],
      ['X-A', true, 'v continued'],
    ],
  );
  assert.equal(h.fields[2]!.raw.toString(), 'X-A:\tv\n continued\n');
  assert.equal(msg.subarray(h.end).toString(), 'body');
});

test('keeps 8-bit bytes exactly as byte strings', () => {
  const raw = Buffer.concat([Buffer.from('Subject: '), Buffer.from('Grüße', 'utf8'), Buffer.from(' \xe9\r\n\r\n', 'latin1')]);
  const f = parseHeader(raw).get('subject')!;
  assert.deepEqual(Buffer.from(f.value, 'latin1'), Buffer.concat([Buffer.from('Grüße', 'utf8'), Buffer.from(' \xe9', 'latin1')]));
  assert.deepEqual(f.raw, raw.subarray(0, raw.length - 2));
});

test('a header without blank line runs to the end; a stop predicate ends it early', () => {
  const noBody = Buffer.from('A: 1\r\nB: 2');
  const h = parseHeader(noBody);
  assert.equal(h.end, noBody.length);
  assert.equal(h.fields[1]!.value, '2');
  const withBoundary = Buffer.from('A: 1\r\n--b\r\nrest');
  const stopped = parseHeader(withBoundary, 0, withBoundary.length, (pos) => withBoundary.toString('latin1', pos, pos + 3) === '--b');
  assert.equal(stopped.fields.length, 1);
  assert.equal(stopped.end, withBoundary.indexOf('--b'));
});

test('parses a sub-range of a buffer', () => {
  const buf = Buffer.from('junk\r\nX: 1\r\n\r\nbody');
  const h = parseHeader(buf, 6);
  assert.equal(h.start, 6);
  assert.equal(h.get('x')!.start, 6);
  assert.equal(buf.subarray(h.end).toString(), 'body');
});

test('decodes byte strings to text', () => {
  assert.equal(bytesToText(textToBytes('Zoë 日本')), 'Zoë 日本');
  assert.equal(bytesToText('caf\xe9'), 'café'); // not UTF-8: windows-1252
  assert.equal(bytesToText('\x80'), '€');
  assert.equal(decodeHeaderText('=?utf-8?q?Caf=C3=A9?= =?ISO-8859-1?B?Y2Fm6Q==?='), 'Cafécafé');
  assert.equal(decodeHeaderText(textToBytes('Grüße =?utf-8?B?4oKs?=')), 'Grüße €');
});

test('broken encoded-words decode as far as they can, never as markup (RFC 2047)', () => {
  assert.equal(decodeHeaderText('=?utf-8?Q?unterminated word and =?utf-8?B?w6k=?==?utf-8?X?bad?='), '=?utf-8?Q?unterminated word and é=?utf-8?X?bad?=');
  assert.equal(decodeHeaderText('=?x-unknown?Q?Mystery?='), 'Mystery');
  assert.equal(decodeHeaderText('=?utf-7?Q?+ADw-script+AD4-?='), '+ADw-script+AD4-');
});

test('large headers are split in linear time', () => {
  const big = Buffer.from('X-A: v\r\n'.repeat(200_000) + 'Subject: ' + ' '.repeat(1_000_000) + 'x\r\n\r\n');
  const t = performance.now();
  const h = parseHeader(big);
  assert.equal(h.fields.length, 200_001);
  assert.equal(h.get('subject')!.value, 'x');
  assert.ok(performance.now() - t < 2000);
});
