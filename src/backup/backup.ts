// Backup of a data directory, also while the server runs: each SQLite database is copied
// with SQLite's online backup API (a consistent snapshot, https://sqlite.org/backup.html),
// then the message files the snapshot refers to are hard-linked (message files never
// change, so a link costs no space), or copied when the destination is on another file
// system. Other files are copied; temporary files and the control socket are left out.
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as yieldNow } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { msgsPerDir } from '../store/account.js';

export interface BackupOptions {
  /**
   * The server's own connection to a database file, if it has one open: a backup through
   * the connection that writes is kept up to date with those writes instead of restarting.
   */
  open?: (file: string) => Database.Database | undefined;
  /** Details, for --verbose. */
  log?: (line: string) => void;
}

export interface BackupResult {
  databases: number;
  linked: number;
  copied: number;
  otherFiles: number;
  /** Index entries whose message file was removed while the backup ran, left out. */
  dropped: number;
  ms: number;
}

const sqliteMagic = Buffer.from('SQLite format 3\0');

function isSQLite(file: string): boolean {
  const b = Buffer.alloc(16);
  const fd = fs.openSync(file, 'r');
  try {
    return fs.readSync(fd, b, 0, 16, 0) === 16 && b.equals(sqliteMagic);
  } finally {
    fs.closeSync(fd);
  }
}

/** Group directory and file of a message or queue file id, as the store lays them out. */
const idPath = (dir: string, id: number) => path.join(dir, String(Math.floor(id / msgsPerDir)), String(id));

export async function backupDataDir(dataDir: string, dest: string, o: BackupOptions = {}): Promise<BackupResult> {
  const started = Date.now();
  const src = path.resolve(dataDir);
  const dst = path.resolve(dest);
  if (fs.existsSync(dst) && fs.readdirSync(dst).length > 0) throw new Error(`destination ${dst} exists and is not empty`);
  fs.mkdirSync(dst, { recursive: true, mode: 0o700 });
  const r: BackupResult = { databases: 0, linked: 0, copied: 0, otherFiles: 0, dropped: 0, ms: 0 };
  const log = o.log ?? (() => {});
  // Once linking fails across devices, the rest is copied without trying.
  let crossDevice = false;
  let sinceYield = 0;

  const snapshot = async (file: string): Promise<string> => {
    const rel = path.relative(src, file);
    const out = path.join(dst, rel);
    fs.mkdirSync(path.dirname(out), { recursive: true, mode: 0o700 });
    const t = Date.now();
    const own = o.open?.(file);
    const db = own ?? new Database(file, { fileMustExist: true });
    try {
      await db.backup(out);
    } finally {
      if (!own) db.close();
    }
    r.databases++;
    log(`database ${rel} (${Date.now() - t} ms)`);
    return out;
  };

  const linkOrCopy = async (from: string, to: string): Promise<boolean> => {
    if (++sinceYield >= 500) {
      // Linking many files is quick, but a running server should keep answering meanwhile.
      sinceYield = 0;
      await yieldNow();
    }
    try {
      if (!crossDevice) {
        try {
          fs.linkSync(from, to);
          r.linked++;
          return true;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw e;
          crossDevice = true;
          log(`cannot hard-link (${code}), copying message files`);
        }
      }
      fs.copyFileSync(from, to);
      r.copied++;
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  };

  /** Links the files a snapshot refers to; ids whose file is gone are returned. */
  const linkFiles = async (fromDir: string, toDir: string, ids: number[]): Promise<number[]> => {
    const missing: number[] = [];
    const made = new Set<number>();
    for (const id of ids) {
      const g = Math.floor(id / msgsPerDir);
      if (!made.has(g)) {
        fs.mkdirSync(path.join(toDir, String(g)), { recursive: true, mode: 0o700 });
        made.add(g);
      }
      if (!(await linkOrCopy(idPath(fromDir, id), idPath(toDir, id)))) missing.push(id);
    }
    return missing;
  };

  const skip = new Set<string>([path.join(src, 'tmp'), path.join(src, 'ctl'), dst]);

  // Accounts: the index, then the files of the messages in the snapshot.
  const accountsDir = path.join(src, 'accounts');
  for (const name of fs.existsSync(accountsDir) ? fs.readdirSync(accountsDir).sort() : []) {
    const adir = path.join(accountsDir, name);
    const index = path.join(adir, 'index.db');
    if (!fs.existsSync(index)) continue;
    const out = await snapshot(index);
    skip.add(index);
    skip.add(path.join(adir, 'msg'));
    const db = new Database(out);
    try {
      const ids = db.prepare('SELECT id FROM message ORDER BY id').pluck().all() as number[];
      const missing = await linkFiles(path.join(adir, 'msg'), path.join(dst, 'accounts', name, 'msg'), ids);
      // Messages expunged and cleaned up after the snapshot: the backup shows them as gone.
      if (missing.length) {
        const del = db.prepare('DELETE FROM message WHERE id = ?');
        db.transaction(() => missing.forEach((id) => del.run(id)))();
        r.dropped += missing.length;
        log(`account ${name}: ${missing.length} messages removed during the backup left out`);
      }
      fs.mkdirSync(path.join(dst, 'accounts', name, 'msg'), { recursive: true, mode: 0o700 });
    } finally {
      db.close();
    }
  }

  // The queue: recipients of one submission share a message file.
  const qindex = path.join(src, 'queue', 'index.db');
  if (fs.existsSync(qindex)) {
    const out = await snapshot(qindex);
    skip.add(qindex);
    skip.add(path.join(src, 'queue', 'msg'));
    const db = new Database(out);
    try {
      const ids = db.prepare('SELECT DISTINCT fileid FROM msg ORDER BY fileid').pluck().all() as number[];
      const missing = await linkFiles(path.join(src, 'queue', 'msg'), path.join(dst, 'queue', 'msg'), ids);
      // Delivered or dropped while the backup ran.
      if (missing.length) {
        const del = db.prepare('DELETE FROM msg WHERE fileid = ?');
        db.transaction(() => missing.forEach((id) => del.run(id)))();
        r.dropped += missing.length;
        log(`queue: ${missing.length} messages delivered during the backup left out`);
      }
      fs.mkdirSync(path.join(dst, 'queue', 'msg'), { recursive: true, mode: 0o700 });
    } finally {
      db.close();
    }
  }

  // Everything else: other databases get snapshots, regular files are copied.
  const walk = async (dir: string): Promise<void> => {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, ent.name);
      if (skip.has(p)) continue;
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) {
        // Journals belong to their database, whose snapshot already includes them.
        if (/-(wal|shm|journal)$/.test(ent.name)) continue;
        if (isSQLite(p)) await snapshot(p);
        else {
          const out = path.join(dst, path.relative(src, p));
          fs.mkdirSync(path.dirname(out), { recursive: true, mode: 0o700 });
          fs.copyFileSync(p, out);
          r.otherFiles++;
          log(`copied ${path.relative(src, p)}`);
        }
      }
    }
  };
  await walk(src);
  r.ms = Date.now() - started;
  log(`backup done: ${r.databases} databases, ${r.linked} message files linked, ${r.copied} copied, ${r.otherFiles} other files, ${r.ms} ms`);
  return r;
}
