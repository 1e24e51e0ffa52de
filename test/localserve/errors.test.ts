// localserve's error injection by recipient localpart, and its acceptance of any address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalserve, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

let srv: TestServer;
before(async () => {
  srv = await startLocalserve();
});
after(async () => {
  await srv?.close();
});

async function session(): Promise<Raw> {
  const c = await Raw.connect(srv.ports.smtp);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

/** Runs a transaction and returns the codes of MAIL, RCPT and the end of DATA (0 when not reached). */
async function transaction(from: string, to: string): Promise<[number, number, number]> {
  const c = await session();
  try {
    const mail = (await c.cmd(`MAIL FROM:<${from}>`)).code;
    if (mail !== 250) return [mail, 0, 0];
    const rcpt = (await c.cmd(`RCPT TO:<${to}>`)).code;
    if (rcpt !== 250) return [mail, rcpt, 0];
    assert.equal((await c.cmd('DATA')).code, 354);
    const end = (await c.cmd('Subject: test\r\n\r\nbody\r\n.')).code;
    return [mail, rcpt, end];
  } finally {
    c.close();
  }
}

test('any address is accepted', async () => {
  assert.deepEqual(await transaction('a@example.org', 'whoever@some.other.domain'), [250, 250, 250]);
});

test('error suffixes fail after DATA', async () => {
  assert.deepEqual(await transaction('a@example.org', 'xtemperror@localhost'), [250, 250, 451]);
  assert.deepEqual(await transaction('a@example.org', 'xpermerror@localhost'), [250, 250, 550]);
  assert.deepEqual(await transaction('a@example.org', 'user552@localhost'), [250, 250, 552]);
  assert.deepEqual(await transaction('a@example.org', 'user421@localhost'), [250, 250, 421]);
});

test('rcptto prefix fails at RCPT TO, mailfrom prefix at MAIL FROM', async () => {
  assert.deepEqual(await transaction('a@example.org', 'rcpttotemperror@localhost'), [250, 451, 0]);
  assert.deepEqual(await transaction('a@example.org', 'rcptto550@localhost'), [250, 550, 0]);
  assert.deepEqual(await transaction('mailfrompermerror@example.org', 'x@localhost'), [550, 0, 0]);
  assert.deepEqual(await transaction('mailfrom451@example.org', 'x@localhost'), [451, 0, 0]);
});

test('timeout suffix gives no reply', async () => {
  const c = await session();
  try {
    assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
    c.write('RCPT TO:<rcpttotimeout@localhost>\r\n');
    await assert.rejects(c.reply(1500), /timeout/);
  } finally {
    c.close();
  }
});

test('the error comes for one failing recipient among good ones', async () => {
  const c = await session();
  try {
    await c.cmd('MAIL FROM:<a@example.org>');
    assert.equal((await c.cmd('RCPT TO:<good@localhost>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bad451@localhost>')).code, 250);
    await c.cmd('DATA');
    assert.equal((await c.cmd('Subject: x\r\n\r\nx\r\n.')).code, 451);
    // The session goes on.
    assert.equal((await c.cmd('NOOP')).code, 250);
  } finally {
    c.close();
  }
});

test('without a working resolver, messages are still accepted promptly', async () => {
  srv.dns.behave('*', 'timeout');
  try {
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) assert.deepEqual(await transaction(`a@d${i}.example`, `fast${i}@localhost`), [250, 250, 250]);
    const ms = Date.now() - t0;
    assert.ok(ms < 6000, `20 messages took ${ms} ms`);
  } finally {
    srv.dns.behave('*', null);
  }
});
