import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { DotStuffer } from '../../src/smtpclient/dotstuff.js';

// Whole-buffer stuffing as a reference: a dot at the start or after any LF is doubled.
function reference(b: Buffer): Buffer {
  const s = b.toString('latin1').replace(/(^|\n)\./g, '$1..');
  const end = b.length === 0 || b.toString('latin1').endsWith('\r\n') ? '.\r\n' : '\r\n.\r\n';
  return Buffer.from(s + end, 'latin1');
}

function stuffInPieces(b: Buffer): Buffer {
  const d = new DotStuffer();
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; ) {
    const n = randomInt(1, 6);
    out.push(...d.push(b.subarray(i, i + n)));
    i += n;
  }
  out.push(d.end());
  return Buffer.concat(out);
}

test('dot-stuffing over arbitrary chunk boundaries matches whole-buffer stuffing', () => {
  const alphabet = ['.', '\r', '\n', 'a', '\r\n', '\r\n.'];
  for (let round = 0; round < 2000; round++) {
    const msg = Buffer.from(Array.from({ length: randomInt(0, 30) }, () => alphabet[randomInt(alphabet.length)]).join(''), 'latin1');
    assert.deepEqual(stuffInPieces(msg).toString('latin1'), reference(msg).toString('latin1'), JSON.stringify(msg.toString('latin1')));
  }
});

test('dot-stuffing examples', () => {
  const stuff = (s: string) => {
    const d = new DotStuffer();
    return Buffer.concat([...d.push(Buffer.from(s)), d.end()]).toString();
  };
  assert.equal(stuff(''), '.\r\n');
  assert.equal(stuff('.\r\n'), '..\r\n.\r\n');
  assert.equal(stuff('a\r\n.\r\nb'), 'a\r\n..\r\nb\r\n.\r\n');
  assert.equal(stuff('a\n.b\r'), 'a\n..b\r\r\n.\r\n');
});
