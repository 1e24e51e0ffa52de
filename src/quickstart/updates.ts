// The optional update check: with CheckUpdates (off by default), one DNS TXT lookup a day of
// UpdatesName, whose record "v=UPDATES0; l=<version>" names the latest version. A newer one is
// logged. Without CheckUpdates nothing is looked up and no timer runs.
import fs from 'node:fs';
import type { App } from '../server/app.js';
import { Log } from '../log/log.js';

const log = Log.pkg('updates');
const DAY = 86400_000;

export function currentVersion(): string {
  // ../../package.json from both src/quickstart and dist/quickstart.
  return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Compares dotted versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^v/, '').split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.replace(/^v/, '').split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** The latest version published at the name, from a "v=UPDATES0; l=<version>" TXT record. */
export async function latestVersion(app: App, name: string): Promise<string | undefined> {
  const txts = (await app.resolver.lookupTXT(name)).records;
  for (const t of txts) {
    const tags = Object.fromEntries(t.split(';').map((p) => p.trim().split('=').map((x) => x.trim()) as [string, string]));
    if (tags.v === 'UPDATES0' && tags.l) return tags.l;
  }
  return undefined;
}

/** Starts the daily check if enabled; returns a function that stops it. */
export function startUpdateChecks(app: App): () => void {
  const { CheckUpdates, UpdatesName } = app.config.static_;
  if (!CheckUpdates || !UpdatesName || app.localserve) return () => {};
  const check = async () => {
    try {
      const latest = await latestVersion(app, UpdatesName);
      const current = currentVersion();
      if (latest && compareVersions(latest, current) > 0) log.warn('a newer version of postern is available', { current, latest });
      else log.info('update check: up to date', { current, latest });
    } catch (e) {
      log.info('update check failed', e as Error);
    }
  };
  void check();
  const timer = setInterval(() => void check(), DAY);
  timer.unref();
  return () => clearInterval(timer);
}
