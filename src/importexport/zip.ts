// Zip archives (PKWARE APPNOTE.TXT 6.3), streamed: the writer sends each entry's data as
// it is deflated, with sizes and CRC-32 in a data descriptor after it (4.3.9, general
// purpose flag bit 3), and Zip64 records (4.3.14, 4.3.15, 4.5.3) once sizes, offsets or
// the entry count outgrow the classic fields. The reader needs random access (the central
// directory is at the end), so it works on a file, unpacking one entry at a time.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { crc32, createDeflateRaw, createInflateRaw } from 'node:zlib';
import { writeAll } from './stream.js';

export class ZipError extends Error {}

const sig = { local: 0x04034b50, descriptor: 0x08074b50, central: 0x02014b50, end: 0x06054b50, end64: 0x06064b50, locator64: 0x07064b50 };
const max32 = 0xffffffff;
const max16 = 0xffff;
// Bit 3: sizes and CRC follow the data; bit 11: the name is UTF-8 (APPNOTE 4.4.4).
const flagDescriptor = 1 << 3;
const flagUTF8 = 1 << 11;

function dosTime(ms: number): { time: number; date: number } {
  const d = new Date(Math.max(ms, Date.UTC(1980, 0, 2)));
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((d.getFullYear() - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

/** Extended timestamp extra field (0x5455, "UT"): the modification time in Unix seconds, UTC. */
function timestampExtra(ms: number): Buffer {
  const b = Buffer.alloc(9);
  b.writeUInt16LE(0x5455, 0);
  b.writeUInt16LE(5, 2);
  b.writeUInt8(1, 4);
  b.writeUInt32LE(Math.max(0, Math.min(max32, Math.floor(ms / 1000))), 5);
  return b;
}

interface Written {
  name: Buffer;
  method: number;
  time: number;
  date: number;
  crc: number;
  csize: number;
  usize: number;
  offset: number;
  mtime: number;
  dir: boolean;
  zip64: boolean;
}

export interface ZipEntryOptions {
  /** ms since epoch. */
  mtime?: number;
  /** Store without compression. */
  store?: boolean;
  /** Uncompressed size if known: sizes of 4 GiB or more need Zip64 fields in the local header. */
  size?: number;
}

export class ZipWriter {
  private offset = 0;
  private readonly entries: Written[] = [];

  constructor(private readonly out: Writable) {}

  private async write(b: Buffer): Promise<void> {
    this.offset += b.length;
    await writeAll(this.out, b);
  }

  private async local(e: Written, extra: Buffer): Promise<void> {
    const h = Buffer.alloc(30);
    h.writeUInt32LE(sig.local, 0);
    h.writeUInt16LE(e.zip64 ? 45 : 20, 4);
    h.writeUInt16LE(flagUTF8 | (e.dir ? 0 : flagDescriptor), 6);
    h.writeUInt16LE(e.method, 8);
    h.writeUInt16LE(e.time, 10);
    h.writeUInt16LE(e.date, 12);
    // CRC and sizes are zero here: they follow in the data descriptor.
    h.writeUInt16LE(e.name.length, 26);
    h.writeUInt16LE(extra.length, 28);
    await this.write(Buffer.concat([h, e.name, extra]));
  }

  private entry(name: string, mtime: number, method: number, dir: boolean, zip64: boolean): Written {
    const { time, date } = dosTime(mtime);
    return { name: Buffer.from(name), method, time, date, crc: 0, csize: 0, usize: 0, offset: this.offset, mtime, dir, zip64 };
  }

  async dir(name: string, o: { mtime?: number } = {}): Promise<void> {
    const e = this.entry(name.endsWith('/') ? name : name + '/', o.mtime ?? Date.now(), 0, true, false);
    await this.local(e, timestampExtra(e.mtime));
    this.entries.push(e);
  }

  async file(name: string, data: Buffer | AsyncIterable<Buffer>, o: ZipEntryOptions = {}): Promise<void> {
    const size = Buffer.isBuffer(data) ? data.length : o.size;
    // A local Zip64 field tells readers the data descriptor holds 8-byte sizes (APPNOTE 4.3.9.2).
    const zip64 = size === undefined ? false : size >= max32 - (size >> 8) - 1024;
    const e = this.entry(name, o.mtime ?? Date.now(), o.store ? 0 : 8, false, zip64);
    const extra = zip64 ? Buffer.concat([Buffer.from([1, 0, 16, 0]), Buffer.alloc(16)]) : Buffer.alloc(0);
    await this.local(e, Buffer.concat([extra, timestampExtra(e.mtime)]));
    const chunks = Buffer.isBuffer(data) ? [data] : data;
    if (e.method === 0) {
      for await (const c of chunks) {
        e.crc = crc32(c, e.crc);
        e.usize += c.length;
        await this.write(c);
      }
      e.csize = e.usize;
    } else {
      const d = createDeflateRaw();
      const feed = (async () => {
        try {
          for await (const c of chunks) {
            e.crc = crc32(c, e.crc);
            e.usize += c.length;
            if (!d.write(c)) await new Promise((r) => d.once('drain', r));
          }
          d.end();
        } catch (err) {
          d.destroy(err as Error);
        }
      })();
      for await (const c of d as AsyncIterable<Buffer>) {
        e.csize += c.length;
        await this.write(c);
      }
      await feed;
    }
    if (!zip64 && (e.usize >= max32 || e.csize >= max32)) throw new ZipError(`${name}: 4 GiB or larger, but its size was not announced`);
    const dd = Buffer.alloc(zip64 ? 24 : 16);
    dd.writeUInt32LE(sig.descriptor, 0);
    dd.writeUInt32LE(e.crc, 4);
    if (zip64) {
      dd.writeBigUInt64LE(BigInt(e.csize), 8);
      dd.writeBigUInt64LE(BigInt(e.usize), 16);
    } else {
      dd.writeUInt32LE(e.csize, 8);
      dd.writeUInt32LE(e.usize, 12);
    }
    await this.write(dd);
    this.entries.push(e);
  }

  /** Writes the central directory and end records. The output stream is left open. */
  async finish(): Promise<void> {
    const cdStart = this.offset;
    for (const e of this.entries) {
      const big = [e.usize >= max32, e.csize >= max32, e.offset >= max32];
      const z = Buffer.alloc(8 * big.filter(Boolean).length);
      let zp = 0;
      if (big[0]) zp = z.writeBigUInt64LE(BigInt(e.usize), zp);
      if (big[1]) zp = z.writeBigUInt64LE(BigInt(e.csize), zp);
      if (big[2]) z.writeBigUInt64LE(BigInt(e.offset), zp);
      const zip64 = z.length ? Buffer.concat([Buffer.from([1, 0, z.length, 0]), z]) : Buffer.alloc(0);
      const extra = Buffer.concat([zip64, timestampExtra(e.mtime)]);
      const h = Buffer.alloc(46);
      h.writeUInt32LE(sig.central, 0);
      // Made by Unix (3), so the external attributes carry the file mode.
      h.writeUInt16LE((3 << 8) | 45, 4);
      h.writeUInt16LE(e.zip64 || z.length ? 45 : 20, 6);
      h.writeUInt16LE(flagUTF8 | (e.dir ? 0 : flagDescriptor), 8);
      h.writeUInt16LE(e.method, 10);
      h.writeUInt16LE(e.time, 12);
      h.writeUInt16LE(e.date, 14);
      h.writeUInt32LE(e.crc >>> 0, 16);
      h.writeUInt32LE(big[1] ? max32 : e.csize, 20);
      h.writeUInt32LE(big[0] ? max32 : e.usize, 24);
      h.writeUInt16LE(e.name.length, 28);
      h.writeUInt16LE(extra.length, 30);
      h.writeUInt32LE((((e.dir ? 0o40755 : 0o100644) << 16) | (e.dir ? 0x10 : 0)) >>> 0, 38);
      h.writeUInt32LE(big[2] ? max32 : e.offset, 42);
      await this.write(Buffer.concat([h, e.name, extra]));
    }
    const cdSize = this.offset - cdStart;
    const n = this.entries.length;
    if (n >= max16 || cdSize >= max32 || cdStart >= max32) {
      const end64At = this.offset;
      const r = Buffer.alloc(56 + 20);
      r.writeUInt32LE(sig.end64, 0);
      r.writeBigUInt64LE(44n, 4);
      r.writeUInt16LE((3 << 8) | 45, 12);
      r.writeUInt16LE(45, 14);
      r.writeBigUInt64LE(BigInt(n), 24);
      r.writeBigUInt64LE(BigInt(n), 32);
      r.writeBigUInt64LE(BigInt(cdSize), 40);
      r.writeBigUInt64LE(BigInt(cdStart), 48);
      r.writeUInt32LE(sig.locator64, 56);
      r.writeBigUInt64LE(BigInt(end64At), 64);
      r.writeUInt32LE(1, 72);
      await this.write(r);
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(sig.end, 0);
    end.writeUInt16LE(Math.min(n, max16), 8);
    end.writeUInt16LE(Math.min(n, max16), 10);
    end.writeUInt32LE(Math.min(cdSize, max32), 12);
    end.writeUInt32LE(Math.min(cdStart, max32), 16);
    await this.write(end);
  }
}

export interface ZipEntry {
  name: string;
  dir: boolean;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
  /** ms since epoch: the extended timestamp if present, else the DOS time read as local time. */
  mtime: number;
}

/** A zip file opened for reading entries one at a time. */
export class ZipReader {
  private constructor(
    private readonly fh: fsp.FileHandle,
    private readonly file: string,
    readonly entries: ZipEntry[],
  ) {}

  static async open(file: string, o: { maxEntries?: number } = {}): Promise<ZipReader> {
    const fh = await fsp.open(file, 'r');
    try {
      return new ZipReader(fh, file, await readDirectory(fh, o.maxEntries ?? 10_000_000));
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /** The unpacked data of an entry, checked against its size and CRC-32 as it streams. */
  async *read(e: ZipEntry): AsyncGenerator<Buffer> {
    // APPNOTE 4.4.4 bit 0
    if (e.flags & 1) throw new ZipError(`${e.name}: encrypted`);
    if (e.method !== 0 && e.method !== 8) throw new ZipError(`${e.name}: compression method ${e.method} is not supported`);
    const h = await readAt(this.fh, e.offset, 30);
    if (h.length < 30 || h.readUInt32LE(0) !== sig.local) throw new ZipError(`${e.name}: bad local file header`);
    const start = e.offset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    if (e.compressedSize === 0) {
      if (e.size !== 0) throw new ZipError(`${e.name}: no data`);
      return;
    }
    const raw = fs.createReadStream(this.file, { start, end: start + e.compressedSize - 1 });
    const src: AsyncIterable<Buffer> = e.method === 8 ? raw.pipe(createInflateRaw()) : raw;
    let crc = 0;
    let n = 0;
    try {
      for await (const c of src) {
        n += c.length;
        // The declared size bounds what is unpacked, whatever the compressed data says.
        if (n > e.size) throw new ZipError(`${e.name}: unpacks to more than the ${e.size} bytes declared`);
        crc = crc32(c, crc);
        yield c;
      }
    } finally {
      raw.destroy();
    }
    if (n !== e.size) throw new ZipError(`${e.name}: ${n} bytes unpacked, ${e.size} declared`);
    if (crc >>> 0 !== e.crc >>> 0) throw new ZipError(`${e.name}: CRC-32 mismatch`);
  }
}

async function readAt(fh: fsp.FileHandle, pos: number, len: number): Promise<Buffer> {
  const b = Buffer.alloc(len);
  const { bytesRead } = await fh.read(b, 0, len, pos);
  return b.subarray(0, bytesRead);
}

async function readDirectory(fh: fsp.FileHandle, maxEntries: number): Promise<ZipEntry[]> {
  const size = (await fh.stat()).size;
  // APPNOTE 4.3.16: the end record is 22 bytes plus a comment of up to 65535.
  const tailStart = Math.max(0, size - 22 - max16);
  const tail = await readAt(fh, tailStart, size - tailStart);
  let end = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === sig.end && i + 22 + tail.readUInt16LE(i + 20) <= tail.length) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new ZipError('not a zip archive: no end of central directory record');
  if (tail.readUInt16LE(end + 4) !== 0 || tail.readUInt16LE(end + 6) !== 0) throw new ZipError('multi-disk zip archives are not supported');
  let count = tail.readUInt16LE(end + 10);
  let cdSize = tail.readUInt32LE(end + 12);
  let cdOffset = tail.readUInt32LE(end + 16);
  const endAt = tailStart + end;
  if (endAt >= 20) {
    const loc = await readAt(fh, endAt - 20, 20);
    if (loc.readUInt32LE(0) === sig.locator64) {
      const r = await readAt(fh, Number(loc.readBigUInt64LE(8)), 56);
      if (r.length < 56 || r.readUInt32LE(0) !== sig.end64) throw new ZipError('bad Zip64 end of central directory record');
      count = Number(r.readBigUInt64LE(32));
      cdSize = Number(r.readBigUInt64LE(40));
      cdOffset = Number(r.readBigUInt64LE(48));
    }
  }
  if (count > maxEntries) throw new ZipError(`zip archive with ${count} entries, limit is ${maxEntries}`);
  if (cdOffset + cdSize > endAt || cdSize > 1 << 30) throw new ZipError('central directory outside the archive');
  const cd = await readAt(fh, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== sig.central) throw new ZipError(`bad central directory entry ${i + 1}`);
    const flags = cd.readUInt16LE(p + 8);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const next = p + 46 + nameLen + extraLen + cd.readUInt16LE(p + 32);
    if (next > cd.length) throw new ZipError(`central directory entry ${i + 1} runs past the directory`);
    // APPNOTE 4.4.4 bit 11: the name is UTF-8; otherwise CP437, read here as Latin-1.
    const name = cd.toString(flags & flagUTF8 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLen);
    let usize = cd.readUInt32LE(p + 24);
    let csize = cd.readUInt32LE(p + 20);
    let offset = cd.readUInt32LE(p + 42);
    const dos = { time: cd.readUInt16LE(p + 12), date: cd.readUInt16LE(p + 14) };
    let mtime = new Date(1980 + (dos.date >> 9), ((dos.date >> 5) & 15) - 1, dos.date & 31, dos.time >> 11, (dos.time >> 5) & 63, (dos.time & 31) * 2).getTime();
    for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen; ) {
      const tag = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      const d = cd.subarray(x + 4, x + 4 + len);
      if (tag === 1) {
        // APPNOTE 4.5.3: only the fields whose classic value is all ones, in this order.
        let q = 0;
        const take = () => {
          if (q + 8 > d.length) throw new ZipError(`${name}: bad Zip64 extra field`);
          const v = Number(d.readBigUInt64LE(q));
          q += 8;
          return v;
        };
        if (usize === max32) usize = take();
        if (csize === max32) csize = take();
        if (offset === max32) offset = take();
      } else if (tag === 0x5455 && len >= 5 && d[0]! & 1) mtime = d.readUInt32LE(1) * 1000;
      x += 4 + len;
    }
    entries.push({ name, dir: name.endsWith('/'), method: cd.readUInt16LE(p + 10), flags, crc: cd.readUInt32LE(p + 16), compressedSize: csize, size: usize, offset, mtime });
    p = next;
  }
  return entries;
}
