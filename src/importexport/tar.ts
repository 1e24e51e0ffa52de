// tar archives in the POSIX ustar format (POSIX.1-1988, IEEE Std 1003.1 "pax" chapter):
// 512-byte header blocks, data padded to 512 bytes, two zero blocks at the end. Names
// that do not fit the 100+155 byte name fields, non-ASCII names and sizes of 8 GiB and
// more go in a pax extended header ("x" entry with "path=" and "size=" records) before the
// entry. The reader also accepts GNU long names ("L" entries) and skips what it does not use.
import type { Writable } from 'node:stream';
import { Pull, writeAll } from './stream.js';

const block = 512;
const zeros = Buffer.alloc(block * 2);

export class TarError extends Error {}

function octal(buf: Buffer, off: number, len: number, n: number): void {
  buf.write(n.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

/** A pax record "<length> <key>=<value>\n", the length counting itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const n = Buffer.byteLength(body);
  let total = n + String(n).length;
  if (String(total).length !== String(n).length) total = n + String(total).length;
  return `${total}${body}`;
}

/** Splits a name over the ustar prefix and name fields, if it fits. */
function splitName(name: string): [string, string] | undefined {
  if (!/^[\x20-\x7e]*$/.test(name)) return undefined;
  if (name.length <= 100) return ['', name];
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return [name.slice(0, i), name.slice(i + 1)];
  }
  return undefined;
}

function header(name: string, type: string, size: number, mtime: number, mode: number): Buffer {
  const h = Buffer.alloc(block);
  const split = splitName(name);
  const [prefix, base] = split ?? ['', name.replace(/[^\x20-\x7e]/g, '_').slice(-100)];
  h.write(base, 0, 100, 'latin1');
  octal(h, 100, 8, mode);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, Math.min(size, 0o77777777777));
  octal(h, 136, 12, Math.max(0, Math.floor(mtime / 1000)));
  h.write(type, 156, 1, 'latin1');
  h.write('ustar\x0000', 257, 8, 'latin1');
  h.write(prefix, 345, 155, 'latin1');
  // The checksum is computed with its own field read as spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

export interface TarEntryInfo {
  /** Modification time, ms since epoch. */
  mtime?: number;
  mode?: number;
}

/** Writes a tar stream entry by entry; sizes must be known before the data. */
export class TarWriter {
  constructor(private readonly out: Writable) {}

  private async head(name: string, type: string, size: number, info: TarEntryInfo): Promise<void> {
    const mtime = info.mtime ?? Date.now();
    const records: string[] = [];
    if (!splitName(name)) records.push(paxRecord('path', name));
    if (size > 0o77777777777) records.push(paxRecord('size', String(size)));
    if (records.length) {
      const pax = Buffer.from(records.join(''));
      await writeAll(this.out, header(`PaxHeaders/${name.replace(/[^\x20-\x7e]/g, '_').slice(-80)}`, 'x', pax.length, mtime, 0o644));
      await writeAll(this.out, pax);
      await this.pad(pax.length);
    }
    await writeAll(this.out, header(name, type, size, mtime, info.mode ?? (type === '5' ? 0o755 : 0o644)));
  }

  private async pad(size: number): Promise<void> {
    const r = size % block;
    if (r) await writeAll(this.out, zeros.subarray(0, block - r));
  }

  async dir(name: string, info: TarEntryInfo = {}): Promise<void> {
    await this.head(name.endsWith('/') ? name : name + '/', '5', 0, info);
  }

  /** A file of known size; the data may come in chunks, and must add up to size. */
  async file(name: string, size: number, data: Buffer | AsyncIterable<Buffer>, info: TarEntryInfo = {}): Promise<void> {
    await this.head(name, '0', size, info);
    let n = 0;
    if (Buffer.isBuffer(data)) {
      n = data.length;
      await writeAll(this.out, data);
    } else {
      for await (const c of data) {
        n += c.length;
        if (n > size) throw new TarError(`${name}: more data than the ${size} bytes announced`);
        await writeAll(this.out, c);
      }
    }
    if (n !== size) throw new TarError(`${name}: ${n} bytes of data, ${size} announced`);
    await this.pad(size);
  }

  /** The end-of-archive marker: two zero blocks. */
  async finish(): Promise<void> {
    await writeAll(this.out, zeros);
  }
}

export interface TarEntry {
  name: string;
  type: 'file' | 'dir' | 'other';
  size: number;
  /** ms since epoch. */
  mtime: number;
  /** The data; must be read before the next entry is asked for, else it is skipped. */
  body: AsyncIterable<Buffer>;
}

function str(h: Buffer, off: number, len: number): string {
  const end = h.indexOf(0, off);
  return h.toString('utf8', off, end >= 0 && end < off + len ? end : off + len);
}

function num(h: Buffer, off: number, len: number): number {
  // GNU base-256 for values that do not fit in octal: high bit of the first byte set.
  if (h[off]! & 0x80) {
    let n = h[off]! & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + h[off + i]!;
    return n;
  }
  const s = str(h, off, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`bad number in tar header: ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let p = 0;
  while (p < data.length) {
    const sp = data.indexOf(0x20, p);
    if (sp < 0) break;
    const len = Number(data.toString('latin1', p, sp));
    if (!Number.isInteger(len) || len <= 0 || p + len > data.length) throw new TarError('bad pax record');
    const rec = data.toString('utf8', sp + 1, p + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    p += len;
  }
  return out;
}

/** Entries of a tar stream, in order, with their data streamed. */
export async function* readTar(input: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<TarEntry> {
  const pull = new Pull(input);
  let longName: string | undefined;
  let pax = new Map<string, string>();
  for (;;) {
    const h = await pull.read(block);
    if (h.length === 0) return;
    if (h.length < block) throw new TarError('truncated tar archive');
    if (h.every((b) => b === 0)) {
      // The end marker; what follows is padding to the record size, read so the input can end.
      for await (const _ of pull.rest());
      return;
    }
    let sum = 0;
    for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (sum !== num(h, 148, 8)) throw new TarError('tar header checksum mismatch: not a tar archive, or damaged');
    const type = String.fromCharCode(h[156]!);
    let size = num(h, 124, 12);
    const padded = Math.ceil(size / block) * block;
    if (type === 'x' || type === 'L' || type === 'g' || type === 'K') {
      if (size > 1 << 20) throw new TarError('tar extended header too large');
      const data = await pull.read(padded);
      if (data.length < padded) throw new TarError('truncated tar archive');
      if (type === 'x') pax = paxRecords(data.subarray(0, size));
      else if (type === 'L') longName = str(data, 0, size);
      continue;
    }
    const magic = h.toString('latin1', 257, 262);
    const prefix = magic === 'ustar' ? str(h, 345, 155) : '';
    let name = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100));
    if (pax.has('size')) size = Number(pax.get('size'));
    const mtime = pax.has('mtime') ? Number(pax.get('mtime')) * 1000 : num(h, 136, 12) * 1000;
    pax = new Map();
    longName = undefined;
    const kind: TarEntry['type'] = type === '0' || type === '\0' || type === '7' ? 'file' : type === '5' ? 'dir' : 'other';
    if (kind === 'dir' && !name.endsWith('/')) name += '/';
    const dataSize = kind === 'dir' ? 0 : size;
    let remaining = dataSize;
    const body = (async function* () {
      for await (const c of pull.chunks(remaining)) {
        remaining -= c.length;
        yield c;
      }
      if (remaining > 0) throw new TarError(`truncated tar archive in ${name}`);
    })();
    yield { name, type: kind, size: dataSize, mtime, body };
    // Whatever the caller left unread is skipped.
    if (remaining > 0 && (await pull.skip(remaining)) < remaining) throw new TarError(`truncated tar archive in ${name}`);
    const rest = Math.ceil(dataSize / block) * block - dataSize;
    if ((await pull.skip(rest)) < rest) throw new TarError('truncated tar archive');
  }
}
