// Schema of the per-account index database, with versioned upgrades applied at open.
import type Database from 'better-sqlite3';

const migrations: string[] = [
  // 1: initial schema.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT;
  CREATE TABLE mailbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    -- Case-folded name: no two mailboxes may differ only in case.
    namekey TEXT NOT NULL UNIQUE,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    specialuse TEXT NOT NULL DEFAULT '',
    highestmodseq INTEGER NOT NULL,
    createmodseq INTEGER NOT NULL,
    -- Keywords ever used in this mailbox, JSON array, for the FLAGS response.
    keywords TEXT NOT NULL DEFAULT '[]'
  ) STRICT;
  CREATE TABLE subscription (name TEXT PRIMARY KEY) STRICT;
  CREATE TABLE message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id INTEGER NOT NULL REFERENCES mailbox(id),
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    createmodseq INTEGER NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    keywords TEXT NOT NULL DEFAULT '[]',
    -- Size of prefix plus message file.
    size INTEGER NOT NULL,
    -- Header lines added at delivery, returned before the message file's contents.
    prefix BLOB NOT NULL DEFAULT x'',
    received INTEGER NOT NULL,
    savedate INTEGER,
    -- Parsed MIME structure (JSON) of prefix plus file; NULL until parsed.
    part TEXT,
    UNIQUE (mailbox_id, uid)
  ) STRICT;
  CREATE INDEX message_mailbox_modseq ON message (mailbox_id, modseq);
  -- UIDs removed from a mailbox, for QRESYNC VANISHED (RFC 7162 3.2.10).
  CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
  ) STRICT, WITHOUT ROWID;
  -- Message files of removed messages, deleted once no session can still read them.
  CREATE TABLE removedfile (id INTEGER PRIMARY KEY, at INTEGER NOT NULL) STRICT;
  CREATE TABLE password (id INTEGER PRIMARY KEY CHECK (id = 1), credentials TEXT NOT NULL, changed INTEGER NOT NULL) STRICT;
  `,
  // 2: METADATA entries (RFC 5464), per mailbox or for the server (mailbox_id 0).
  `
  CREATE TABLE metadata (
    mailbox_id INTEGER NOT NULL,
    -- Lower-cased entry name: entry names are compared case-insensitively.
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, name)
  ) STRICT, WITHOUT ROWID;
  `,
];

export const schemaVersion = migrations.length;

export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > schemaVersion) throw new Error(`database schema version ${version} is newer than this Postern (${schemaVersion})`);
  for (let v = version; v < schemaVersion; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
