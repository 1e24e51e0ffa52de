import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';

import { genEd25519, genRSA, txtRecord } from '../../src/dkim/keys.js';
import { MessageError } from '../../src/dkim/message.js';
import { sign, type SignOptions } from '../../src/dkim/sign.js';
import { authResults, type DKIMResult, verify } from '../../src/dkim/verify.js';
import { FakeResolver } from './fakeresolver.js';
import { chunked, MESSAGE, NOW, rawSign } from './helpers.js';

const rsa = createPrivateKey(await genRSA());
const ed = createPrivateKey(await genEd25519());
const RSA_NAME = 'rsa._domainkey.example.org';
const ED_NAME = 'ed._domainkey.example.org';

function resolver(): FakeResolver {
  return new FakeResolver({ [RSA_NAME]: txtRecord(rsa), [ED_NAME]: txtRecord(ed) });
}

function opts(key: 'rsa' | 'ed', more: Partial<SignOptions> = {}): SignOptions {
  return { domain: 'example.org', selector: key, privateKey: key === 'rsa' ? rsa : ed, timestamp: NOW, ...more };
}

async function signed(message: string, ...o: SignOptions[]): Promise<string> {
  return (await sign(Buffer.from(message, 'latin1'), o)) + message;
}

async function check(message: string, r = resolver(), now = NOW): Promise<DKIMResult[]> {
  return verify(Buffer.from(message, 'latin1'), r, { now });
}

async function statuses(message: string, r = resolver(), now = NOW): Promise<string[]> {
  return (await check(message, r, now)).map((x) => `${x.status}: ${x.reason ?? ''}`);
}

test('round trips with RSA and Ed25519 in every canonicalization', async () => {
  for (const key of ['rsa', 'ed'] as const) {
    for (const headerCanon of ['simple', 'relaxed'] as const) {
      for (const bodyCanon of ['simple', 'relaxed'] as const) {
        const [r] = await check(await signed(MESSAGE, opts(key, { headerCanon, bodyCanon })));
        assert.equal(r!.status, 'pass', `${key} ${headerCanon}/${bodyCanon}: ${r!.reason}`);
        assert.equal(r!.algorithm, key === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256');
        assert.deepEqual([r!.headerCanon, r!.bodyCanon], [headerCanon, bodyCanon]);
      }
    }
  }
});

test('one call signs with several keys; fields are folded to 78 chars', async () => {
  const header = await sign(Buffer.from(MESSAGE), [opts('rsa'), opts('ed', { identity: 'alice@mail.example.org' })]);
  assert.equal(header.match(/^DKIM-Signature:/gm)?.length, 2);
  assert.ok(header.endsWith('\r\n'));
  for (const line of header.split('\r\n')) assert.ok(line.length <= 78, line);
  assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(header), 'only CRLF line ends');
  const results = await check(header + MESSAGE);
  assert.deepEqual(
    results.map((r) => [r.status, r.selector, r.identity]),
    [
      ['pass', 'rsa', undefined],
      ['pass', 'ed', 'alice@mail.example.org'],
    ],
  );
});

test('the signature field carries the expected tags', async () => {
  const header = await sign(Buffer.from(MESSAGE), opts('ed', { expiration: 3600 }));
  // Unfold: breaks stand for a space between tags, or for nothing before a ":" in h=.
  const unfolded = header.replace(/\r\n\t/g, ' ').replace(/ :/g, ':');
  const t = NOW.getTime() / 1000;
  assert.match(unfolded, /^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=example.org; s=ed; /);
  assert.ok(unfolded.includes(` t=${t}; x=${t + 3600}; `));
  // Oversigning: each name once more than it occurs (RFC 6376 8.15).
  assert.ok(
    unfolded.includes(
      ' h=From:From:To:To:Cc:Bcc:Reply-To:References:In-Reply-To:Subject:Subject:Date:Date:Message-ID:Message-ID:Content-Type:Content-Type; ',
    ),
    unfolded,
  );
  const plain = (await sign(Buffer.from(MESSAGE), opts('ed', { oversign: false, headers: ['from', 'subject', 'x-none'], expiration: 0 }))).replace(
    /\r\n\t/g,
    ' ',
  );
  assert.ok(plain.includes(' h=from:subject; '), plain);
  assert.ok(!plain.includes(' x='), plain);
});

test('default expiry is 72 hours', async () => {
  const message = await signed(MESSAGE, opts('ed'));
  const later = (s: number) => new Date(NOW.getTime() + s * 1000);
  assert.equal((await check(message, resolver(), later(72 * 3600 - 1)))[0]!.status, 'pass');
  const [r] = await check(message, resolver(), later(72 * 3600 + 1));
  assert.equal(r!.status, 'permerror');
  assert.match(r!.reason!, /expired/);
});

test('streamed input signs and verifies like a buffer', async () => {
  const whole = await sign(Buffer.from(MESSAGE), [opts('rsa'), opts('ed')]);
  const streamed = await sign(chunked(MESSAGE, 7), [opts('rsa'), opts('ed')]);
  assert.equal(streamed, whole);
  const results = await verify(chunked(whole + MESSAGE, 3), resolver(), { now: NOW });
  assert.deepEqual(
    results.map((r) => r.status),
    ['pass', 'pass'],
  );
});

test('a 100 MB message streams through signing and verification', async () => {
  const line = Buffer.from('All work and no play makes Jack a dull boy.  \r\n');
  const chunk = Buffer.concat(Array<Buffer>(1500).fill(line)); // 70,500 bytes
  const header = Buffer.from('From: a@example.org\r\nSubject: big\r\n\r\n');
  const count = Math.ceil(100e6 / chunk.length);
  async function* message(prefix = ''): AsyncGenerator<Buffer> {
    yield Buffer.concat([Buffer.from(prefix), header]);
    for (let i = 0; i < count; i++) yield chunk;
  }
  const sig = await sign(message(), [opts('ed', { bodyCanon: 'simple' }), opts('ed', { bodyCanon: 'relaxed' })]);
  const results = await verify(message(sig), resolver(), { now: NOW });
  assert.deepEqual(
    results.map((r) => r.status),
    ['pass', 'pass'],
  );
});

test('LF line ends verify like CRLF', async () => {
  const lf = MESSAGE.replace(/\r\n/g, '\n');
  const sig = await sign(Buffer.from(lf), opts('ed', { headerCanon: 'simple', bodyCanon: 'simple' }));
  assert.deepEqual(await statuses(sig + MESSAGE), ['pass: ']);
  assert.deepEqual(await statuses(sig.replace(/\r\n/g, '\n') + lf), ['pass: ']);
});

test('a changed signed header or body fails', async () => {
  for (const key of ['rsa', 'ed'] as const) {
    const message = await signed(MESSAGE, opts(key));
    assert.deepEqual(await statuses(message.replace('Lunch', 'Dinner')), ['fail: signature did not verify']);
    assert.deepEqual(await statuses(message.replace('noon', 'one')), ['fail: body hash did not verify']);
    // Relaxed canonicalization tolerates whitespace changes.
    assert.deepEqual(await statuses(message.replace('Lunch  on', 'Lunch on').replace('noon?\t', 'noon?')), ['pass: ']);
    // A field not signed may be added.
    assert.deepEqual(await statuses(message.replace('To: Bob', 'X-Spam: no\r\nTo: Bob')), ['pass: ']);
  }
});

test('oversigning stops added fields; without it a second Subject goes unnoticed', async () => {
  const add = (m: string) => m.replace('From: Alice', 'Subject: Free money\r\nFrom: Alice');
  assert.deepEqual(await statuses(add(await signed(MESSAGE, opts('ed')))), ['fail: signature did not verify']);
  assert.deepEqual(await statuses(add(await signed(MESSAGE, opts('ed', { oversign: false })))), ['pass: ']);
});

test('l= limits the signed body; content past it is reported, a shorter body fails', async () => {
  const base = 'v=1; a=ed25519-sha256; c=simple/relaxed; d=example.org; s=ed; h=From:Subject; l=20';
  const message = await rawSign(MESSAGE, ed, base);
  const [r] = await check(message);
  assert.equal(r!.status, 'pass');
  assert.match(r!.reason!, /^l= covers 20 of \d+ body bytes$/);
  assert.equal((await check(message + 'Appended by someone else\r\n'))[0]!.status, 'pass');
  const short = message.slice(0, message.indexOf('\r\n\r\nHi Bob') + 4) + 'Hi Bob\r\n';
  assert.deepEqual(await statuses(short), ['fail: body is shorter than l=20']);
  const bad = await rawSign(MESSAGE, ed, base.replace('l=20', 'l=99999999999999999999'));
  assert.deepEqual(await statuses(bad), ['permerror: invalid l= body length']);
});

test('x= must be after t=', async () => {
  const message = await rawSign(MESSAGE, ed, 'v=1; a=ed25519-sha256; d=example.org; s=ed; h=From; t=1717401600; x=1717401600');
  assert.deepEqual(await statuses(message), ['permerror: x= is not after t=']);
});

test('revoked and missing keys are permanent errors', async () => {
  const message = await signed(MESSAGE, opts('ed'));
  const r = resolver();
  r.txt.set(ED_NAME, ['v=DKIM1; k=ed25519; p=']);
  assert.deepEqual(await statuses(message, r), ['permerror: key revoked']);
  r.txt.delete(ED_NAME);
  assert.deepEqual(await statuses(message, r), [`permerror: no key record at ${ED_NAME}`]);
  r.txt.set(ED_NAME, 'NODATA');
  assert.deepEqual(await statuses(message, r), [`permerror: no key record at ${ED_NAME}`]);
});

test('DNS failures other than not-found are temporary errors', async () => {
  const message = await signed(MESSAGE, opts('ed'));
  for (const code of ['SERVFAIL', 'TIMEOUT', 'REFUSED'] as const) {
    const r = resolver();
    r.txt.set(ED_NAME, code);
    const [res] = await check(message, r);
    assert.equal(res!.status, 'temperror', code);
    assert.match(res!.reason!, new RegExp(code));
  }
});

test('rsa-sha1 is not a pass (RFC 8301 3.1)', async () => {
  const message = (await signed(MESSAGE, opts('rsa'))).replace('a=rsa-sha256', 'a=rsa-sha1');
  assert.deepEqual(await statuses(message), ['fail: rsa-sha1 is no longer accepted (RFC 8301 3.1)']);
});

test('RSA keys below 1024 bits fail; below the local minimum they are refused by policy', async () => {
  const small = generateKeyPairSync('rsa', { modulusLength: 512 });
  const tags = 'v=1; a=rsa-sha256; d=example.org; s=small; h=From';
  const r = resolver();
  r.txt.set('small._domainkey.example.org', [`v=DKIM1; p=${small.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`]);
  assert.deepEqual(await statuses(await rawSign(MESSAGE, small.privateKey, tags), r), ['fail: RSA key of 512 bits is too small (RFC 8301 3.2)']);

  const k1024 = createPrivateKey(await genRSA(1024));
  r.txt.set('small._domainkey.example.org', [txtRecord(k1024)]);
  const message = await rawSign(MESSAGE, k1024, tags);
  assert.deepEqual(await statuses(message, r), ['pass: ']);
  const [res] = await verify(Buffer.from(message), r, { now: NOW, minRSABits: 2048 });
  assert.equal(res!.status, 'policy');
});

test('key record constraints: h=, s=, k=, t=s, multiple and broken records', async () => {
  const ed25519 = txtRecord(ed);
  const message = await signed(MESSAGE, opts('ed', { identity: '@sub.example.org' }));
  const cases: [string[], string][] = [
    [[ed25519 + '; h=sha1'], 'permerror: key record does not allow sha256 (h=)'],
    [[ed25519 + '; h=sha1:sha256'], 'pass: '],
    [[ed25519 + '; s=tlsrpt'], 'permerror: key record is not for email (s=)'],
    [[ed25519 + '; s=tlsrpt:email'], 'pass: '],
    [[txtRecord(rsa)], 'permerror: key type k="rsa" does not match a='],
    [[ed25519 + '; t=s'], 'permerror: key record does not allow i= subdomains (t=s)'],
    [[ed25519, ed25519], `permerror: multiple key records at ${ED_NAME}`],
    [[ed25519, 'google-site-verification=abc'], 'pass: '],
    [['v=DKIM1; k=ed25519'], 'permerror: key record syntax error: missing p= tag'],
    [['v=DKIM1; k=ed25519; p=AAAA'], 'permerror: key record syntax error: ed25519 key must be 32 bytes'],
  ];
  for (const [records, want] of cases) {
    const r = resolver();
    r.txt.set(ED_NAME, records);
    assert.deepEqual(await statuses(message, r), [want], records.join(' | '));
  }
});

test('a failure under a testing key (t=y) counts as no signature', async () => {
  const r = resolver();
  r.txt.set(ED_NAME, [txtRecord(ed) + '; t=y']);
  const message = await signed(MESSAGE, opts('ed'));
  const [ok] = await check(message, r);
  assert.equal(ok!.status, 'pass');
  assert.equal(ok!.testing, true);
  const [bad] = await check(message.replace('noon', 'one'), r);
  assert.equal(bad!.status, 'none');
  assert.equal(bad!.reason, 'testing key: body hash did not verify');
});

test('malformed signature fields are permanent errors', async () => {
  const good = await signed(MESSAGE, opts('ed'));
  const edits: [RegExp | string, string, string][] = [
    ['v=1', 'v=2', 'permerror: incompatible version v="2"'],
    ['v=1; ', '', 'permerror: missing required tag v='],
    [/ h=[^;]*;/, '', 'permerror: missing required tag h='],
    [/ h=[^;]*;/, ' h=To:Subject;', 'permerror: From field not signed'],
    ['a=ed25519-sha256', 'a=ed448-sha256', 'permerror: unsupported algorithm a="ed448-sha256"'],
    ['c=relaxed/relaxed', 'c=relaxed/fancy', 'permerror: unsupported canonicalization c="relaxed/fancy"'],
    ['d=example.org', 'd=exa mple.org', 'permerror: invalid d= domain'],
    ['s=ed;', 's=ed; i=joe@example.com;', 'permerror: i= "joe@example.com" is not within d= example.org'],
    ['s=ed;', 's=ed; i=joe@badexample.org;', 'permerror: i= "joe@badexample.org" is not within d= example.org'],
    ['s=ed;', 's=ed; q=http;', 'permerror: unsupported query method q="http"'],
    ['s=ed;', 's=ed; s=ed;', 'permerror: signature syntax error: duplicate tag s'],
    [/\bt=\d+;/, 't=12x;', 'permerror: invalid t= timestamp'],
    ['bh=', 'bh=!', 'permerror: invalid base64 in bh='],
  ];
  for (const [from, to, want] of edits) {
    assert.deepEqual(await statuses(good.replace(from, to)), [want], String(from));
  }
  // A valid signature beside a broken one still passes.
  assert.deepEqual(await statuses('DKIM-Signature: garbage\r\n' + good), ['permerror: signature syntax error: tag without "=": "garbage"', 'pass: ']);
});

test('hostile input gives results, not crashes', async () => {
  const good = await signed(MESSAGE, opts('ed'));
  const noise = Buffer.alloc(4000);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919 + 13) % 256;
  const junk = 'DKIM-Signature: ' + noise.toString('latin1').replace(/[\r\n]/g, 'x') + '\r\n';
  const [r] = await check(junk + MESSAGE);
  assert.equal(r!.status, 'permerror');
  // A huge h= list takes bounded work.
  const huge = good.replace(/ h=[^;]*;/, ' h=From' + ':From'.repeat(100000) + ';');
  const start = Date.now();
  assert.equal((await check(huge))[0]!.status, 'fail');
  assert.ok(Date.now() - start < 5000);
  // Long whitespace runs and long tag values take linear time and give short reasons.
  const spaces = ' '.repeat(200000);
  const slow = Date.now();
  const [ws] = await check(`DKIM-Signature: v=1;${spaces}x${spaces}; a=${'y'.repeat(100000)}\r\nX${spaces}: z\r\n` + good);
  assert.equal(ws!.status, 'permerror');
  assert.equal(ws!.reason, 'signature syntax error: tag without "=": "x"');
  assert.ok(Date.now() - slow < 2000);
  const [long] = await check(good.replace('a=ed25519-sha256', `a=${'y'.repeat(100000)}`));
  assert.equal(long!.reason, `unsupported algorithm a="${'y'.repeat(40)}..."`);
  // Header sections over 1 MiB are refused as a whole.
  const [big] = await check('X-Big: ' + 'a'.repeat(1100000) + '\r\n' + good);
  assert.equal(big!.status, 'permerror');
  assert.match(big!.reason!, /header section larger/);
});

test('at most 10 signatures are verified, and the rest are reported', async () => {
  const sig = await sign(Buffer.from(MESSAGE), opts('ed'));
  const results = await check(sig.repeat(12) + MESSAGE);
  assert.equal(results.length, 11);
  assert.ok(results.slice(0, 10).every((r) => r.status === 'pass'));
  assert.equal(results[10]!.status, 'policy');
  assert.equal(results[10]!.reason, '2 more DKIM-Signature fields not verified: limit is 10');
});

test('the DNSSEC flag of the key record is passed on', async () => {
  const r = resolver();
  r.authentic.add(ED_NAME);
  const results = await check(await signed(MESSAGE, opts('ed'), opts('rsa')), r);
  assert.deepEqual(
    results.map((x) => [x.selector, x.authentic]),
    [
      ['ed', true],
      ['rsa', false],
    ],
  );
});

test('Authentication-Results text (RFC 8601)', async () => {
  assert.deepEqual(authResults([]), ['dkim=none']);
  const message = await signed(MESSAGE, opts('ed'), opts('rsa', { identity: 'alice@example.org' }));
  const results = await check(message.replace('noon', 'one'));
  const text = authResults(results);
  const b = results.map((r) => r.headerB);
  assert.ok(b.every((x) => x.length >= 8));
  const q = (v: string) => (/[/=]/.test(v) ? `"${v}"` : v);
  assert.deepEqual(text, [
    `dkim=fail reason="body hash did not verify" header.d=example.org header.s=ed header.a=ed25519-sha256 header.b=${q(b[0]!)}`,
    `dkim=fail reason="body hash did not verify" header.d=example.org header.i=alice@example.org header.s=rsa header.a=rsa-sha256 header.b=${q(b[1]!)}`,
  ]);
});

test('header.b grows until it tells signatures apart (RFC 6008)', async () => {
  const a = 'DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=From; bh=AAAA; b=ABCDEFGHIJKL1\r\n';
  const b = 'DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=From; bh=AAAA; b=ABCDEFGHIJKL2\r\n';
  const results = await check(a + b + MESSAGE);
  assert.deepEqual(
    results.map((r) => r.headerB),
    ['ABCDEFGHIJKL1', 'ABCDEFGHIJKL2'],
  );
});

test('an unsigned message has no results', async () => {
  assert.deepEqual(await check(MESSAGE), []);
});

test('signing refuses messages without exactly one From, and bad options', async () => {
  await assert.rejects(sign(Buffer.from('To: x\r\n\r\nbody'), opts('ed')), MessageError);
  await assert.rejects(sign(Buffer.from('From: a\r\nFrom: b\r\n\r\nbody'), opts('ed')), MessageError);
  await assert.rejects(sign(Buffer.from('From: a\r\nnot a field\r\n\r\nbody'), opts('ed')), MessageError);
  await assert.rejects(sign(Buffer.from(MESSAGE), opts('ed', { headers: ['To', 'Subject'] })), TypeError);
  await assert.rejects(sign(Buffer.from(MESSAGE), opts('ed', { domain: 'bad domain' })), TypeError);
  await assert.rejects(sign(Buffer.from(MESSAGE), opts('ed', { identity: 'a@example.com' })), TypeError);
  await assert.rejects(sign(Buffer.from(MESSAGE), []), TypeError);
});

test('identity local parts are quoted-printable encoded and decoded back', async () => {
  const message = await signed(MESSAGE, opts('ed', { identity: 'a;b=c d@example.org' }));
  assert.ok(message.includes('i=a=3Bb=3Dc=20d@example.org;'));
  const [r] = await check(message);
  assert.equal(r!.status, 'pass');
  assert.equal(r!.identity, 'a;b=c d@example.org');
});

test('internationalized domains are signed as A-labels', async () => {
  const r = new FakeResolver({ 'ed._domainkey.xn--bcher-kva.example': txtRecord(ed) });
  const message = await signed(MESSAGE, { ...opts('ed'), domain: 'Bücher.example' });
  const [res] = await check(message, r);
  assert.equal(res!.status, 'pass');
  assert.equal(res!.domain, 'xn--bcher-kva.example');
});
