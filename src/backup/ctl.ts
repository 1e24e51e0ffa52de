// Control socket commands for operations in the running server: backup, import and the
// index repairs. They run in the server so they share its database connections and its
// accounts' change events, instead of racing them from a second process.
import path from 'node:path';
import type { App } from '../server/app.js';
import type { CtlHandler } from '../ctl/ctl.js';
import type { Account } from '../store/account.js';
import { backupDataDir } from './backup.js';
import { repairs, changesUIDs, type RepairName } from './repair.js';
import { importMaildir, importMbox, type ImportOptions } from '../importexport/index.js';

function accountOf(app: App, args: Record<string, unknown>): Account {
  const name = args.account;
  if (typeof name !== 'string' || !app.config.domains.Accounts[name]) throw new Error(`account ${String(name)} not configured`);
  return app.store.account(name);
}

/** Ends the IMAP sessions of an account, so their clients reconnect and see new UIDs. */
function endSessions(app: App, acc: Account): number {
  let n = 0;
  for (const s of app.sessions) {
    if ((s as { account?: Account }).account === acc) {
      s.shutdown();
      n++;
    }
  }
  return n;
}

export function opsHandlers(app: App): Map<string, CtlHandler> {
  const h = new Map<string, CtlHandler>();

  h.set('backup', (args, send) => {
    if (typeof args.dest !== 'string' || !path.isAbsolute(args.dest)) throw new Error('backup needs an absolute destination path');
    const dbs = new Map(app.store.openAccounts().map((a) => [path.join(a.dir, 'index.db'), a.db]));
    dbs.set(path.join(app.queue.dir, 'index.db'), app.queue.db);
    return backupDataDir(app.config.dataDir, args.dest, { open: (f) => dbs.get(f), log: args.verbose ? (line) => send({ log: line }) : undefined });
  });

  h.set('import', async (args, send) => {
    const acc = accountOf(app, args);
    const { format, mailbox, source } = args;
    if (typeof mailbox !== 'string' || mailbox === '') throw new Error('import needs a mailbox');
    if (typeof source !== 'string' || !path.isAbsolute(source)) throw new Error('import needs an absolute path of the maildir or mbox file');
    // The junk service follows the account's changes: imported $Junk/$NotJunk messages train it.
    const o: ImportOptions = {
      onProgress: (p) => !p.done && send({ progress: p.imported }),
      quota: app.config.domains.Accounts[acc.name]?.QuotaMessageSize ?? 0,
      tmpDir: app.store.tmpDir,
    };
    if (format === 'maildir') return importMaildir(acc, source, mailbox, o);
    if (format === 'mbox') return importMbox(acc, source, mailbox, o);
    throw new Error('format must be maildir or mbox');
  });

  h.set('repair', async (args) => {
    const op = args.op as RepairName;
    if (typeof op !== 'string' || !Object.hasOwn(repairs, op)) throw new Error(`unknown repair ${String(op)}`);
    const acc = accountOf(app, args);
    const lines = await repairs[op](acc, typeof args.mailbox === 'string' ? args.mailbox : undefined);
    if (changesUIDs.has(op)) {
      const n = endSessions(app, acc);
      if (n) lines.push(`${n} IMAP sessions of the account ended, their clients reconnect`);
    }
    return lines;
  });

  return h;
}
