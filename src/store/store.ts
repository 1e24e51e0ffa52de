// The mail store: all accounts under <datadir>/accounts, temporary files under <datadir>/tmp.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { Account } from './account.js';
import { TempFile, writeTemp, type MsgFile } from './tempfile.js';

/** Emits "account" when an account is opened, so services can follow its changes. */
export class Store extends EventEmitter {
  readonly tmpDir: string;
  private readonly accounts = new Map<string, Account>();

  constructor(readonly dataDir: string) {
    super();
    this.tmpDir = path.join(dataDir, 'tmp');
    fs.mkdirSync(path.join(dataDir, 'accounts'), { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  /** Removes temporary files left by an earlier run; call before serving. */
  cleanTmp(): void {
    for (const f of fs.readdirSync(this.tmpDir)) fs.rmSync(path.join(this.tmpDir, f), { recursive: true, force: true });
  }

  /** Opens (creating on first use) an account. The name must have been checked against the config. */
  account(name: string): Account {
    let a = this.accounts.get(name);
    if (!a) {
      a = new Account(name, path.join(this.dataDir, 'accounts', name));
      this.accounts.set(name, a);
      this.emit('account', a);
    }
    return a;
  }

  openAccounts(): Account[] {
    return [...this.accounts.values()];
  }

  tempFile(): Promise<TempFile> {
    return TempFile.create(this.tmpDir);
  }

  writeTemp(data: Buffer): Promise<MsgFile> {
    return writeTemp(this.tmpDir, data);
  }

  close(): void {
    for (const a of this.accounts.values()) a.close();
    this.accounts.clear();
  }
}

export { Account };
export type { MsgFile };
