// Reputation steps on an account written through the store, as in mox's reputation tests:
// From address, addresses written to, From domain, verified DKIM/SPF domains, IP networks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store, type Account } from '../../src/store/store.js';
import { Flag } from '../../src/store/flags.js';
import type { MessageMeta } from '../../src/store/account.js';
import { reputationPrefixes } from '../../src/limits/limiter.js';
import { reputation, type Sender } from '../../src/junk/reputation.js';
import { junkSettings } from '../../src/junk/settings.js';
import { Filter } from '../../src/junk/filter.js';
import { Trainer } from '../../src/junk/train.js';
import { Log } from '../../src/log/log.js';

let dir: string;
let store: Store;
const day = 86400_000;
const now = Date.UTC(2026, 5, 1);
const s = junkSettings(undefined);

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-rep-'));
  store = new Store(dir);
});
after(() => {
  for (const a of opened) {
    a.trainer.close();
    a.filter.close();
  }
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function sender(from: string, ip: string, o: Partial<Sender> = {}): Sender {
  const domain = from.split('@')[1]!;
  return {
    remoteIP: ip,
    remoteIPMasks: reputationPrefixes(ip),
    ipv4: !ip.includes(':'),
    ehloDomain: 'mail.' + domain,
    ehloValidated: false,
    mailFromDomain: domain,
    mailFromValidated: false,
    msgFrom: from,
    msgFromDomain: domain,
    msgFromOrgDomain: domain.split('.').slice(-2).join('.'),
    msgFromValidated: false,
    dkimDomains: [],
    ...o,
  };
}

interface Acc {
  acc: Account;
  filter: Filter;
  trainer: Trainer;
}

/** Delivers a message and waits until the trainer has classified it. */
async function add(a: Acc, snd: Sender, o: { flags?: number; mailbox?: string; age?: number } = {}): Promise<void> {
  const file = await store.writeTemp(Buffer.from(`From: ${snd.msgFrom}\r\nSubject: x\r\n\r\nbody\r\n`));
  const meta: MessageMeta = { ...snd, mailFrom: `x@${snd.mailFromDomain}` };
  await a.acc.deliver(file, { mailbox: o.mailbox ?? 'Inbox', flags: o.flags ?? 0, received: now - (o.age ?? day), meta });
  await a.trainer.idle();
}

let n = 0;
const opened: Acc[] = [];
function fresh(): Acc {
  const acc = store.account(`acc${++n}`);
  const filter = new Filter(path.join(acc.dir, 'junkfilter.db'));
  const a = { acc, filter, trainer: new Trainer(acc, filter, () => s, { now: () => now }, Log.pkg('junk')) };
  opened.push(a);
  return a;
}
const rep = (a: Acc, snd: Sender) => reputation(a.acc, a.filter.db, snd, now);

test('no history: nothing to go by', () => {
  assert.deepEqual(rep(fresh(), sender('a@one.example', '192.0.2.1')), { conclusive: false, method: 'none' });
});

test('From address: verified history decides; unverified is a hint only', async () => {
  const acc = fresh();
  const v = sender('a@one.example', '192.0.2.1', { msgFromValidated: true });
  await add(acc, v, { flags: Flag.NotJunk });
  assert.deepEqual(rep(acc, v), { junk: false, conclusive: true, method: 'msgfromfull' });
  await add(acc, v, { flags: Flag.Junk, age: day / 2 });
  // The last message was junk, the one before was not: accept.
  assert.deepEqual(rep(acc, v), { junk: false, conclusive: true, method: 'msgfromfull' });
  await add(acc, v, { flags: Flag.Junk, age: day / 4 });
  assert.deepEqual(rep(acc, v), { junk: true, conclusive: true, method: 'msgfromfull' });
  // The same address, unverified now, while earlier mail was verified: likely forged.
  const u = { ...v, msgFromValidated: false };
  assert.deepEqual(rep(acc, u), { junk: true, conclusive: true, method: 'msgfromfull' });
});

test('addresses and domains written to are known good', () => {
  const acc = fresh();
  acc.acc.recordRecipients([{ address: 'friend@two.example', domain: 'two.example', orgDomain: 'two.example' }], now - 30 * day);
  assert.deepEqual(rep(acc, sender('friend@two.example', '192.0.2.2')), { junk: false, conclusive: true, method: 'msgtofull' });
  assert.deepEqual(rep(acc, sender('colleague@two.example', '192.0.2.2')), { junk: false, conclusive: true, method: 'msgtodomain' });
  // Too long ago.
  acc.acc.recordRecipients([{ address: 'old@three.example', domain: 'three.example', orgDomain: 'three.example' }], now - 4 * 365 * day);
  assert.equal(rep(acc, sender('old@three.example', '192.0.2.3')).method, 'none');
});

test('From domain: mostly good accepts; all junk from 3 addresses rejects', async () => {
  const acc = fresh();
  for (let i = 0; i < 5; i++) await add(acc, sender(`p${i}@four.example`, '192.0.2.4'), { flags: Flag.NotJunk });
  assert.deepEqual(rep(acc, sender('new@four.example', '198.51.100.1')), { junk: false, conclusive: true, method: 'msgfromdomain' });
  for (let i = 0; i < 2; i++) await add(acc, sender(`s${i}@five.example`, '192.0.2.5'), { flags: Flag.Junk });
  assert.deepEqual(rep(acc, sender('new@five.example', '198.51.100.1')), { junk: true, conclusive: false, method: 'msgfromdomain' });
  await add(acc, sender('s2@five.example', '192.0.2.5'), { flags: Flag.Junk });
  assert.deepEqual(rep(acc, sender('new@five.example', '198.51.100.1')), { junk: true, conclusive: true, method: 'msgfromdomain' });
  // Subdomains share the organizational domain.
  assert.deepEqual(rep(acc, sender('x@mail.four.example', '198.51.100.1', { msgFromOrgDomain: 'four.example' })).method, 'msgfromorgdomain');
});

test('verified DKIM domain', async () => {
  const acc = fresh();
  const esp = (from: string) => sender(from, '192.0.2.6', { dkimDomains: ['esp.example'] });
  for (let i = 0; i < 3; i++) await add(acc, esp(`n${i}@six${i}.example`), { flags: Flag.NotJunk });
  assert.deepEqual(rep(acc, esp('x@seven.example')), { junk: false, conclusive: true, method: 'dkimspf' });
});

test('IP networks: the IP needs 2 messages, wider networks more', async () => {
  const acc = fresh();
  await add(acc, sender('a@s1.example', '192.0.2.10'), { flags: Flag.Junk });
  assert.deepEqual(rep(acc, sender('z@new1.example', '192.0.2.10')), { junk: true, conclusive: false, method: 'ip1' });
  await add(acc, sender('b@s2.example', '192.0.2.10'), { flags: Flag.Junk });
  assert.deepEqual(rep(acc, sender('z@new1.example', '192.0.2.10')), { junk: true, conclusive: true, method: 'ip1' });
  // Same /26, other IP: 2 of the 5 needed.
  assert.deepEqual(rep(acc, sender('z@new1.example', '192.0.2.20')), { junk: true, conclusive: false, method: 'ip2' });
  // IPv6: the /64 counts as the host.
  await add(acc, sender('c@s3.example', '2001:db8:1:2::1'), { flags: Flag.NotJunk });
  await add(acc, sender('d@s4.example', '2001:db8:1:2::2'), { flags: Flag.NotJunk });
  assert.deepEqual(rep(acc, sender('z@new2.example', '2001:db8:1:2::99')), { junk: false, conclusive: true, method: 'ip1' });
});

test('messages kept in Inbox count as good after KeptDays, in Junk as junk; Rejects say nothing', async () => {
  const acc = fresh();
  await add(acc, sender('a@k1.example', '192.0.2.30'), { age: 2 * day });
  await add(acc, sender('b@k1.example', '192.0.2.30'), { age: 2 * day });
  assert.equal(rep(acc, sender('z@other.example', '192.0.2.30')).method, 'none');
  await add(acc, sender('c@k1.example', '192.0.2.31'), { age: 8 * day });
  await add(acc, sender('d@k1.example', '192.0.2.31'), { age: 9 * day });
  assert.deepEqual(rep(acc, sender('z@other.example', '192.0.2.31')), { junk: false, conclusive: true, method: 'ip1' });
  await add(acc, sender('e@k2.example', '192.0.2.32'), { mailbox: 'Junk', age: 8 * day });
  await add(acc, sender('f@k2.example', '192.0.2.32'), { mailbox: 'Junk', age: 8 * day });
  assert.deepEqual(rep(acc, sender('z@other.example', '192.0.2.32')), { junk: true, conclusive: true, method: 'ip1' });
  await add(acc, sender('g@k3.example', '203.0.113.33'), { mailbox: 'Rejects', age: 8 * day });
  assert.equal(rep(acc, sender('z@other.example', '203.0.113.33')).method, 'none');
});
