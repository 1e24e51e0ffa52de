// Reading files from a zip archive held in memory: the end of central directory record, the
// central directory and the local file headers of PKWARE's APPNOTE.TXT (sections 4.3.6 to 4.3.16),
// stored and deflated entries only, with a cap on the size of what is unpacked.

import { crc32, inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local file header. */
  offset: number;
}

export class ZipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ZipError';
  }
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_ENTRIES = 1000;

/** The entries of the central directory. Zip64 and multi-disk archives are refused. */
export function zipEntries(zip: Buffer): ZipEntry[] {
  // APPNOTE 4.3.16: the end record is 22 bytes plus a comment of up to 65535.
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD && i + 22 + zip.readUInt16LE(i + 20) <= zip.length) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new ZipError('not a zip archive: no end of central directory record');
  const disk = zip.readUInt16LE(end + 4);
  const count = zip.readUInt16LE(end + 10);
  const dirSize = zip.readUInt32LE(end + 12);
  const dirOffset = zip.readUInt32LE(end + 16);
  if (disk !== 0 || zip.readUInt16LE(end + 6) !== 0) throw new ZipError('multi-disk zip archives are not supported');
  if (count === 0xffff || dirOffset === 0xffffffff) throw new ZipError('zip64 archives are not supported');
  if (count > MAX_ENTRIES) throw new ZipError(`zip archive with ${count} entries`);
  if (dirOffset + dirSize > end) throw new ZipError('central directory outside the archive');
  const entries: ZipEntry[] = [];
  let p = dirOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > end || zip.readUInt32LE(p) !== CENTRAL) throw new ZipError(`bad central directory entry ${i + 1}`);
    const flags = zip.readUInt16LE(p + 8);
    const nameLength = zip.readUInt16LE(p + 28);
    const next = p + 46 + nameLength + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
    if (next > end) throw new ZipError(`central directory entry ${i + 1} runs past the directory`);
    // APPNOTE 4.4.4 bit 11: the name is UTF-8; otherwise CP437, read here as Latin-1.
    const name = zip.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLength);
    entries.push({
      name,
      method: zip.readUInt16LE(p + 10),
      flags,
      crc: zip.readUInt32LE(p + 16),
      compressedSize: zip.readUInt32LE(p + 20),
      size: zip.readUInt32LE(p + 24),
      offset: zip.readUInt32LE(p + 42),
    });
    p = next;
  }
  return entries;
}

/** The content of one entry, refusing encrypted entries and content larger than maxBytes. */
export function zipRead(zip: Buffer, entry: ZipEntry, maxBytes: number): Buffer {
  // APPNOTE 4.4.4 bit 0
  if (entry.flags & 1) throw new ZipError(`${entry.name}: encrypted`);
  if (entry.size > maxBytes) throw new ZipError(`${entry.name}: ${entry.size} bytes unpacked, limit is ${maxBytes}`);
  const p = entry.offset;
  if (p + 30 > zip.length || zip.readUInt32LE(p) !== LOCAL) throw new ZipError(`${entry.name}: bad local file header`);
  // APPNOTE 4.3.7: sizes are taken from the central directory, as a data descriptor may follow the data.
  const start = p + 30 + zip.readUInt16LE(p + 26) + zip.readUInt16LE(p + 28);
  const data = zip.subarray(start, start + entry.compressedSize);
  if (start + entry.compressedSize > zip.length) throw new ZipError(`${entry.name}: data runs past the archive`);
  let out: Buffer;
  if (entry.method === 0) {
    out = data;
  } else if (entry.method === 8) {
    try {
      // The declared size can lie: the cap holds whatever the stream unpacks to.
      out = inflateRawSync(data, { maxOutputLength: Math.max(1, maxBytes) });
    } catch (e) {
      throw new ZipError(`${entry.name}: ${(e as Error).message}`);
    }
  } else {
    throw new ZipError(`${entry.name}: compression method ${entry.method} is not supported`);
  }
  if (out.length !== entry.size) throw new ZipError(`${entry.name}: ${out.length} bytes unpacked, ${entry.size} declared`);
  if (crc32(out) !== entry.crc) throw new ZipError(`${entry.name}: CRC-32 mismatch`);
  return out;
}
