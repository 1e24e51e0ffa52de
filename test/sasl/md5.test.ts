import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { MD5, hmacMD5FromState, hmacMD5State } from '../../src/sasl/md5.js';

test('MD5 matches node:crypto for every length up to 300 and some large inputs', () => {
  const lengths = [...Array.from({ length: 301 }, (_, i) => i), 1000, 4095, 4096, 65537, 1_000_003];
  for (const n of lengths) {
    const data = randomBytes(n);
    assert.equal(new MD5().update(data).digest().toString('hex'), createHash('md5').update(data).digest('hex'), `length ${n}`);
  }
});

test('MD5 gives the same digest however the input is split', () => {
  const data = randomBytes(777);
  for (const chunk of [1, 3, 63, 64, 65, 200]) {
    const md5 = new MD5();
    for (let i = 0; i < data.length; i += chunk) md5.update(data.subarray(i, i + chunk));
    assert.equal(md5.digest().toString('hex'), createHash('md5').update(data).digest('hex'), `chunk ${chunk}`);
  }
});

test('RFC 1321 A.5 test suite', () => {
  const suite: [string, string][] = [
    ['', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['a', '0cc175b9c0f1b6a831c399e269772661'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
    ['12345678901234567890123456789012345678901234567890123456789012345678901234567890', '57edf4a22be3c955ac49da2e2107b67a'],
  ];
  for (const [input, digest] of suite) assert.equal(new MD5().update(Buffer.from(input)).digest().toString('hex'), digest);
});

test('MD5 resumed from a saved state continues the same hash', () => {
  for (const blocks of [1, 2, 5]) {
    const prefix = randomBytes(64 * blocks);
    const state = new MD5().update(prefix).state();
    for (const n of [0, 1, 55, 56, 63, 64, 65, 130]) {
      const rest = randomBytes(n);
      const resumed = new MD5(state, prefix.length).update(rest).digest();
      assert.deepEqual(resumed, createHash('md5').update(prefix).update(rest).digest(), `blocks ${blocks} rest ${n}`);
    }
  }
});

test('MD5 refuses states taken or resumed inside a block', () => {
  assert.throws(() => new MD5().update(Buffer.alloc(10)).state(), /inside a block/);
  assert.throws(() => new MD5(Buffer.alloc(16), 10), /whole number of blocks/);
  assert.throws(() => new MD5(Buffer.alloc(15), 64), /16 bytes/);
});

test('HMAC-MD5 from precomputed states matches node:crypto, including keys longer than a block', () => {
  for (const keyLength of [0, 1, 16, 63, 64, 65, 200]) {
    const key = randomBytes(keyLength);
    const state = hmacMD5State(key);
    for (const n of [0, 10, 64, 100]) {
      const message = randomBytes(n);
      assert.deepEqual(hmacMD5FromState(state, message), createHmac('md5', key).update(message).digest(), `key ${keyLength} message ${n}`);
    }
  }
});

test('RFC 2195 example digest from the stored state of tanstaaftanstaaf', () => {
  const state = hmacMD5State(Buffer.from('tanstaaftanstaaf'));
  const digest = hmacMD5FromState(state, Buffer.from('<1896.697170952@postoffice.reston.mci.net>'));
  assert.equal(digest.toString('hex'), 'b913a602c7eda7a495b4e6e7334d3890');
});
