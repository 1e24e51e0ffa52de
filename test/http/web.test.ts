// The admin and account web applications in headless Chromium against a running server, with
// SMTP and IMAP clients checking that what was configured in the browser works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import nodemailer from 'nodemailer';
import { ImapFlow } from 'imapflow';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startLocalserve, startServe, type TestServer } from '../helpers/server.js';
import { ensureWebBuilt, launch, screenshotDir } from './browser.js';
import { parsePolicy } from '../../src/mtasts/policy.js';

let srv: TestServer;
let browser: Browser;
let adminBase: string;
let accountBase: string;

before(async () => {
  ensureWebBuilt();
  srv = await startServe({
    web: {},
    domains: '    MTASTS:\n      PolicyID: 20260101a\n      Mode: enforce\n      MaxAge: 604800\n',
  });
  fs.writeFileSync(path.join(srv.dir, 'config', 'adminpasswd'), (await import('bcryptjs')).default.hashSync('admin-secret', 4) + '\n');
  browser = await launch();
  adminBase = `http://127.0.0.1:${srv.ports.http}/admin/`;
  accountBase = `http://127.0.0.1:${srv.ports.http}/`;
  fs.mkdirSync(screenshotDir, { recursive: true });
});

after(async () => {
  await browser?.close();
  await srv?.close();
});

async function newPage(): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 900 } });
  const page = await ctx.newPage();
  page.on('dialog', (d) => void d.accept());
  return { ctx, page };
}

async function adminLogin(page: Page): Promise<void> {
  await page.goto(adminBase);
  await page.fill('#login input[name=password]', 'admin-secret');
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#domains');
}

/** Logs in with the raw API; returns the cookie and the CSRF token. */
async function apiLogin(base: string, body: Record<string, string>): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const r = await fetch(`${base}api/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  const setCookie = r.headers.get('set-cookie')!;
  return { cookie: setCookie.split(';')[0]!, csrf: ((await r.json()) as { csrf: string }).csrf, setCookie };
}

function imapLogin(user: string, pass: string): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user, pass }, logger: false });
  return c.connect().then(() => c);
}

test('wrong admin passwords are answered more and more slowly', async () => {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    const r = await fetch(`${adminBase}api/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ password: `wrong${i}` }) });
    times.push(Date.now() - t0);
    assert.equal(r.status, 401);
  }
  // The first failures are answered at once; from the fourth on, each waits a second longer.
  assert.ok(times[0]! < 900, `first failure took ${times[0]}ms`);
  assert.ok(times[3]! >= 950, `fourth failure took ${times[3]}ms`);
  assert.ok(times[4]! >= 1950, `fifth failure took ${times[4]}ms`);
  assert.ok((await srv.metric('postern_authentications_total', { protocol: 'http', mechanism: 'web-admin', result: 'fail' })) >= 5);
  // A new minute starts the count again, so the other tests log in without delay.
  await srv.advanceClock(61_000);
});

test('admin adds a domain and an account; the account receives mail over SMTP and logs in with IMAP', async () => {
  const { ctx, page } = await newPage();
  await adminLogin(page);
  await page.fill('#domain-add input[name=domain]', 'web.test');
  await page.click('#domain-add button[type=submit]');
  await page.waitForSelector('#domains a[href="#domain/web.test"]');
  await page.fill('#account-add input[name=account]', 'bob');
  await page.fill('#account-add input[name=address]', 'bob@web.test');
  await page.click('#account-add button[type=submit]');
  await page.waitForSelector('#password-set');
  await page.fill('#password-set input[name=password]', 'bob-password-1');
  await page.click('#password-set button[type=submit]');
  await page.waitForSelector('#notice.ok:has-text("Password set")');
  await page.fill('#address-add input[name=address]', 'robert@web.test');
  await page.click('#address-add button[type=submit]');
  await page.waitForSelector('td:has-text("robert@web.test")');
  // The edit went through the comment-keeping config code: the file's first line is still there.
  const domains = fs.readFileSync(path.join(srv.dir, 'config', 'domains.conf'), 'utf8');
  assert.match(domains, /^# Test domains\./);
  assert.match(domains, /web\.test/);
  assert.match(domains, /robert@web\.test/);

  await page.goto(`${adminBase}#`);
  await page.waitForSelector('#accounts td:has-text("bob@web.test")');
  await page.screenshot({ path: path.join(screenshotDir, 'admin-overview.png'), fullPage: true });

  // Delivery from the internet, without restart.
  const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: srv.ports.smtp, secure: false, ignoreTLS: true, name: 'client.remote.example' });
  await smtp.sendMail({
    envelope: { from: 'alice@remote.example', to: ['bob@web.test', 'robert@web.test'] },
    raw: 'From: alice@remote.example\r\nTo: bob@web.test\r\nSubject: hello bob\r\nMessage-ID: <1@remote.example>\r\n\r\nHi Bob.\r\n',
  });
  const imap = await imapLogin('bob@web.test', 'bob-password-1');
  try {
    // Both addresses are the same account, which gets one copy.
    assert.equal(((await imap.status('INBOX', { messages: true })) as { messages?: number }).messages, 1);
  } finally {
    await imap.logout();
  }

  // DNS records of the new domain, and their check against what the DNS server has.
  srv.dns.set('web.test', 'MX', [{ preference: 10, exchange: 'mail.example.test' }]);
  srv.dns.set('web.test', 'TXT', ['v=spf1 mx -all']);
  srv.dns.set('_dmarc.web.test', 'TXT', ['v=DMARC1; p=none']);
  await page.click('#domains a[href="#domain/web.test"]');
  await page.waitForSelector('table.records');
  const zone = await page.textContent('#zone');
  assert.match(zone!, /web\.test\.\s+IN MX\s+10 mail\.example\.test\./);
  assert.match(zone!, /_submissions\._tcp\.web\.test\.\s+IN SRV\s+0 1 \d+ mail\.example\.test\./);
  assert.match(zone!, /_pop3s\._tcp\.web\.test\.\s+IN SRV\s+0 0 0 \./);
  await page.click('#dnscheck-button');
  await page.waitForSelector('#dnscheck table');
  const rows = (await page.evaluate(`Array.from(document.querySelectorAll('#dnscheck tr')).map((tr) => Array.from(tr.children).map((td) => td.textContent))`)) as string[][];
  const row = (name: string, type: string) => rows.find((r) => r[1] === name && r[2] === type);
  assert.equal(row('web.test.', 'MX')?.[0], 'ok');
  assert.equal(row('_dmarc.web.test.', 'TXT')?.[0], 'warning', JSON.stringify(row('_dmarc.web.test.', 'TXT')));
  assert.equal(row('_smtp._tls.web.test.', 'TXT')?.[0], 'warning');
  await page.screenshot({ path: path.join(screenshotDir, 'admin-domain.png'), fullPage: true });
  await ctx.close();
});

test('admin lists, dumps, kicks and drops queued messages', async () => {
  const submit = nodemailer.createTransport({ host: '127.0.0.1', port: srv.ports.submissions, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user: 'jane@example.test', pass: 'secret-pass' } });
  for (const n of [1, 2]) {
    await submit.sendMail({ from: 'jane@example.test', to: `friend${n}@elsewhere.example`, subject: `queued ${n}`, text: `message ${n} for the queue\n` });
  }
  const { ctx, page } = await newPage();
  await adminLogin(page);
  await page.click('nav a[href="#queue"]');
  await page.waitForSelector('#queue td:has-text("friend2@elsewhere.example")');
  assert.equal(await page.locator('#queue input.pick').count(), 2);
  await page.screenshot({ path: path.join(screenshotDir, 'admin-queue.png'), fullPage: true });
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#queue tr:has-text("friend1@") a:has-text("Dump")').click()]);
  assert.match(fs.readFileSync((await download.path())!, 'utf8'), /Subject: queued 1\r\n[\s\S]*message 1 for the queue/);
  await page.locator('#queue tr:has-text("friend1@") input.pick').check();
  await page.click('button:has-text("Kick")');
  await page.waitForSelector('#notice.ok:has-text("Kick: 1 messages")');
  await page.locator('#queue tr:has-text("friend1@") input.pick').check();
  await page.click('button:has-text("Drop")');
  await page.waitForSelector('#notice.ok:has-text("Drop: 1 messages")');
  assert.equal(await page.locator('#queue input.pick').count(), 1);
  const left = (await srv.cli(['queue', 'list'])).stdout;
  assert.match(left, /friend2@elsewhere\.example/);
  assert.doesNotMatch(left, /friend1@/);
  await page.click('nav a[href="#reports"]');
  await page.waitForSelector('#dmarc-reports p.empty:has-text("No DMARC reports received")');
  await page.waitForSelector('#tls-reports p.empty:has-text("No TLS reports received")');
  await ctx.close();
});

test('account logs in, changes its password, edits delivery rules and downloads a configuration profile', async () => {
  const { ctx, page } = await newPage();
  await page.goto(accountBase);
  await page.fill('#login input[name=username]', 'bob@web.test');
  await page.fill('#login input[name=password]', 'bob-password-1');
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#addresses li:has-text("robert@web.test")');

  await page.fill('#password-change input[name=current]', 'bob-password-1');
  await page.fill('#password-change input[name=password]', 'bob-password-2');
  await page.fill('#password-change input[name=repeat]', 'bob-password-2');
  await page.click('#password-change button[type=submit]');
  await page.waitForSelector('#notice.ok:has-text("Password changed")');
  await (await imapLogin('bob@web.test', 'bob-password-2')).logout();
  await assert.rejects(imapLogin('bob@web.test', 'bob-password-1'));

  const rules = page.locator('.rules[data-destination="bob@web.test"]');
  await rules.locator('button:has-text("Add rule")').click();
  await rules.locator('input[name=MsgFromRegexp]').fill('@lists\\.example$');
  await rules.locator('textarea[name=HeadersRegexp]').fill('list-id: dev');
  await rules.locator('input[name=Mailbox]').fill('Lists');
  await rules.locator('button:has-text("Save rules")').click();
  await page.waitForSelector('#notice.ok:has-text("Rules for bob@web.test saved")');
  const domains = fs.readFileSync(path.join(srv.dir, 'config', 'domains.conf'), 'utf8');
  assert.match(domains, /Rulesets:\n\s+- Mailbox: Lists\n/);
  assert.match(domains, /MsgFromRegexp: "@lists\\\\.example\$"/);
  assert.match(domains, /list-id: dev/);
  await page.screenshot({ path: path.join(screenshotDir, 'account.png'), fullPage: true });
  // A bad regular expression is refused by the config validation, and the file stays.
  await rules.locator('input[name=MsgFromRegexp]').fill('(unclosed');
  await rules.locator('button:has-text("Save rules")').click();
  await page.waitForSelector('#notice.error:has-text("MsgFromRegexp: invalid regular expression")');
  assert.doesNotMatch((await page.textContent('#notice'))!, /domains\.conf/);
  assert.equal(fs.readFileSync(path.join(srv.dir, 'config', 'domains.conf'), 'utf8'), domains);
  await rules.locator('input[name=MsgFromRegexp]').fill('@lists\\.example$');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.download:has-text("bob@web.test")')]);
  const profile = fs.readFileSync((await download.path())!, 'utf8');
  assert.match(profile, /<string>com\.apple\.mail\.managed<\/string>/);
  assert.match(profile, /<key>IncomingMailServerHostName<\/key>\s*<string>mail\.example\.test<\/string>/);
  assert.match(profile, new RegExp(`<key>IncomingMailServerPortNumber</key>\\s*<integer>${srv.ports.imaps}</integer>`));
  assert.ok(await page.evaluate(`(${xmlSummary})(${JSON.stringify(profile)})`), 'profile is well-formed XML');
  await ctx.close();
});

test('account sets up webhooks; a message that arrives is posted to the incoming one; bad settings are refused', async () => {
  const posts: { path: string; auth: string | undefined; body: Record<string, unknown> }[] = [];
  const hooks = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ path: req.url ?? '', auth: req.headers.authorization, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  const port = (hooks.address() as AddressInfo).port;
  const { ctx, page } = await newPage();
  try {
    await page.goto(accountBase);
    await page.fill('#login input[name=username]', 'bob@web.test');
    await page.fill('#login input[name=password]', 'bob-password-2');
    await page.click('#login button[type=submit]');
    const f = page.locator('#webhooks-form');
    await f.waitFor();
    await f.locator('input[name=outURL]').fill(`http://127.0.0.1:${port}/out`);
    await f.locator('input[name=event-failed]').check();
    await f.locator('input[name=event-delivered]').check();
    await f.locator('input[name=inURL]').fill(`http://127.0.0.1:${port}/in`);
    await f.locator('input[name=inAuth]').fill('Bearer s3cret');
    await f.locator('button[type=submit]').click();
    await page.waitForSelector('#notice.ok:has-text("Webhooks saved")');
    const domains = fs.readFileSync(path.join(srv.dir, 'config', 'domains.conf'), 'utf8');
    assert.match(domains, new RegExp(`OutgoingWebhook:\\n\\s+URL: http://127\\.0\\.0\\.1:${port}/out\\n\\s+Events:\\n\\s+- delivered\\n\\s+- failed\\n`));
    assert.match(domains, /IncomingWebhook:\n\s+URL: .*\/in\n\s+Authorization: Bearer s3cret\n/);

    const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: srv.ports.smtp, secure: false, ignoreTLS: true, name: 'client.remote.example' });
    await smtp.sendMail({
      envelope: { from: 'alice@remote.example', to: ['bob@web.test'] },
      raw: 'From: alice@remote.example\r\nTo: bob@web.test\r\nSubject: for the app\r\nMessage-ID: <hook1@remote.example>\r\n\r\nHi app.\r\n',
    });
    const deadline = Date.now() + 10_000;
    while (!posts.some((p) => p.path === '/in') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const p = posts.find((x) => x.path === '/in');
    assert.ok(p, 'incoming webhook posted');
    assert.equal(p.auth, 'Bearer s3cret');
    assert.equal(p.body.Subject, 'for the app');
    assert.equal(p.body.Text, 'Hi app.\n');

    // The page shows what is stored after a reload.
    await page.reload();
    await f.waitFor();
    assert.equal(await f.locator('input[name=inURL]').inputValue(), `http://127.0.0.1:${port}/in`);
    assert.ok(await f.locator('input[name=event-failed]').isChecked());
    assert.ok(!(await f.locator('input[name=event-delayed]').isChecked()));

    // Unique MAIL FROM addresses must be login addresses of the account: the config check says so, and nothing changes.
    await f.locator('textarea[name=fromIDs]').fill('jane@example.test');
    await f.locator('button[type=submit]').click();
    await page.waitForSelector('#notice.error:has-text("not an address of account bob")');
    assert.equal(fs.readFileSync(path.join(srv.dir, 'config', 'domains.conf'), 'utf8'), domains);
    await f.locator('textarea[name=fromIDs]').fill('bob@web.test');
    await f.locator('button[type=submit]').click();
    await page.waitForSelector('#notice.ok:has-text("Webhooks saved")');
    assert.match(fs.readFileSync(path.join(srv.dir, 'config', 'domains.conf'), 'utf8'), /FromIDLoginAddresses:\n\s+- bob@web\.test\n/);

    // Empty URLs turn the webhooks off.
    await f.locator('textarea[name=fromIDs]').fill('');
    await f.locator('input[name=outURL]').fill('');
    await f.locator('input[name=inURL]').fill('');
    await f.locator('button[type=submit]').click();
    await page.waitForSelector('#notice.ok:has-text("Webhooks saved")');
    assert.doesNotMatch(fs.readFileSync(path.join(srv.dir, 'config', 'domains.conf'), 'utf8'), /Webhook:|FromIDLoginAddresses/);
    // The next test expects the Inbox as it was.
    const imap = await imapLogin('bob@web.test', 'bob-password-2');
    try {
      await imap.mailboxOpen('INBOX');
      assert.ok(await imap.messageDelete({ header: { 'message-id': '<hook1@remote.example>' } }));
    } finally {
      await imap.logout();
    }
  } finally {
    await ctx.close();
    hooks.close();
  }
});

/** Per mailbox, the messages as flags, size and content, in order. */
async function mailboxContents(user: string, pass: string): Promise<Record<string, string[]>> {
  const c = await imapLogin(user, pass);
  const out: Record<string, string[]> = {};
  try {
    for (const mb of await c.list()) {
      const lock = await c.getMailboxLock(mb.path);
      try {
        const msgs: string[] = [];
        for await (const m of c.fetch('1:*', { flags: true, size: true, source: true })) {
          msgs.push(`${[...(m.flags ?? [])].sort().join(' ')} | ${m.size} | ${m.source!.toString('base64')}`);
        }
        if (msgs.length) out[mb.path] = msgs;
      } finally {
        lock.release();
      }
    }
  } finally {
    await c.logout();
  }
  return out;
}

test('account exports all mail as a zip; a fresh account imports it and has the same mailboxes, flags and bytes', async () => {
  // Flags and keywords on the delivered message, and a second mailbox.
  const imap = await imapLogin('bob@web.test', 'bob-password-2');
  try {
    await imap.mailboxOpen('INBOX');
    await imap.messageFlagsAdd('1', ['\\Seen', '\\Flagged', '$Label1', 'project-x']);
    await imap.mailboxCreate('Lists/dev');
    await imap.append('Lists/dev', 'From: list@lists.example\r\nSubject: >From the list\r\n\r\nFrom here on\r\n>From there\r\n', ['\\Answered']);
  } finally {
    await imap.logout();
  }
  const before = await mailboxContents('bob@web.test', 'bob-password-2');
  assert.equal(Object.values(before).flat().length, 2);

  const { ctx, page } = await newPage();
  await page.goto(accountBase);
  await page.fill('#login input[name=username]', 'bob@web.test');
  await page.fill('#login input[name=password]', 'bob-password-2');
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#importexport');
  await page.selectOption('#importexport select[name=format]', 'maildir');
  await page.selectOption('#importexport select[name=archive]', 'zip');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-link')]);
  const zip = fs.readFileSync((await download.path())!);
  assert.equal(zip.subarray(0, 4).toString('latin1'), 'PK\x03\x04');
  assert.match(download.suggestedFilename(), /^bob-maildir\.zip$/);
  await page.screenshot({ path: path.join(screenshotDir, 'account-importexport.png'), fullPage: true });
  await ctx.close();

  // A fresh account, made by the admin, imports the archive.
  const admin = await apiLogin(adminBase, { password: 'admin-secret' });
  for (const [method, args] of [
    ['accountAdd', { account: 'carol', address: 'carol@web.test' }],
    ['setPassword', { account: 'carol', password: 'carol-password' }],
  ] as const) {
    const r = await fetch(`${adminBase}api/${method}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: admin.cookie, 'X-Postern-CSRF': admin.csrf }, body: JSON.stringify(args) });
    assert.equal(r.status, 200, await r.text());
  }
  const c2 = await newPage();
  await c2.page.goto(accountBase);
  await c2.page.fill('#login input[name=username]', 'carol@web.test');
  await c2.page.fill('#login input[name=password]', 'carol-password');
  await c2.page.click('#login button[type=submit]');
  await c2.page.waitForSelector('#import');
  const file = path.join(srv.dir, 'export.zip');
  fs.writeFileSync(file, zip);
  await c2.page.setInputFiles('#import input[type=file]', file);
  await c2.page.click('#import button[type=submit]');
  await c2.page.waitForSelector('#notice.ok:has-text("Imported 2 messages")');
  await c2.ctx.close();
  assert.deepEqual(await mailboxContents('carol@web.test', 'carol-password'), before);
});

test('CSRF: changes without the session token are refused; cookies and headers are strict', async () => {
  const { cookie, csrf, setCookie } = await apiLogin(adminBase, { password: 'admin-secret' });
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  assert.match(setCookie, /Path=\/admin\//);
  assert.doesNotMatch(setCookie, /Secure/);
  const post = (method: string, body: unknown, headers: Record<string, string>) =>
    fetch(`${adminBase}api/${method}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: cookie, ...headers }, body: JSON.stringify(body) });
  let r = await post('domainAdd', { domain: 'csrf.test' }, {});
  assert.equal(r.status, 403);
  assert.match(((await r.json()) as { error: string }).error, /CSRF/);
  r = await post('domainAdd', { domain: 'csrf.test' }, { 'X-Postern-CSRF': csrf.slice(1) + 'x' });
  assert.equal(r.status, 403);
  r = await post('domainAdd', { domain: 'csrf.test' }, { 'X-Postern-CSRF': csrf, 'Sec-Fetch-Site': 'cross-site' });
  assert.equal(r.status, 403);
  assert.doesNotMatch(fs.readFileSync(path.join(srv.dir, 'config', 'domains.conf'), 'utf8'), /csrf\.test/);
  r = await post('domainAdd', { domain: 'csrf.test' }, { 'X-Postern-CSRF': csrf });
  assert.equal(r.status, 200);
  assert.match(fs.readFileSync(path.join(srv.dir, 'config', 'domains.conf'), 'utf8'), /csrf\.test/);
  // The account's session is another cookie; the admin token does not work there.
  r = await fetch(`${accountBase}api/overview`, { method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: cookie, 'X-Postern-CSRF': csrf }, body: '{}' });
  assert.equal(r.status, 401);

  // Over HTTPS the cookie is Secure.
  const { ctx } = await newPage();
  const https = await ctx.request.post(`https://127.0.0.1:${srv.ports.https}/api/login`, { data: { username: 'jane@example.test', password: 'secret-pass' } });
  assert.equal(https.status(), 200);
  assert.match(https.headers()['set-cookie']!, /; Secure/);
  await ctx.close();

  const page = await fetch(adminBase);
  const csp = page.headers.get('content-security-policy')!;
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  assert.ok(page.headers.get('referrer-policy'));
  const html = await page.text();
  assert.doesNotMatch(html, /<script>(?!<\/script>)/);
  assert.doesNotMatch(html, /https?:\/\//);
});

interface XMLSummary {
  root: string;
  ns: string | null;
  incoming: Server[];
  outgoing: Server[];
  protocols: Server[];
}
interface Server {
  type: string | null;
  host: string | null;
  port: number;
  security: string | null;
  login: string | null;
}

// Runs in the browser: its XML parser checks well-formedness and namespaces independently.
const xmlSummary = `(x) => {
  const doc = new DOMParser().parseFromString(x, 'application/xml');
  if (doc.getElementsByTagName('parsererror').length) return null;
  const text = (e, a, b) => (e.getElementsByTagName(a)[0] ?? e.getElementsByTagName(b)[0])?.textContent ?? null;
  const servers = (tag) => Array.from(doc.getElementsByTagName(tag)).map((e) => ({
    type: e.getAttribute('type'),
    host: text(e, 'hostname', 'Server'),
    port: Number(text(e, 'port', 'Port')),
    security: text(e, 'socketType', 'Encryption'),
    login: text(e, 'username', 'LoginName'),
  }));
  return { root: doc.documentElement.localName, ns: doc.documentElement.namespaceURI, incoming: servers('incomingServer'), outgoing: servers('outgoingServer'), protocols: servers('Protocol') };
}`;

test('autoconfig and autodiscover name the right hosts and ports; MTA-STS policy and metrics are served', async () => {
  const { ctx, page } = await newPage();
  const parse = async (xml: string) => (await page.evaluate(`(${xmlSummary})(${JSON.stringify(xml)})`)) as XMLSummary | null;
  const httpsBase = `https://127.0.0.1:${srv.ports.https}`;
  // Thunderbird asks autoconfig.<domain>; the Host header decides the domain.
  let r = await ctx.request.get(`${httpsBase}/mail/config-v1.1.xml`, { headers: { Host: 'autoconfig.example.test' } });
  assert.equal(r.status(), 200);
  const ac = await parse(await r.text());
  assert.ok(ac, 'autoconfig is well-formed XML');
  assert.equal(ac.root, 'clientConfig');
  assert.deepEqual(ac.incoming[0], { type: 'imap', host: 'mail.example.test', port: srv.ports.imaps, security: 'SSL', login: '%EMAILADDRESS%' });
  assert.deepEqual(ac.incoming[1], { type: 'imap', host: 'mail.example.test', port: srv.ports.imap, security: 'STARTTLS', login: '%EMAILADDRESS%' });
  assert.deepEqual(ac.outgoing[0], { type: 'smtp', host: 'mail.example.test', port: srv.ports.submissions, security: 'SSL', login: '%EMAILADDRESS%' });
  assert.deepEqual(ac.outgoing[1], { type: 'smtp', host: 'mail.example.test', port: srv.ports.submission, security: 'STARTTLS', login: '%EMAILADDRESS%' });
  r = await ctx.request.get(`${httpsBase}/mail/config-v1.1.xml?emailaddress=someone%40unknown.test`);
  assert.equal(r.status(), 404);

  r = await ctx.request.post(`${httpsBase}/autodiscover/autodiscover.xml`, {
    headers: { 'Content-Type': 'text/xml', Host: 'autodiscover.example.test' },
    data: '<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>jane@example.test</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>',
  });
  assert.equal(r.status(), 200);
  const ad = await parse(await r.text());
  assert.ok(ad, 'autodiscover is well-formed XML');
  assert.equal(ad.ns, 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006');
  assert.deepEqual(ad.protocols, [
    { type: null, host: 'mail.example.test', port: srv.ports.imaps, security: 'SSL', login: 'jane@example.test' },
    { type: null, host: 'mail.example.test', port: srv.ports.submissions, security: 'SSL', login: 'jane@example.test' },
  ]);
  assert.match(await r.text(), /<Type>IMAP<\/Type>[\s\S]*<Type>SMTP<\/Type>/);

  r = await ctx.request.get(`${httpsBase}/.well-known/mta-sts.txt`, { headers: { Host: 'mta-sts.example.test' } });
  assert.equal(r.status(), 200);
  assert.match(r.headers()['content-type']!, /^text\/plain/);
  const policy = parsePolicy(await r.text());
  assert.deepEqual(policy, { version: 'STSv1', mode: 'enforce', mx: ['mail.example.test'], maxAge: 604800 });
  r = await ctx.request.get(`${httpsBase}/.well-known/mta-sts.txt`, { headers: { Host: 'mta-sts.web.test' } });
  assert.equal(r.status(), 404);

  const cli = await srv.cli(['clientconfig', 'example.test']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, new RegExp(`IMAP +mail\\.example\\.test port ${srv.ports.imaps}, TLS`));
  assert.match(cli.stdout, new RegExp(`Submission +mail\\.example\\.test port ${srv.ports.submissions}, TLS`));

  r = await ctx.request.get(`http://127.0.0.1:${srv.ports.http}/metrics`);
  assert.equal(r.status(), 200);
  const metrics = await r.text();
  assert.match(metrics, /^postern_authentications_total\{protocol="http",mechanism="web-admin",result="ok"\} \d+$/m);
  assert.match(metrics, /^postern_smtpserver_connections_total\{kind="smtp"\} [1-9]/m);
  await ctx.close();
});

test('localserve serves the account and admin pages with its known passwords', async () => {
  const ls = await startLocalserve();
  try {
    const base = `http://127.0.0.1:${ls.ports.http}`;
    assert.match(await (await fetch(`${base}/admin/`)).text(), /<script src="admin\.js"/);
    await apiLogin(`${base}/admin/`, { password: 'posternadmin' });
    const { cookie, csrf } = await apiLogin(`${base}/`, { username: 'postern@localhost', password: 'posternpostern' });
    const r = await fetch(`${base}/api/overview`, { method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: cookie, 'X-Postern-CSRF': csrf }, body: '{}' });
    assert.deepEqual(((await r.json()) as { addresses: string[] }).addresses, ['postern@localhost']);
    assert.match(await (await fetch(`${base}/metrics`)).text(), /^postern_authentications_total\{protocol="http",mechanism="web-account",result="ok"\} 1$/m);
  } finally {
    await ls.close();
  }
});

test('admin is refused from IPs outside AdminIPs', async () => {
  const other = await startServe({ web: { adminIPs: ['10.0.0.0/8', 'fc00::/7'] } });
  try {
    let r = await fetch(`http://127.0.0.1:${other.ports.http}/admin/`);
    assert.equal(r.status, 403);
    r = await fetch(`http://127.0.0.1:${other.ports.http}/admin/api/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"password":"x"}' });
    assert.equal(r.status, 403);
    r = await fetch(`http://127.0.0.1:${other.ports.http}/`);
    assert.equal(r.status, 200);
  } finally {
    await other.close();
  }
});
