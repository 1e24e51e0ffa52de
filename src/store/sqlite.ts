// Opening the SQLite databases of the data directory: WAL, durability, and versioned schema
// upgrades applied at open, each in its own transaction.
import Database from 'better-sqlite3';

export interface OpenOptions {
  /** Each commit reaches the disk before it returns (mail, queue); else derived data. */
  durable: boolean;
  /** Schema migrations in order; user_version counts those applied. */
  migrations: readonly string[];
}

export function openDatabase(file: string, o: OpenOptions): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${o.durable ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  applyMigrations(db, o.migrations, file);
  return db;
}

/** Brings the schema up to date; refuses a database from a newer Postern. */
export function applyMigrations(db: Database.Database, migrations: readonly string[], label: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > migrations.length) throw new Error(`${label}: schema version ${version} is newer than this Postern (${migrations.length})`);
  for (let v = version; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
