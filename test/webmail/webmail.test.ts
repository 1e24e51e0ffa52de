// The webmail in headless Chromium against a running server, with SMTP clients delivering mail and
// IMAP clients checking what the browser did: reading, live updates, replying with an attachment,
// HTML messages that must neither run nor load anything, keyboard shortcuts, junk and drafts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { ImapFlow } from 'imapflow';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { root, startServe, type TestServer } from '../helpers/server.js';
import { ensureWebBuilt, launch, screenshotDir } from '../http/browser.js';
import { parseMessage } from '../../src/message/part.js';
import { decodedBody } from '../../src/message/decode.js';
import { partName } from '../../src/webmail/messages.js';

let srv: TestServer;
let browser: Browser;
let base: string;
let origin: string;
/** A web server standing for every remote host a message could make the browser contact. */
let tracker: http.Server;
let trackerPort: number;
const trackerHits: string[] = [];

before(async () => {
  ensureWebBuilt();
  // A build from before the webmail existed may look current to ensureWebBuilt.
  if (!fs.existsSync(path.join(root, 'dist', 'web', 'webmail.js'))) execFileSync(process.execPath, [path.join(root, 'web', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  srv = await startServe({
    web: {},
    accounts: '  bob:\n    Domain: example.test\n    Destinations:\n      bob@example.test: {}\n',
    passwords: { bob: 'bob-password' },
  });
  // The test server has no webmail listener: add one next to the account pages, and restart.
  const conf = fs.readFileSync(srv.configFile, 'utf8');
  const account = `    AccountHTTP:\n      Enabled: true\n      Port: ${srv.ports.http}\n`;
  assert.ok(conf.includes(account));
  fs.writeFileSync(srv.configFile, conf.replace(account, `${account}    WebmailHTTP:\n      Enabled: true\n      Port: ${srv.ports.http}\n`));
  await srv.restart();
  origin = `http://127.0.0.1:${srv.ports.http}`;
  base = `${origin}/webmail/`;
  tracker = http.createServer((req, res) => {
    trackerHits.push(req.url ?? '');
    res.writeHead(200, { 'Content-Type': 'image/gif' });
    res.end(Buffer.from('R0lGODlhAQABAAAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64'));
  });
  await new Promise<void>((r) => tracker.listen(0, '127.0.0.1', r));
  trackerPort = (tracker.address() as { port: number }).port;
  browser = await launch();
  fs.mkdirSync(screenshotDir, { recursive: true });
});

after(async () => {
  await browser?.close();
  tracker?.close();
  await srv?.close();
});

async function newPage(): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  const page = await ctx.newPage();
  return { ctx, page };
}

async function login(page: Page, user = 'jane@example.test', pass = 'secret-pass'): Promise<void> {
  await page.goto(base);
  await page.fill('#login input[name=username]', user);
  await page.fill('#login input[name=password]', pass);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#mailbox-list li[data-mailbox]');
}

function imapLogin(user: string, pass: string): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user, pass }, logger: false });
  return c.connect().then(() => c);
}

/** Messages of a mailbox with the given subject: flags and source. */
async function imapFind(user: string, pass: string, mailbox: string, subject: string): Promise<{ uid: number; flags: Set<string>; source: Buffer }[]> {
  const c = await imapLogin(user, pass);
  try {
    await c.mailboxOpen(mailbox);
    const uids = (await c.search({ subject }, { uid: true })) || [];
    const out: { uid: number; flags: Set<string>; source: Buffer }[] = [];
    if (uids.length) for await (const m of c.fetch(uids.join(','), { uid: true, flags: true, source: true }, { uid: true })) out.push({ uid: m.uid, flags: m.flags ?? new Set(), source: m.source! });
    return out;
  } finally {
    await c.logout();
  }
}

async function until(f: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const submitAs = (user: string, pass: string) =>
  nodemailer.createTransport({ host: '127.0.0.1', port: srv.ports.submissions, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user, pass } });
const smtp = () => nodemailer.createTransport({ host: '127.0.0.1', port: srv.ports.smtp, secure: false, ignoreTLS: true, name: 'client.remote.example' });

const unread = (page: Page, name: string) => page.textContent(`#mailbox-list li:has(.name:text-is("${name}")) .unread`, { timeout: 2000 }).catch(() => null);

test('read mail delivered by SMTP, see new mail arrive live, reply with an attachment that arrives and sits in Sent', async () => {
  await submitAs('bob@example.test', 'bob-password').sendMail({
    from: 'Bob <bob@example.test>',
    to: 'jane@example.test',
    subject: 'Plans for Friday',
    text: 'Hi Jane,\n\nshall we meet at the station at ten?\nhttps://maps.example/station\n\nBob\n',
    messageId: '<plans-1@example.test>',
  });
  const { ctx, page } = await newPage();
  await login(page);
  const row = page.locator('.msg', { hasText: 'Plans for Friday' });
  await row.waitFor();
  assert.match((await row.getAttribute('class'))!, /unread/);
  assert.equal(await unread(page, 'Inbox'), '1');
  await row.click();
  await page.waitForSelector('#reader article.message .text-body');
  assert.match((await page.textContent('#reader .text-body'))!, /shall we meet at the station at ten\?/);
  assert.equal(await page.getAttribute('#reader .text-body a', 'href'), 'https://maps.example/station');
  // Opening marked it read, and the count followed through the event stream.
  await until(async () => (await unread(page, 'Inbox')) === null, 'unread count to go');
  assert.doesNotMatch((await row.getAttribute('class'))!, /unread/);

  // New mail from the internet shows up without a reload.
  await smtp().sendMail({ envelope: { from: 'carol@remote.example', to: ['jane@example.test'] }, raw: 'From: Carol <carol@remote.example>\r\nTo: jane@example.test\r\nSubject: Arrived just now\r\nMessage-ID: <live-1@remote.example>\r\n\r\nHello from Carol.\r\n' });
  await page.locator('.msg', { hasText: 'Arrived just now' }).waitFor({ timeout: 10_000 });
  await until(async () => (await unread(page, 'Inbox')) === '1', 'unread count 1');
  assert.equal(await page.locator('.msg').first().locator('.subject').textContent().then((t) => t!.startsWith('Arrived just now')), true);

  // Reply with "r" to the open message, attach a file, send.
  await page.locator('#reader').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('r');
  await page.waitForSelector('#compose');
  assert.equal(await page.inputValue('#compose input[name=to]'), 'Bob <bob@example.test>');
  assert.equal(await page.inputValue('#compose input[name=subject]'), 'Re: Plans for Friday');
  assert.match(await page.inputValue('#compose textarea'), /> shall we meet at the station at ten\?/);
  await page.locator('#compose textarea').press('Control+Home');
  await page.locator('#compose textarea').pressSequentially('Ten is fine, the ticket is attached.');
  const ticket = Buffer.from(`%PDF-1.4 ticket ${'x'.repeat(5000)}\n`);
  await page.setInputFiles('#compose input[type=file]', { name: 'Fahrkarte für Freitag.pdf', mimeType: 'application/pdf', buffer: ticket });
  await page.waitForSelector('#compose .compose-attachments li:has-text("Fahrkarte für Freitag.pdf")');
  await page.screenshot({ path: path.join(screenshotDir, 'webmail-compose.png') });
  await page.keyboard.press('Control+Enter');
  await page.waitForSelector('#notice.ok:has-text("Message sent")');
  assert.equal(await page.locator('#compose').count(), 0);

  // Bob has it, with the attachment and the threading fields.
  const got = await imapFind('bob@example.test', 'bob-password', 'INBOX', 'Re: Plans for Friday');
  assert.equal(got.length, 1);
  const msg = got[0]!.source;
  const rootPart = parseMessage(msg);
  const env = rootPart.envelope!;
  assert.equal(env.inReplyTo, '<plans-1@example.test>');
  assert.match(msg.toString(), /^References: <plans-1@example\.test>\r$/m);
  assert.match(msg.toString(), /^Received: from \[127\.0\.0\.1\] [^]*?\twith HTTP id /m);
  const pdf = rootPart.parts!.find((p) => p.subtype === 'pdf')!;
  assert.equal(partName(pdf, '1'), 'Fahrkarte für Freitag.pdf');
  assert.ok(decodedBody(msg, pdf).equals(ticket));
  assert.match(msg.toString(), /^Ten is fine, the ticket is attached\.\r$/m);
  // Jane's Sent has the copy, read; the original is answered.
  const sent = await imapFind('jane@example.test', 'secret-pass', 'Sent', 'Re: Plans for Friday');
  assert.equal(sent.length, 1);
  assert.ok(sent[0]!.flags.has('\\Seen'));
  assert.equal(parseMessage(sent[0]!.source).envelope!.messageId, env.messageId);
  const orig = await imapFind('jane@example.test', 'secret-pass', 'INBOX', 'Plans for Friday');
  assert.ok(orig.find((m) => !m.source.includes('Re: Plans'))!.flags.has('\\Answered'));

  // Bob answers; in conversation view both of his messages are one conversation.
  await submitAs('bob@example.test', 'bob-password').sendMail({
    from: 'Bob <bob@example.test>',
    to: 'jane@example.test',
    subject: 'Re: Plans for Friday',
    text: 'Great, see you there!\n',
    inReplyTo: env.messageId,
    references: ['<plans-1@example.test>', env.messageId!],
  });
  await page.locator('.msg', { hasText: 'Great, see you there' }).waitFor();
  await page.keyboard.press('t');
  const conv = page.locator('.msg', { hasText: 'Plans for Friday' });
  await page.waitForSelector('.msg .count');
  assert.equal(await conv.locator('.count').textContent(), '2');
  assert.equal(await page.locator('.msg').count(), 2);
  await conv.click();
  await page.waitForSelector('#conversation article.message:not(.expanded)');
  assert.equal(await page.locator('#conversation article.message').count(), 2);
  assert.match((await page.textContent('#conversation article.expanded'))!, /Great, see you there!/);
  await page.screenshot({ path: path.join(screenshotDir, 'webmail.png') });
  await page.keyboard.press('t');
  await ctx.close();
});

test('an HTML message with scripts, handlers and remote images runs nothing and loads nothing', async () => {
  const t = `http://127.0.0.1:${trackerPort}`;
  const html = `<!doctype html><html><head><title>Offer</title>
<meta http-equiv="refresh" content="0;url=${t}/refresh">
<link rel="stylesheet" href="${t}/link.css">
<style>@import url(${t}/import.css); body { background: url(${t}/bg.png); font-family: Georgia, serif } h1 { color: #2a6 }</style>
<script>fetch('${t}/script'); document.title = 'pwned'; parent.postMessage('pwned', '*');</script>
<script src="${t}/external.js"></script>
</head><body onload="fetch('${t}/onload')">
<h1>Spring offer</h1>
<p>Dear customer, <b>look</b> at this.</p>
<img src="${t}/img1.png" alt="banner" width="300" height="60">
<img src="x" onerror="fetch('${t}/onerror'); document.title='pwned'">
<img src="/webmail/api/track.png"><img src="track.png">
<svg onload="fetch('${t}/svg')"><image href="${t}/svgimage.png"/></svg>
<iframe src="${t}/iframe"></iframe><iframe srcdoc="<script>fetch('${t}/srcdoc')</script>"></iframe>
<object data="${t}/object"></object><embed src="${t}/embed"><video poster="${t}/poster.png"></video>
<form action="${t}/form"><input name="q" autofocus onfocus="fetch('${t}/onfocus')"><button>Go</button></form>
<div style="background-image: url('${t}/div.png'); padding: 4px">styled</div>
<a href="javascript:fetch('${t}/jslink')">click</a> <a href="https://shop.example/">shop</a>
<table background="${t}/table.png"><tr><td>cell</td></tr></table>
<img src="${t}/img2.png" alt="footer">
</body></html>`;
  await smtp().sendMail({
    envelope: { from: 'offers@remote.example', to: ['jane@example.test'] },
    raw: `From: Offers <offers@remote.example>\r\nTo: jane@example.test\r\nSubject: Spring offer\r\nMessage-ID: <offer-1@remote.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${html.replace(/\n/g, '\r\n')}\r\n`,
  });
  // Every request the server sees is logged from now on.
  assert.equal((await srv.cli(['loglevels', 'debug', 'http'])).code, 0);
  const logStart = srv.output.length;
  const { ctx, page } = await newPage();
  const requests: string[] = [];
  const events: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  ctx.on('page', (p) => events.push(`popup: ${p.url()}`));
  page.on('dialog', (d) => {
    events.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await login(page);
  // From here on, the page logs nothing unless something in the message runs or fails to load.
  page.on('console', (m) => events.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => events.push(`pageerror: ${e.message}`));
  await page.evaluate(`window.addEventListener('message', (e) => console.log('message from frame: ' + String(e.data)))`);
  const doc = page.waitForResponse((r) => r.url().includes('/api/html?'));
  await page.locator('.msg', { hasText: 'Spring offer' }).click();
  const resp = await doc;
  const frame = page.locator('#reader iframe.html-body');
  await frame.waitFor();
  await until(async () => (await page.evaluate(`document.querySelector('#reader iframe').contentDocument?.readyState`)) === 'complete', 'message frame');
  await page.waitForTimeout(1500);

  // The frame: sandboxed without scripts, its document under a policy that allows no scripts and no loads.
  const sandbox = (await frame.getAttribute('sandbox'))!;
  assert.doesNotMatch(sandbox, /allow-scripts/);
  const csp = resp.headers()['content-security-policy']!;
  assert.match(csp, /^sandbox /);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /img-src data:;/);
  // The frame's document is readable from the page (allow-same-origin), not scriptable from within.
  const inner = (await page.evaluate(`(() => {
    const d = document.querySelector('#reader iframe').contentDocument;
    return { title: d.title, html: d.body.innerHTML, text: d.body.textContent };
  })()`)) as { title: string; html: string; text: string };
  assert.match(inner.text, /Spring offer/);
  assert.match(inner.html, /<b>look<\/b>/);
  assert.equal(inner.title, '', 'no script changed the title');
  assert.doesNotMatch(inner.html, /<(script|iframe|object|embed|svg|video|form|input)\b|\son\w+=|javascript:|127\.0\.0\.1/i);
  assert.equal(await page.textContent('.remote-note'), '5 remote images blocked. Load remote images');

  // Nothing ran, nothing left the page, and the server saw only the webmail's own requests.
  assert.deepEqual(events, []);
  assert.deepEqual(trackerHits, []);
  for (const u of requests) assert.equal(new URL(u).origin, origin, `request to ${u}`);
  const own = /^\/webmail\/(|webmail\.js|webmail\.css|style\.css|api\/(session|login|init|list|message|events|html))$|^\/favicon\.ico$/;
  for (const u of requests) assert.match(new URL(u).pathname, own, `unexpected request ${u}`);
  const logged = srv.output
    .slice(logStart)
    .split('\n')
    .filter((l) => l.includes('"msg":"request"'))
    .map((l) => (JSON.parse(l) as { path: string }).path);
  assert.ok(logged.includes('/webmail/api/html'), 'request logging works');
  for (const p of logged) assert.match(p, own, `server saw ${p}`);
  await page.screenshot({ path: path.join(screenshotDir, 'webmail-html.png') });

  // On request, remote images load, and nothing else does: the check above could have failed.
  await page.click('#load-remote');
  await until(() => trackerHits.length >= 5, 'remote images');
  await page.waitForTimeout(1000);
  assert.deepEqual([...trackerHits].sort(), ['/bg.png', '/div.png', '/img1.png', '/img2.png', '/table.png']);
  assert.deepEqual(events, []);
  await srv.cli(['loglevels', 'info', 'http']);
  await ctx.close();
});

test('keyboard shortcuts, flags, junk and not junk, delete, search, drafts, attachment download, forward', async () => {
  const { ctx, page } = await newPage();
  await login(page);
  await page.locator('.msg').first().waitFor();
  // Help overlay.
  await page.keyboard.press('?');
  await page.waitForSelector('#help :text("Keyboard shortcuts")');
  assert.ok((await page.textContent('#help'))!.includes('mark as junk'));
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('#help').count(), 0);

  // j moves to the first message, o opens it, s flags it.
  await page.keyboard.press('j');
  await page.keyboard.press('o');
  await page.waitForSelector('#reader-subject:text("Spring offer")');
  await page.keyboard.press('s');
  await until(async () => (await imapFind('jane@example.test', 'secret-pass', 'INBOX', 'Spring offer'))[0]?.flags.has('\\Flagged') === true, 'flag');
  await page.waitForSelector('.msg.flagged:has-text("Spring offer")');

  // "!" marks it as junk: $Junk for the filter, and into Junk.
  await page.keyboard.press('!');
  await page.waitForSelector('#notice.ok:has-text("Marked as junk")');
  const junk = await imapFind('jane@example.test', 'secret-pass', 'Junk', 'Spring offer');
  assert.equal(junk.length, 1);
  assert.ok(junk[0]!.flags.has('$Junk') && !junk[0]!.flags.has('$NotJunk'));
  assert.equal((await imapFind('jane@example.test', 'secret-pass', 'INBOX', 'Spring offer')).length, 0);
  // Not junk, from the Junk mailbox: $NotJunk, back to the Inbox.
  await page.click('#mailbox-list a:has-text("Junk")');
  await page.locator('.msg', { hasText: 'Spring offer' }).click();
  await page.click('.reader-actions button:text-is("Not junk")');
  await page.waitForSelector('#notice.ok:has-text("Marked as not junk")');
  const back = await imapFind('jane@example.test', 'secret-pass', 'INBOX', 'Spring offer');
  assert.equal(back.length, 1);
  assert.ok(back[0]!.flags.has('$NotJunk') && !back[0]!.flags.has('$Junk'));

  // "/" searches; Delete moves to Trash.
  await page.click('#mailbox-list a:has-text("Inbox")');
  await page.locator('.msg', { hasText: 'Spring offer' }).waitFor();
  await page.keyboard.press('/');
  await page.keyboard.type('from:carol');
  await page.keyboard.press('Enter');
  await until(async () => (await page.locator('.msg').count()) === 1, 'search result');
  assert.match((await page.textContent('.msg'))!, /Arrived just now/);
  await page.locator('.msg').click();
  await page.waitForSelector('#reader-subject:text("Arrived just now")');
  await page.keyboard.press('Delete');
  await page.waitForSelector('#notice.ok:has-text("Moved to Trash")');
  assert.equal((await imapFind('jane@example.test', 'secret-pass', 'Trash', 'Arrived just now')).length, 1);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await until(async () => (await page.locator('.msg').count()) > 1, 'search cleared');

  // "c" composes; a saved draft is in Drafts; reopened and sent, it leaves Drafts and arrives.
  await page.keyboard.press('c');
  await page.waitForSelector('#compose');
  await page.fill('#compose input[name=to]', 'bob@example.test');
  await page.fill('#compose input[name=subject]', 'Draft for later');
  await page.fill('#compose textarea', 'Not finished yet.');
  await page.setInputFiles('#compose input[type=file]', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('some notes\n') });
  await page.waitForSelector('#compose .compose-attachments li:has-text("notes.txt")');
  await page.click('#save-draft');
  await page.waitForSelector('#notice.ok:has-text("Draft saved")');
  const drafts = await imapFind('jane@example.test', 'secret-pass', 'Drafts', 'Draft for later');
  assert.equal(drafts.length, 1);
  assert.ok(drafts[0]!.flags.has('\\Draft'));
  await page.click('#discard');
  await page.click('#mailbox-list a:has-text("Drafts")');
  await page.locator('.msg', { hasText: 'Draft for later' }).click();
  // Its attachment downloads under its name.
  const href = (await page.getAttribute('#reader .attachments a.download', 'href'))!;
  const dl = await page.request.get(new URL(href, base).toString());
  assert.equal(await dl.text(), 'some notes\n');
  assert.equal(dl.headers()['content-disposition'], `attachment; filename="notes.txt"; filename*=UTF-8''notes.txt`);
  assert.equal(dl.headers()['content-type'], 'application/octet-stream');
  await page.click('.reader-actions button:text-is("Edit draft")');
  await page.waitForSelector('#compose .compose-attachments li:has-text("notes.txt")');
  assert.equal(await page.inputValue('#compose input[name=subject]'), 'Draft for later');
  await page.fill('#compose textarea', 'Finished after all.');
  await page.click('#compose button[type=submit]');
  await page.waitForSelector('#notice.ok:has-text("Message sent")');
  assert.equal((await imapFind('jane@example.test', 'secret-pass', 'Drafts', 'Draft for later')).length, 0);
  const arrived = await imapFind('bob@example.test', 'bob-password', 'INBOX', 'Draft for later');
  assert.equal(arrived.length, 1);
  const m = arrived[0]!.source;
  assert.match(m.toString(), /Finished after all\./);
  const notes = parseMessage(m).parts!.find((p) => p.subtype === 'plain' && p.disposition === 'attachment')!;
  assert.equal(decodedBody(m, notes).toString(), 'some notes\n');
  assert.doesNotMatch(m.toString(), /^Bcc:/m);

  // "f" forwards a sent message with its attachment.
  await page.click('#mailbox-list a:has-text("Sent")');
  await page.locator('.msg', { hasText: 'Re: Plans for Friday' }).click();
  await page.waitForSelector('#reader .attachments');
  await page.locator('#reader').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('f');
  await page.waitForSelector('#compose .compose-attachments li:has-text("Fahrkarte für Freitag.pdf")');
  assert.equal(await page.inputValue('#compose input[name=subject]'), 'Fwd: Re: Plans for Friday');
  await page.fill('#compose input[name=to]', 'Bob <bob@example.test>');
  await page.click('#compose button[type=submit]');
  await page.waitForSelector('#notice.ok:has-text("Message sent")');
  const fwd = (await imapFind('bob@example.test', 'bob-password', 'INBOX', 'Fwd: Re: Plans for Friday'))[0]!.source;
  assert.match(fwd.toString(), /---------- Forwarded message ----------\r\nFrom: jane@example\.test/);
  const ticket = parseMessage(fwd).parts!.find((p) => p.subtype === 'pdf')!;
  assert.equal(partName(ticket, '1'), 'Fahrkarte für Freitag.pdf');
  assert.match(decodedBody(fwd, ticket).toString(), /^%PDF-1\.4 ticket x{5000}\n$/);
  assert.ok((await imapFind('jane@example.test', 'secret-pass', 'Sent', 'Re: Plans for Friday')).find((x) => !x.source.includes('Fwd:'))!.flags.has('$Forwarded'));
  await ctx.close();
});

test('the webmail API needs a session and the CSRF token; message documents are not framed elsewhere', async () => {
  let r = await fetch(`${base}api/list`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  assert.equal(r.status, 401);
  r = await fetch(`${base}api/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'jane@example.test', password: 'secret-pass' }) });
  const cookie = r.headers.get('set-cookie')!.split(';')[0]!;
  assert.match(r.headers.get('set-cookie')!, /HttpOnly; SameSite=Strict/);
  r = await fetch(`${base}api/mailboxes`, { method: 'POST', headers: { 'Content-Type': 'application/json', cookie }, body: '{}' });
  assert.equal(r.status, 403);
  const page = await fetch(base, { headers: { cookie } });
  assert.match(page.headers.get('content-security-policy')!, /script-src 'self'; .*frame-src 'self'; .*frame-ancestors 'none'/);
  r = await fetch(`${base}api/html?mailbox=1&uid=1`, { headers: { cookie } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-frame-options'), 'SAMEORIGIN');
  assert.match(r.headers.get('content-security-policy')!, /frame-ancestors 'self'/);
});
