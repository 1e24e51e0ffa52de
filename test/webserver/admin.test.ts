// The web server page of the admin application in headless Chromium: handlers edited in the
// browser are saved to domains.conf and served at once; invalid ones are refused with the reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import type { Browser } from 'playwright-core';
import { startServe, type TestServer } from '../helpers/server.js';
import { ensureWebBuilt, launch, screenshotDir } from '../http/browser.js';
import { addListenerLines } from '../webapi/helpers.js';

let srv: TestServer;
let browser: Browser;

before(async () => {
  ensureWebBuilt();
  srv = await startServe({ web: {} });
  const cdir = path.dirname(srv.configFile);
  fs.writeFileSync(path.join(cdir, 'adminpasswd'), bcrypt.hashSync('admin-secret', 4) + '\n');
  fs.mkdirSync(path.join(cdir, 'www'));
  fs.writeFileSync(path.join(cdir, 'www', 'index.html'), '<p>the site</p>\n');
  fs.writeFileSync(path.join(cdir, 'www', 'page.html'), '<p>a page</p>\n');
  await addListenerLines(srv, `    WebserverHTTP:\n      Enabled: true\n      Port: ${srv.ports.http}\n`);
  browser = await launch();
  fs.mkdirSync(screenshotDir, { recursive: true });
});

after(async () => {
  await browser?.close();
  await srv?.close();
});

function get(host: string, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: srv.ports.http, path: p, headers: { Host: host }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

test('handlers edited on the admin web server page are saved and served without restart', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`http://127.0.0.1:${srv.ports.http}/admin/`);
  await page.fill('#login input[name=password]', 'admin-secret');
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#domains');
  await page.click('nav a[href="#webserver"]');
  await page.waitForSelector('#webserver-save');
  assert.equal(await page.textContent('p.empty'), 'No handlers.');
  assert.equal((await get('www.example.test', '/page.html')).status, 404);

  await page.fill('#webserver-handlers', JSON.stringify([{ Domain: 'www.example.test', PathRegexp: 'no-caret', WebStatic: { Root: 'www' } }]));
  await page.click('#webserver-save button[type=submit]');
  await page.waitForSelector('#notice:not([hidden])');
  assert.match((await page.textContent('#notice')) ?? '', /WebHandlers\.0\.PathRegexp: must start with \^/);

  await page.fill('#webserver-handlers', JSON.stringify([{ LogName: 'site', Domain: 'www.example.test', PathRegexp: '^/', DontRedirectPlainHTTP: true, WebStatic: { Root: 'www' } }]));
  await page.fill('#webserver-redirects', JSON.stringify({ 'example.test': 'www.example.test' }));
  await page.click('#webserver-save button[type=submit]');
  await page.waitForSelector('#webhandlers');
  assert.match((await page.textContent('#webhandlers')) ?? '', /site.*www\.example\.test.*\^\/.*Static.*www/s);
  await page.screenshot({ path: path.join(screenshotDir, 'admin-webserver.png'), fullPage: true });
  assert.equal((await get('www.example.test', '/page.html')).body, '<p>a page</p>\n');
  // The site takes "/" of its domain from the account pages on the same port.
  assert.equal((await get('www.example.test', '/')).body, '<p>the site</p>\n');
  assert.match((await get('127.0.0.1', '/')).body, /account\.js/);
  assert.equal((await get('example.test', '/x')).status, 308);
  assert.match(fs.readFileSync(path.join(path.dirname(srv.configFile), 'domains.conf'), 'utf8'), /WebHandlers:\n {2}- LogName: site\n/);
  await ctx.close();
});
