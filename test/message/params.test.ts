import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getParam, parseMimeValue } from '../../src/message/params.js';
import { bytesToText } from '../../src/message/header.js';

test('RFC 2045 5.1: tokens, quoted strings and comments', () => {
  assert.deepEqual(parseMimeValue('text/plain; charset="utf-8"; format=flowed'), {
    value: 'text/plain',
    params: [
      ['charset', 'utf-8'],
      ['format', 'flowed'],
    ],
  });
  assert.deepEqual(parseMimeValue('multipart/mixed (outer); BOUNDARY="=_a;b" (the boundary); X=1'), {
    value: 'multipart/mixed',
    params: [
      ['boundary', '=_a;b'],
      ['x', '1'],
    ],
  });
  assert.deepEqual(parseMimeValue('text/plain; name="a \\"b\\" \\\\ c"').params, [['name', 'a "b" \\ c']]);
  assert.deepEqual(parseMimeValue('text/plain; charset=(comment)us-ascii').params, [['charset', 'us-ascii']]);
  assert.deepEqual(parseMimeValue('text (t) / (s) plain ;a=b'), { value: 'text/plain', params: [['a', 'b']] });
});

test('RFC 2231 3: continuations', () => {
  const v = parseMimeValue('message/external-body; access-type=URL;\r\n URL*0="ftp://";\r\n URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"');
  assert.equal(getParam(v.params, 'url'), 'ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar');
  // order of the segments in the header does not matter, their index does
  assert.equal(getParam(parseMimeValue('x/y; a*2=c; a*0=a; a*1=b').params, 'a'), 'abc');
});

test('RFC 2231 4: charsets and languages, mixed with continuations', () => {
  assert.equal(getParam(parseMimeValue("application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A").params, 'title'), 'This is ***fun***');
  const mixed = parseMimeValue("application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"");
  assert.equal(getParam(mixed.params, 'title'), "This is even more ***fun*** isn't it!");
  // converted to the UTF-8 bytes of the text
  const latin1 = getParam(parseMimeValue("text/plain; name*=iso-8859-1''caf%E9.txt").params, 'name')!;
  assert.equal(bytesToText(latin1), 'café.txt');
  // a character split across segments is joined before decoding
  const split = getParam(parseMimeValue("a/b; f*0*=utf-8''%E2%82; f*1*=%AC").params, 'f')!;
  assert.equal(bytesToText(split), '€');
  // the extended form wins over a plain one of the same name, keeping the first position
  assert.deepEqual(parseMimeValue("a/b; name=plain.txt; x=1; name*=utf-8''ext.txt").params, [
    ['name', 'ext.txt'],
    ['x', '1'],
  ]);
});

test('RFC 2231: an unknown charset keeps the octets', () => {
  assert.equal(getParam(parseMimeValue("a/b; n*=x-unknown''%E9%41").params, 'n'), '\xe9A');
  assert.equal(getParam(parseMimeValue("a/b; n*=utf-8''100%").params, 'n'), '100%');
});

test('tolerates real-world garbage', () => {
  assert.deepEqual(parseMimeValue('text/plain charset=utf-8').params, [['charset', 'utf-8']]);
  assert.deepEqual(parseMimeValue('application/pdf; name=my file.pdf; x=1').params, [
    ['name', 'my file.pdf'],
    ['x', '1'],
  ]);
  assert.deepEqual(parseMimeValue('text/plain; name="unterminated').params, [['name', 'unterminated']]);
  assert.deepEqual(parseMimeValue('text/plain; ;; =novalue; junk; "quoted"; ok=1').params, [['ok', '1']]);
  assert.deepEqual(parseMimeValue(''), { value: '', params: [] });
  const huge = parseMimeValue('a/b; ' + 'p=v; '.repeat(100_000) + 'x="' + '\\"'.repeat(100_000));
  assert.equal(getParam(huge.params, 'x')!.length, 100_000);
});
