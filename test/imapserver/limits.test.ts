// Connection limits per IP: configurable for a server, and not in the way in localserve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, startLocalserve } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

test('MaxConnectionsPerIP refuses connections over the limit, for IMAP and SMTP', async () => {
  const srv = await startServe({ staticExtra: 'MaxConnectionsPerIP: 2\n' });
  try {
    const open = [await Raw.connect(srv.ports.imap), await Raw.connect(srv.ports.imap)];
    for (const c of open) assert.match(await c.line(), /^\* OK/);
    const third = await Raw.connect(srv.ports.imap);
    assert.match(await third.line(), /^\* BYE \[UNAVAILABLE\] too many connections/);
    // SMTP has its own budget.
    const s = await Raw.connect(srv.ports.smtp);
    assert.equal((await s.reply()).code, 220);
    open.pop()!.close();
    await new Promise((r) => setTimeout(r, 200));
    const again = await Raw.connect(srv.ports.imap);
    assert.match(await again.line(), /^\* OK/);
    [...open, s, again].forEach((c) => c.close());
  } finally {
    await srv.close();
  }
});

test('localserve accepts over 1,000 concurrent IMAP sessions from loopback', async () => {
  const srv = await startLocalserve();
  const conns: Raw[] = [];
  try {
    for (let i = 0; i < 1050; i++) conns.push(await Raw.connect(srv.ports.imap));
    const greetings = await Promise.all(conns.map((c) => c.line(30_000)));
    assert.equal(greetings.filter((g) => g.startsWith('* OK')).length, 1050);
    // The last ones can log in and work.
    const last = conns[conns.length - 1]!;
    assert.match((await last.imap('a', 'LOGIN postern@localhost posternpostern')).status, /^OK/);
    assert.match((await last.imap('b', 'SELECT INBOX')).status, /^OK/);
  } finally {
    conns.forEach((c) => c.close());
    await srv.close();
  }
});
