// Temporary files for incoming messages: streamed to disk while received, made durable,
// then hard-linked into account message directories and the queue.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export interface MsgFile {
  path: string;
  size: number;
}

export class TempFile {
  size = 0;
  private handle?: fsp.FileHandle;
  private chain: Promise<void> = Promise.resolve();
  private failed?: Error;

  private constructor(readonly path: string) {}

  static async create(dir: string): Promise<TempFile> {
    const t = new TempFile(path.join(dir, `${Date.now()}-${randomBytes(6).toString('hex')}`));
    t.handle = await fsp.open(t.path, 'wx', 0o600);
    return t;
  }

  /** Queues a write; errors surface in finish(). */
  write(buf: Buffer): void {
    if (buf.length === 0) return;
    this.size += buf.length;
    this.chain = this.chain.then(async () => {
      if (this.failed) return;
      try {
        await this.handle!.write(buf);
      } catch (e) {
        this.failed = e as Error;
      }
    });
  }

  /** Writes still in flight, for back-pressure. */
  async drain(): Promise<void> {
    await this.chain;
  }

  /** Flushes to disk (fsync) and closes. */
  async finish(): Promise<MsgFile> {
    await this.chain;
    if (this.failed) throw this.failed;
    await this.handle!.sync();
    await this.handle!.close();
    this.handle = undefined;
    return { path: this.path, size: this.size };
  }

  async discard(): Promise<void> {
    await this.chain.catch(() => {});
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
    await fsp.rm(this.path, { force: true });
  }
}

/** Writes a complete buffer as a durable temp file. */
export async function writeTemp(dir: string, data: Buffer): Promise<MsgFile> {
  const t = await TempFile.create(dir);
  t.write(data);
  return t.finish();
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsyncDir in the thread pool, so the event loop goes on meanwhile. */
export function fsyncDirAsync(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.open(dir, 'r', (err, fd) => {
      if (err) return reject(err);
      fs.fsync(fd, (err2) => fs.close(fd, () => (err2 ? reject(err2) : resolve())));
    });
  });
}
