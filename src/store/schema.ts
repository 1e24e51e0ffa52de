// Schema of the per-account index database, with versioned upgrades applied at open.
import type Database from 'better-sqlite3';
import { applyMigrations } from './sqlite.js';

export const migrations: readonly string[] = [
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
  // 3: how each incoming message arrived, for reputation: all lookups are indexed, so
  // deciding about a message costs the same in a large account as in an empty one.
  `
  ALTER TABLE message ADD COLUMN remoteip TEXT NOT NULL DEFAULT '';
  -- Network prefixes of the remote IP: IPv4 /26, /21, /16 or IPv6 /64, /48, /32.
  ALTER TABLE message ADD COLUMN remoteipmask1 TEXT NOT NULL DEFAULT '';
  ALTER TABLE message ADD COLUMN remoteipmask2 TEXT NOT NULL DEFAULT '';
  ALTER TABLE message ADD COLUMN remoteipmask3 TEXT NOT NULL DEFAULT '';
  ALTER TABLE message ADD COLUMN ehlodomain TEXT NOT NULL DEFAULT '';
  ALTER TABLE message ADD COLUMN mailfrom TEXT NOT NULL DEFAULT '';
  ALTER TABLE message ADD COLUMN mailfromdomain TEXT NOT NULL DEFAULT '';
  ALTER TABLE message ADD COLUMN msgfrom TEXT NOT NULL DEFAULT '';
  ALTER TABLE message ADD COLUMN msgfromdomain TEXT NOT NULL DEFAULT '';
  -- Organizational domain of the From address (RFC 7489 3.2).
  ALTER TABLE message ADD COLUMN msgfromorgdomain TEXT NOT NULL DEFAULT '';
  -- SPF pass for the EHLO / MAIL FROM domain; DMARC pass for the From domain.
  ALTER TABLE message ADD COLUMN ehlovalidated INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE message ADD COLUMN mailfromvalidated INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE message ADD COLUMN msgfromvalidated INTEGER NOT NULL DEFAULT 0;
  -- Domains of passing DKIM signatures, space-separated with leading and trailing space.
  ALTER TABLE message ADD COLUMN dkimdomains TEXT NOT NULL DEFAULT '';
  ALTER TABLE message ADD COLUMN messageid TEXT NOT NULL DEFAULT '';
  ALTER TABLE message ADD COLUMN subject TEXT NOT NULL DEFAULT '';
  CREATE INDEX message_remoteip ON message (remoteip, received);
  CREATE INDEX message_remoteipmask1 ON message (remoteipmask1, received);
  CREATE INDEX message_remoteipmask2 ON message (remoteipmask2, received);
  CREATE INDEX message_remoteipmask3 ON message (remoteipmask3, received);
  CREATE INDEX message_ehlodomain ON message (ehlodomain, received);
  CREATE INDEX message_mailfromdomain ON message (mailfromdomain, received);
  CREATE INDEX message_msgfrom ON message (msgfrom, received);
  CREATE INDEX message_msgfromdomain ON message (msgfromdomain, received);
  CREATE INDEX message_msgfromorgdomain ON message (msgfromorgdomain, received);
  CREATE INDEX message_messageid ON message (messageid);
  -- DKIM domains are looked up through their own table.
  CREATE TABLE messagedkim (message_id INTEGER NOT NULL, domain TEXT NOT NULL, received INTEGER NOT NULL, PRIMARY KEY (domain, received, message_id)) STRICT, WITHOUT ROWID;
  -- Recipients this account sent mail to: a message from them is from a known correspondent.
  CREATE TABLE recipient (address TEXT NOT NULL, domain TEXT NOT NULL, orgdomain TEXT NOT NULL, sent INTEGER NOT NULL, PRIMARY KEY (address, sent)) STRICT, WITHOUT ROWID;
  CREATE INDEX recipient_domain ON recipient (domain, sent);
  CREATE INDEX recipient_orgdomain ON recipient (orgdomain, sent);
  `,
];

export const schemaVersion = migrations.length;

export function migrate(db: Database.Database): void {
  applyMigrations(db, migrations, 'account index');
}
