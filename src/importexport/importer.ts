// Importing messages into an account: from a Maildir, an mbox file, or a zip or tar(.gz)
// archive holding any number of both. Messages stream through in batches that share one
// index commit, so memory stays bounded however many there are. Each stored message is
// a change event of the account like delivered mail: IMAP sessions see it arrive, and the
// junk filter's trainer (src/junk/train.ts) learns from its $Junk or $NotJunk flag.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Account, Delivered } from '../store/account.js';
import { createMailbox, quotaAllows } from '../store/mailboxops.js';
import { checkMailboxName } from '../store/names.js';
import { writeTemp, TempFile, type MsgFile } from '../store/tempfile.js';
import { flagList } from '../store/flags.js';
import { parseMessage } from '../message/part.js';
import { bytesToText, decodeHeaderText } from '../message/header.js';
import { Pull, toCRLF } from './stream.js';
import { readMbox } from './mbox.js';
import { readMaildir, maildirInfo, parseDovecotKeywords, infoFlags } from './maildir.js';
import { readTar } from './tar.js';
import { ZipReader } from './zip.js';

export interface ImportProgress {
  /** Messages stored so far, in all mailboxes. */
  imported: number;
  /** Mailbox of the latest message. */
  mailbox: string;
  /** The last report: the import is complete. */
  done: boolean;
}

export interface ImportOptions {
  onProgress?: (p: ImportProgress) => void;
  /** Messages between progress reports; default 1000. */
  progressEvery?: number;
  /** Account quota in bytes (0: none); the import stops with an error when it would be exceeded. */
  quota?: number;
  /**
   * Directory for temporary files, on the file system of the account (messages are
   * hard-linked into place). Default: the store's tmp directory, <datadir>/tmp.
   */
  tmpDir?: string;
  maxMessageSize?: number;
}

export interface ImportResult {
  messages: number;
  /** Messages per mailbox, including mailboxes created empty. */
  mailboxes: Record<string, number>;
  /** Archive entries that are neither Maildir messages nor mbox files. */
  skipped: string[];
}

export class ImportError extends Error {}

interface Pending {
  mailbox: string;
  data: Buffer;
  flags: number;
  keywords: string[];
  received?: number;
  mailFrom?: string;
  onStored?: (d: Delivered) => void;
}

const batchCount = 100;
const batchBytes = 16 << 20;

/** Stores messages in batches; each batch is one index commit. */
export class Importer {
  readonly result: ImportResult = { messages: 0, mailboxes: {}, skipped: [] };
  private batch: Pending[] = [];
  private bytes = 0;
  private readonly names = new Map<string, string>();
  readonly tmpDir: string;
  private readonly every: number;
  private nextReport: number;
  private reported = 0;

  constructor(
    readonly acc: Account,
    private readonly o: ImportOptions = {},
  ) {
    // Accounts live in <datadir>/accounts/<name>; the store's temp files in <datadir>/tmp.
    this.tmpDir = o.tmpDir ?? path.resolve(acc.dir, '..', '..', 'tmp');
    this.every = o.progressEvery ?? 1000;
    this.nextReport = this.every;
  }

  /** The stored name of a mailbox, created (with missing parents) when it does not exist. */
  mailbox(name: string): string {
    let n = this.names.get(name);
    if (n !== undefined) return n;
    const c = checkMailboxName(name);
    if ('error' in c) throw new ImportError(`mailbox ${JSON.stringify(name)}: ${c.error}`);
    n = (this.acc.mailbox(c.name) ?? createMailbox(this.acc, c.name)).name;
    this.names.set(name, n);
    this.result.mailboxes[n] ??= 0;
    return n;
  }

  async add(mailbox: string, m: Omit<Pending, 'mailbox'>): Promise<void> {
    const mb = this.mailbox(mailbox);
    const data = toCRLF(m.data);
    this.batch.push({ ...m, mailbox: mb, data });
    this.bytes += data.length;
    if (this.batch.length >= batchCount || this.bytes >= batchBytes) await this.flush();
  }

  async flush(): Promise<void> {
    const items = this.batch;
    if (items.length === 0) return;
    this.batch = [];
    this.bytes = 0;
    if (!quotaAllows(this.acc, this.o.quota ?? 0, items.reduce((n, m) => n + m.data.length, 0))) {
      throw new ImportError(`account quota of ${this.o.quota} bytes reached after ${this.result.messages} messages`);
    }
    const files: MsgFile[] = [];
    try {
      files.push(...(await Promise.all(items.map((m) => writeTemp(this.tmpDir, m.data)))));
      // Issued together, the deliveries share one commit.
      const stored = await Promise.all(
        items.map((m, i) => {
          const part = parseMessage(m.data);
          const env = part.envelope;
          return this.acc.deliver(files[i]!, {
            mailbox: m.mailbox,
            flags: m.flags,
            keywords: m.keywords,
            // File times have sub-millisecond precision; the index keeps milliseconds.
            received: m.received === undefined ? undefined : Math.floor(m.received),
            part,
            meta: {
              mailFrom: m.mailFrom,
              messageId: env?.messageId ? bytesToText(env.messageId).trim() : undefined,
              subject: env?.subject ? decodeHeaderText(env.subject).slice(0, 500) : undefined,
            },
          });
        }),
      );
      stored.forEach((d, i) => {
        const m = items[i]!;
        this.result.messages++;
        this.result.mailboxes[m.mailbox] = (this.result.mailboxes[m.mailbox] ?? 0) + 1;
        m.onStored?.(d);
      });
    } finally {
      await Promise.all(files.map((f) => fsp.rm(f.path, { force: true })));
    }
    this.report(items[items.length - 1]!.mailbox);
  }

  /** Reports progress each time another progressEvery messages are stored, and at the end. */
  private report(mailbox: string, final = false): void {
    if (!final && (this.result.messages === this.reported || this.result.messages < this.nextReport)) return;
    this.reported = this.result.messages;
    this.o.onProgress?.({ imported: this.result.messages, mailbox, done: final });
    this.nextReport = (Math.floor(this.result.messages / this.every) + 1) * this.every;
  }

  /** Adds keywords to stored messages (from a dovecot-keywords file read after them). */
  addKeywords(items: { mailboxId: number; uid: number; names: string[] }[]): void {
    const groups = new Map<string, { mailboxId: number; names: string[]; uids: number[] }>();
    for (const it of items) {
      const k = `${it.mailboxId}\0${it.names.join('\0')}`;
      const g = groups.get(k) ?? { mailboxId: it.mailboxId, names: it.names, uids: [] };
      g.uids.push(it.uid);
      groups.set(k, g);
    }
    for (const g of groups.values()) this.acc.storeFlags(g.mailboxId, g.uids, '+', g.names);
  }

  async finish(): Promise<ImportResult> {
    await this.flush();
    this.report('', true);
    return this.result;
  }
}

/** Imports one Maildir (its cur and new directories) into a mailbox. */
export async function importMaildir(acc: Account, dir: string, mailbox: string, o: ImportOptions = {}): Promise<ImportResult> {
  const imp = new Importer(acc, o);
  imp.mailbox(mailbox);
  for await (const m of readMaildir(dir)) await imp.add(mailbox, m);
  return imp.finish();
}

/** Imports an mbox file, or an mbox stream, into a mailbox. */
export async function importMbox(acc: Account, input: string | AsyncIterable<Buffer>, mailbox: string, o: ImportOptions = {}): Promise<ImportResult> {
  const imp = new Importer(acc, o);
  imp.mailbox(mailbox);
  const src = typeof input === 'string' ? fs.createReadStream(input) : input;
  for await (const m of readMbox(src, { maxMessageSize: o.maxMessageSize })) await imp.add(mailbox, m);
  return imp.finish();
}

/** Files that mail programs keep next to mailboxes, not mail. */
const ignored = /(^|\/)(\.DS_Store|__MACOSX\/.*|dovecot-uidlist|dovecot-uidvalidity.*|dovecot\.index.*|dovecot\.list\.index.*|maildirfolder|subscriptions|[^/]*\.msf)$/;

/**
 * Mailbox of a maildir at a path in an archive: the path itself, except that a Maildir++
 * folder (".Lists.work", in the maildir of the Inbox) is "Lists/work", and the archive
 * root or a directory named "Maildir" (the Inbox of qmail, Postfix and Dovecot setups) is the Inbox.
 */
export function maildirMailbox(dir: string): string {
  const parts = dir.split('/').filter(Boolean);
  const last = parts[parts.length - 1];
  if (!last || last.toLowerCase() === 'maildir') return 'Inbox';
  if (last.startsWith('.') && last.length > 1) return last.slice(1).split('.').filter(Boolean).join('/');
  return parts.join('/');
}

/** Mailbox of an mbox file at a path in an archive: the path without ".mbox", and Thunderbird's ".sbd" folders as parents. */
export function mboxMailbox(file: string): string {
  return file
    .replace(/\.(mbox|mbx)$/i, '')
    .split('/')
    .filter(Boolean)
    .map((p) => p.replace(/\.sbd$/i, ''))
    .join('/');
}

/** Entries of one archive, in order, turned into mailboxes and messages. */
class ArchiveImport {
  private readonly keywords = new Map<string, Map<number, string>>();
  /** Messages stored before their maildir's dovecot-keywords file was read. */
  private readonly deferred: { dir: string; mailboxId: number; uid: number; letters: string }[] = [];

  constructor(
    private readonly imp: Importer,
    private readonly o: ImportOptions,
  ) {}

  async entry(rawName: string, dir: boolean, mtime: number, body: AsyncIterable<Buffer>): Promise<void> {
    const name = rawName.replace(/\\/g, '/').replace(/^(\.\/|\/)+/, '');
    const parts = name.split('/').filter(Boolean);
    if (parts.length === 0 || ignored.test(name.replace(/\/$/, ''))) return;
    if (parts.includes('..')) {
      this.imp.result.skipped.push(rawName);
      return;
    }
    const parent = parts[parts.length - 2];
    if (dir) {
      // An empty maildir still becomes a mailbox.
      if (parts[parts.length - 1] === 'cur' || parts[parts.length - 1] === 'new') this.imp.mailbox(maildirMailbox(parts.slice(0, -1).join('/')));
      return;
    }
    const base = parts[parts.length - 1]!;
    if (base === 'dovecot-keywords') {
      this.keywords.set(parts.slice(0, -1).join('/'), parseDovecotKeywords((await collect(body, 1 << 20)).toString('utf8')));
      return;
    }
    if (parent === 'tmp' && parts.length >= 2) return; // Deliveries in progress, by the Maildir rules.
    if (parent === 'cur' || parent === 'new') {
      const mdir = parts.slice(0, -2).join('/');
      const data = await collect(body, this.o.maxMessageSize ?? 256 << 20);
      const known = this.keywords.get(mdir) ?? new Map<number, string>();
      const f = parent === 'cur' ? infoFlags(maildirInfo(base), known) : { flags: 0, keywords: [], unknownLetters: '' };
      await this.imp.add(maildirMailbox(mdir), {
        data,
        flags: f.flags,
        keywords: f.keywords,
        received: mtime,
        onStored: f.unknownLetters ? (d) => this.deferred.push({ dir: mdir, mailboxId: d.mailboxId, uid: d.uid, letters: f.unknownLetters }) : undefined,
      });
      return;
    }
    const pull = new Pull(body);
    const head = await pull.peek(5);
    if (head.length === 0 && /\.(mbox|mbx)$/i.test(base)) {
      this.imp.mailbox(mboxMailbox(name));
      return;
    }
    if (head.toString('latin1') !== 'From ') {
      this.imp.result.skipped.push(rawName);
      await pull.close();
      return;
    }
    const mailbox = mboxMailbox(name);
    this.imp.mailbox(mailbox);
    for await (const m of readMbox(pull.rest(), { maxMessageSize: this.o.maxMessageSize })) await this.imp.add(mailbox, m);
  }

  async finish(): Promise<ImportResult> {
    await this.imp.flush();
    const add: { mailboxId: number; uid: number; names: string[] }[] = [];
    for (const d of this.deferred) {
      const f = infoFlags(d.letters, this.keywords.get(d.dir) ?? new Map());
      const names = flagList(f.flags, f.keywords);
      if (names.length) add.push({ mailboxId: d.mailboxId, uid: d.uid, names });
    }
    if (add.length) this.imp.addKeywords(add);
    return this.imp.finish();
  }
}

async function collect(body: AsyncIterable<Buffer>, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > max) throw new ImportError(`file larger than ${max} bytes`);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/**
 * Imports a zip, tar or tar.gz archive of Maildirs and mbox files, or a single mbox file
 * (into opts.mailbox, default Inbox), recognized by their first bytes. A zip is first
 * written to a temporary file: its directory is at the end.
 */
export async function importArchive(acc: Account, input: AsyncIterable<Buffer> | Iterable<Buffer>, o: ImportOptions & { mailbox?: string } = {}): Promise<ImportResult> {
  const imp = new Importer(acc, o);
  const a = new ArchiveImport(imp, o);
  const pull = new Pull(input);
  const head = await pull.peek(512);
  if (head[0] === 0x1f && head[1] === 0x8b) {
    // RFC 1952 2.3.1: gzip's magic bytes; a gzip file is taken to hold a tar archive.
    const gunzip = createGunzip();
    const feeding = pipeline(pull.rest(), gunzip);
    try {
      for await (const e of readTar(gunzip)) await a.entry(e.name, e.type === 'dir', e.mtime, e.body);
    } catch (e) {
      gunzip.destroy();
      await feeding.catch(() => {});
      throw e;
    }
    await feeding;
  } else if (head.length >= 4 && head.toString('latin1', 0, 2) === 'PK') {
    const t = await TempFile.create(imp.tmpDir);
    try {
      for await (const c of pull.rest()) {
        t.write(c);
        await t.drain();
      }
      await t.finish();
      const zip = await ZipReader.open(t.path);
      try {
        // Keyword files first, so maildir flags resolve without a second pass.
        const entries = [...zip.entries].sort((x, y) => Number(y.name.endsWith('dovecot-keywords')) - Number(x.name.endsWith('dovecot-keywords')));
        for (const e of entries) await a.entry(e.name, e.dir, e.mtime, zip.read(e));
      } finally {
        await zip.close();
      }
    } finally {
      await t.discard();
    }
  } else if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') {
    for await (const e of readTar(pull.rest())) await a.entry(e.name, e.type === 'dir', e.mtime, e.body);
  } else if (head.toString('latin1', 0, 5) === 'From ') {
    const mailbox = o.mailbox ?? 'Inbox';
    imp.mailbox(mailbox);
    for await (const m of readMbox(pull.rest(), { maxMessageSize: o.maxMessageSize })) await imp.add(mailbox, m);
  } else {
    throw new ImportError('not a zip, tar, tar.gz or mbox file');
  }
  return a.finish();
}
