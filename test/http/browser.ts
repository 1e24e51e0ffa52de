// Headless Chromium for the web tests, and a build of the front-end when it is missing or older
// than its sources.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { root } from '../helpers/server.js';

export const chromiumPath = '/usr/bin/chromium';

export function ensureWebBuilt(): void {
  const src = path.join(root, 'web');
  const out = path.join(root, 'dist', 'web');
  const newest = Math.max(...fs.readdirSync(src).map((f) => fs.statSync(path.join(src, f)).mtimeMs));
  const built = ['admin.js', 'account.js', 'style.css'].map((f) => path.join(out, f));
  if (built.every((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs >= newest)) return;
  execFileSync(process.execPath, [path.join(src, 'build.mjs')], { cwd: root, stdio: 'inherit' });
}

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Screenshots go to docs/screenshots (shown in the README) with POSTERN_SCREENSHOTS=1, else to a temporary directory. */
export const screenshotDir = process.env.POSTERN_SCREENSHOTS === '1' ? path.join(root, 'docs', 'screenshots') : fs.mkdtempSync(path.join(os.tmpdir(), 'postern-screenshots-'));
