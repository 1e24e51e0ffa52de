// Builds the web front-ends into dist/web: type-checks web/*.ts, bundles each application with
// esbuild into one script, and copies the pages and the style sheet. Everything is served by
// Postern itself, so the pages work without internet access.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const web = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(web);
const out = path.join(root, 'dist', 'web');
const apps = ['admin', 'account', 'webmail'];

execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(web, 'tsconfig.json')], { stdio: 'inherit' });
fs.mkdirSync(out, { recursive: true });
await build({
  entryPoints: apps.map((a) => path.join(web, `${a}.ts`)),
  outdir: out,
  bundle: true,
  format: 'iife',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
for (const f of [...apps.map((a) => `${a}.html`), 'style.css', 'webmail.css']) fs.copyFileSync(path.join(web, f), path.join(out, f));
