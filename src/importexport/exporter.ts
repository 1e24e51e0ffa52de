// Exporting an account, or one mailbox, as Maildirs or mbox files: into a directory, or as
// a zip, tar or tar.gz archive written to a stream. Messages are read from the index in
// pages and written one at a time, so memory stays bounded. Only reads are done, so a
// read-only connection to the index of a running server is enough.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import Database from 'better-sqlite3';
import { mailboxKey, msgsPerDir } from '../store/account.js';
import { TempFile } from '../store/tempfile.js';
import { toLF, writeAll, endStream } from './stream.js';
import { formatMbox } from './mbox.js';
import { KeywordLetters, formatInfo, maildirHost } from './maildir.js';
import { TarWriter } from './tar.js';
import { ZipWriter } from './zip.js';

export type MailFormat = 'maildir' | 'mbox';
export type ArchiveFormat = 'zip' | 'tgz' | 'tar';

/** What an export reads: an open Account, or a read-only connection from openAccountReadOnly. */
export interface AccountSource {
  readonly db: Database.Database;
  /** The account directory, with index.db and msg/. */
  readonly dir: string;
}

export interface ExportOptions {
  format: MailFormat;
  /** Only this mailbox; all when absent. */
  mailbox?: string;
  /**
   * Maildir files with the stored CRLF line endings. By default both formats get LF line
   * endings, as Unix mail programs write them; importing converts back, so stored
   * messages round-trip either way.
   */
  crlf?: boolean;
  onProgress?: (p: { exported: number; mailbox: string }) => void;
  progressEvery?: number;
  /** For mbox files going into a tar archive (tar needs sizes first). Default: the OS temp dir. */
  tmpDir?: string;
}

export interface ExportResult {
  mailboxes: number;
  messages: number;
  /** Maildir keywords beyond the 26 letters Dovecot's scheme has, not written. */
  droppedKeywords: number;
}

export class ExportError extends Error {}

/** Opens an account's index read-only, for exporting without the server's help. */
export function openAccountReadOnly(accountDir: string): AccountSource & { close(): void } {
  const file = path.join(accountDir, 'index.db');
  if (!fs.existsSync(file)) throw new ExportError(`${accountDir}: no account index (index.db)`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return { db, dir: accountDir, close: () => db.close() };
}

interface Sink {
  dir(name: string): Promise<void>;
  file(name: string, data: Buffer, mtime: number): Promise<void>;
  /** A file of unknown size, written as its chunks come. */
  stream(name: string, chunks: AsyncIterable<Buffer>, mtime: number): Promise<void>;
  finish(): Promise<void>;
}

class DirSink implements Sink {
  constructor(private readonly root: string) {}

  private target(name: string): string {
    const p = path.join(this.root, name);
    if (!p.startsWith(this.root + path.sep)) throw new ExportError(`bad name ${JSON.stringify(name)}`);
    return p;
  }

  async dir(name: string): Promise<void> {
    await fsp.mkdir(this.target(name), { recursive: true, mode: 0o700 });
  }

  async file(name: string, data: Buffer, mtime: number): Promise<void> {
    const p = this.target(name);
    await fsp.mkdir(path.dirname(p), { recursive: true, mode: 0o700 });
    await fsp.writeFile(p, data, { flag: 'wx', mode: 0o600 });
    await fsp.utimes(p, mtime / 1000, mtime / 1000);
  }

  async stream(name: string, chunks: AsyncIterable<Buffer>, mtime: number): Promise<void> {
    const p = this.target(name);
    await fsp.mkdir(path.dirname(p), { recursive: true, mode: 0o700 });
    const w = fs.createWriteStream(p, { flags: 'wx', mode: 0o600 });
    try {
      for await (const c of chunks) await writeAll(w, c);
      await endStream(w);
    } catch (e) {
      w.destroy();
      throw e;
    }
    await fsp.utimes(p, mtime / 1000, mtime / 1000);
  }

  async finish(): Promise<void> {}
}

class TarSink implements Sink {
  private readonly tar: TarWriter;
  private readonly gz?: ReturnType<typeof createGzip>;
  private readonly piping?: Promise<void>;

  constructor(
    private readonly out: Writable,
    gzip: boolean,
    private readonly tmpDir: string,
  ) {
    if (gzip) {
      this.gz = createGzip();
      this.piping = pipeline(this.gz, out);
    }
    this.tar = new TarWriter(this.gz ?? out);
  }

  dir(name: string): Promise<void> {
    return this.tar.dir(name);
  }

  file(name: string, data: Buffer, mtime: number): Promise<void> {
    return this.tar.file(name, data.length, data, { mtime, mode: 0o600 });
  }

  async stream(name: string, chunks: AsyncIterable<Buffer>, mtime: number): Promise<void> {
    const t = await TempFile.create(this.tmpDir);
    try {
      for await (const c of chunks) {
        t.write(c);
        await t.drain();
      }
      const f = await t.finish();
      await this.tar.file(name, f.size, fs.createReadStream(f.path), { mtime, mode: 0o600 });
    } finally {
      await t.discard();
    }
  }

  async finish(): Promise<void> {
    await this.tar.finish();
    if (this.gz) {
      this.gz.end();
      await this.piping;
    } else await endStream(this.out);
  }
}

class ZipSink implements Sink {
  private readonly zip: ZipWriter;

  constructor(private readonly out: Writable) {
    this.zip = new ZipWriter(out);
  }

  dir(name: string): Promise<void> {
    return this.zip.dir(name);
  }

  file(name: string, data: Buffer, mtime: number): Promise<void> {
    return this.zip.file(name, data, { mtime });
  }

  stream(name: string, chunks: AsyncIterable<Buffer>, mtime: number): Promise<void> {
    return this.zip.file(name, chunks, { mtime });
  }

  async finish(): Promise<void> {
    await this.zip.finish();
    await endStream(this.out);
  }
}

interface Row {
  id: number;
  uid: number;
  flags: number;
  keywords: string;
  received: number;
  prefix: Buffer;
  mailfrom?: string;
}

/** Messages of a mailbox in UID order, a page at a time. */
function* mailboxMessages(src: AccountSource, mailboxId: number): Generator<Row> {
  const cols = (src.db.prepare("SELECT name FROM pragma_table_info('message')").pluck().all() as string[]).includes('mailfrom') ? ', mailfrom' : '';
  const page = src.db.prepare(`SELECT id, uid, flags, keywords, received, prefix${cols} FROM message WHERE mailbox_id = ? AND uid > ? ORDER BY uid LIMIT 256`);
  let after = 0;
  for (;;) {
    const rows = page.all(mailboxId, after) as Row[];
    if (rows.length === 0) return;
    yield* rows;
    after = rows[rows.length - 1]!.uid;
  }
}

async function readStored(src: AccountSource, r: Row): Promise<Buffer> {
  const file = path.join(src.dir, 'msg', String(Math.floor(r.id / msgsPerDir)), String(r.id));
  let data: Buffer;
  try {
    data = await fsp.readFile(file);
  } catch (e) {
    throw new ExportError(`message file of message ${r.id} (uid ${r.uid}): ${(e as Error).message}`);
  }
  return r.prefix.length ? Buffer.concat([r.prefix, data]) : data;
}

async function run(src: AccountSource, o: ExportOptions, sink: Sink): Promise<ExportResult> {
  let mailboxes = src.db.prepare('SELECT id, name FROM mailbox ORDER BY name').all() as { id: number; name: string }[];
  if (o.mailbox !== undefined) {
    const key = mailboxKey(o.mailbox);
    mailboxes = mailboxes.filter((m) => mailboxKey(m.name) === key);
    if (mailboxes.length === 0) throw new ExportError(`no mailbox ${JSON.stringify(o.mailbox)}`);
  }
  const result: ExportResult = { mailboxes: mailboxes.length, messages: 0, droppedKeywords: 0 };
  const every = o.progressEvery ?? 1000;
  const counted = (mailbox: string) => {
    if (++result.messages % every === 0) o.onProgress?.({ exported: result.messages, mailbox });
  };
  const host = maildirHost();
  for (const mb of mailboxes) {
    if (o.format === 'maildir') {
      for (const d of ['cur', 'new', 'tmp']) await sink.dir(`${mb.name}/${d}/`);
      const kl = new KeywordLetters();
      for (const r of mailboxMessages(src, mb.id)) {
        const stored = await readStored(src, r);
        const data = o.crlf ? stored : toLF(stored);
        const info = formatInfo(r.flags, JSON.parse(r.keywords) as string[], kl);
        // A unique name as the specification describes: time, a part unique on this host, host.
        await sink.file(`${mb.name}/cur/${Math.floor(r.received / 1000)}.M${r.id}.${host},S=${data.length}${info}`, data, r.received);
        counted(mb.name);
      }
      const kwFile = kl.file();
      if (kwFile) await sink.file(`${mb.name}/dovecot-keywords`, Buffer.from(kwFile), Date.now());
      result.droppedKeywords += kl.dropped;
    } else {
      const mboxName = mb.name;
      const chunks = async function* () {
        for (const r of mailboxMessages(src, mb.id)) {
          const data = await readStored(src, r);
          yield formatMbox({ data, flags: r.flags, keywords: JSON.parse(r.keywords) as string[], received: r.received, mailFrom: r.mailfrom });
          counted(mboxName);
        }
      };
      await sink.stream(`${mb.name}.mbox`, chunks(), Date.now());
    }
  }
  await sink.finish();
  o.onProgress?.({ exported: result.messages, mailbox: '' });
  return result;
}

/** Exports into a directory: one maildir or one .mbox file per mailbox, named like the mailbox. */
export async function exportToDir(src: AccountSource, o: ExportOptions, dir: string): Promise<ExportResult> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  return run(src, o, new DirSink(path.resolve(dir)));
}

/** Exports as an archive to a stream, which is ended when the archive is complete. */
export async function exportAccount(src: AccountSource, o: ExportOptions & { archive: ArchiveFormat }, out: Writable): Promise<ExportResult> {
  const sink = o.archive === 'zip' ? new ZipSink(out) : new TarSink(out, o.archive === 'tgz', o.tmpDir ?? os.tmpdir());
  return run(src, o, sink);
}
