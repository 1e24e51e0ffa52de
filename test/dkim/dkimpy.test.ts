// Interoperability with dkimpy (Debian package python3-dkim), a second independent DKIM
// implementation, run offline: its DNS lookups are answered from the records given here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';

import { genEd25519, genRSA, txtRecord } from '../../src/dkim/keys.js';
import { sign } from '../../src/dkim/sign.js';
import { verify } from '../../src/dkim/verify.js';
import { FakeResolver } from './fakeresolver.js';
import { MESSAGE } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const available = spawnSync(PYTHON, ['-c', 'import dkim, nacl']).status === 0;
const skip = available ? false : 'python3-dkim is not installed';

// argv: "verify" RECORDS_JSON, or "sign" SELECTOR DOMAIN ALGORITHM CANON LENGTH with the key
// in $DKIM_KEY; the message comes on stdin.
const SCRIPT = `
import json, os, sys, dkim
msg = sys.stdin.buffer.read()
if sys.argv[1] == 'verify':
    records = json.loads(sys.argv[2])
    def dnsfunc(name, timeout=5):
        r = records.get(name.decode().rstrip('.'))
        return r.encode() if r is not None else None
    def check(i):
        try:
            return dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)
        except dkim.DKIMException:
            return False
    n = sum(1 for k, _ in dkim.DKIM(msg).headers if k.lower() == b'dkim-signature')
    print(json.dumps([check(i) for i in range(n)]))
else:
    selector, domain, alg, canon, length = [a.encode() for a in sys.argv[2:7]]
    key = os.environb[b'DKIM_KEY']
    sys.stdout.buffer.write(dkim.sign(msg, selector, domain, key, signature_algorithm=alg,
        canonicalize=tuple(canon.split(b'/')), include_headers=[b'from', b'to', b'subject', b'date'],
        length=length == b'1'))
`;

function python(args: string[], input: string, key = ''): string {
  const r = spawnSync(PYTHON, ['-c', SCRIPT, ...args], { input, env: { ...process.env, DKIM_KEY: key }, timeout: 30000 });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout.toString();
}

const rsaPEM = available ? await genRSA() : '';
const edPEM = available ? await genEd25519() : '';
const RECORDS: Record<string, string> = available
  ? { 'rsa._domainkey.example.org': txtRecord(rsaPEM), 'ed._domainkey.example.org': txtRecord(edPEM) }
  : {};

test('dkimpy verifies what Postern signs', { skip }, async () => {
  const now = new Date(); // dkimpy checks x= against the clock
  for (const c of ['simple/simple', 'relaxed/relaxed', 'relaxed/simple', 'simple/relaxed']) {
    const [headerCanon, bodyCanon] = c.split('/') as ['simple' | 'relaxed', 'simple' | 'relaxed'];
    const header = await sign(Buffer.from(MESSAGE), [
      { domain: 'example.org', selector: 'rsa', privateKey: rsaPEM, headerCanon, bodyCanon, timestamp: now },
      { domain: 'example.org', selector: 'ed', privateKey: edPEM, headerCanon, bodyCanon, timestamp: now },
    ]);
    assert.deepEqual(JSON.parse(python(['verify', JSON.stringify(RECORDS)], header + MESSAGE)), [true, true], c);
    const tampered = (header + MESSAGE).replace('noon', 'one');
    assert.deepEqual(JSON.parse(python(['verify', JSON.stringify(RECORDS)], tampered)), [false, false], c);
  }
});

test('Postern verifies what dkimpy signs, l= included', { skip }, async () => {
  // dkimpy takes an RSA key as PKCS#1 PEM and an Ed25519 key as its base64 seed.
  const rsaKey = createPrivateKey(rsaPEM).export({ type: 'pkcs1', format: 'pem' }).toString();
  const edSeed = Buffer.from(createPrivateKey(edPEM).export({ format: 'jwk' }).d!, 'base64url').toString('base64');
  const r = new FakeResolver(RECORDS);
  for (const c of ['simple/simple', 'relaxed/relaxed', 'relaxed/simple', 'simple/relaxed']) {
    for (const length of ['0', '1']) {
      const rsaSig = python(['sign', 'rsa', 'example.org', 'rsa-sha256', c, length], MESSAGE, rsaKey);
      const edSig = python(['sign', 'ed', 'example.org', 'ed25519-sha256', c, length], MESSAGE, edSeed);
      assert.match(rsaSig, /^DKIM-Signature:/);
      const results = await verify(Buffer.from(edSig + rsaSig + MESSAGE), r);
      assert.deepEqual(
        results.map((x) => [x.selector, x.status, x.reason]),
        [
          ['ed', 'pass', undefined],
          ['rsa', 'pass', undefined],
        ],
        `${c} l=${length}`,
      );
    }
  }
});
