// MD5 (RFC 1321) that can be resumed from a saved compression state. node:crypto cannot do that,
// and CRAM-MD5 verification needs it: Postern stores only the HMAC-MD5 states after the key^ipad
// and key^opad blocks (RFC 2104 4, RFC 2195), never the password.

// RFC 1321 3.4: T[i] = floor(2^32 * abs(sin(i))), i = 1..64.
const T = Uint32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32));
const SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const INITIAL = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/** Size of one MD5 input block in bytes. */
export const MD5_BLOCK = 64;

function compress(state: Uint32Array, block: Buffer, offset: number): void {
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  for (let i = 0; i < 64; i++) {
    let f: number;
    let g: number;
    const round = i >> 4;
    // RFC 1321 3.4: the four auxiliary functions and their message word orders.
    if (round === 0) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (round === 1) {
      f = (b & d) | (c & ~d);
      g = (5 * i + 1) & 15;
    } else if (round === 2) {
      f = b ^ c ^ d;
      g = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) & 15;
    }
    const sum = (a + f + T[i]! + block.readUInt32LE(offset + 4 * g)) | 0;
    const s = SHIFTS[(round << 2) | (i & 3)]!;
    a = d;
    d = c;
    c = b;
    b = (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
  }
  state[0] = state[0]! + a;
  state[1] = state[1]! + b;
  state[2] = state[2]! + c;
  state[3] = state[3]! + d;
}

export class MD5 {
  private readonly words = Uint32Array.from(INITIAL);
  private readonly pending = Buffer.alloc(MD5_BLOCK);
  private pendingLength = 0;
  private length: number;

  /**
   * Starts a fresh hash, or resumes from a 16-byte state (as returned by `state()`) reached
   * after `length` bytes of input; `length` must then be a multiple of the block size.
   */
  constructor(state?: Buffer, length = 0) {
    if (state !== undefined) {
      if (state.length !== 16) throw new Error('md5: state must be 16 bytes');
      if (!Number.isSafeInteger(length) || length < 0 || length % MD5_BLOCK !== 0) {
        throw new Error('md5: resumed length must be a whole number of blocks');
      }
      for (let i = 0; i < 4; i++) this.words[i] = state.readUInt32LE(4 * i);
    }
    this.length = state === undefined ? 0 : length;
  }

  update(data: Buffer): this {
    this.length += data.length;
    let offset = 0;
    if (this.pendingLength > 0) {
      const n = Math.min(MD5_BLOCK - this.pendingLength, data.length);
      data.copy(this.pending, this.pendingLength, 0, n);
      this.pendingLength += n;
      offset = n;
      if (this.pendingLength < MD5_BLOCK) return this;
      compress(this.words, this.pending, 0);
      this.pendingLength = 0;
    }
    for (; offset + MD5_BLOCK <= data.length; offset += MD5_BLOCK) compress(this.words, data, offset);
    this.pendingLength = data.copy(this.pending, 0, offset);
    return this;
  }

  /** The compression state; only defined on a block boundary. */
  state(): Buffer {
    if (this.pendingLength !== 0) throw new Error('md5: state taken inside a block');
    return this.encodeWords();
  }

  /** Finishes the hash; the object must not be used afterwards. */
  digest(): Buffer {
    const bits = this.length * 8;
    // RFC 1321 3.1, 3.2: a 1 bit, zeros up to 56 mod 64, then the bit length little-endian.
    const padLength = ((55 - this.length) & 63) + 1;
    const tail = Buffer.alloc(padLength + 8);
    tail[0] = 0x80;
    tail.writeUInt32LE(bits >>> 0, padLength);
    tail.writeUInt32LE(Math.floor(bits / 2 ** 32) >>> 0, padLength + 4);
    this.update(tail);
    return this.encodeWords();
  }

  private encodeWords(): Buffer {
    const out = Buffer.alloc(16);
    for (let i = 0; i < 4; i++) out.writeUInt32LE(this.words[i]!, 4 * i);
    return out;
  }
}

/** HMAC-MD5 states after the key^ipad and key^opad blocks (RFC 2104 4, note on precomputation). */
export interface HMACMD5State {
  inner: Buffer;
  outer: Buffer;
}

export function hmacMD5State(key: Buffer): HMACMD5State {
  // RFC 2104 2: keys longer than the block are first hashed.
  const k = Buffer.alloc(MD5_BLOCK);
  (key.length > MD5_BLOCK ? new MD5().update(key).digest() : key).copy(k);
  const pad = (byte: number) => Buffer.from(k.map((x) => x ^ byte));
  return { inner: new MD5().update(pad(0x36)).state(), outer: new MD5().update(pad(0x5c)).state() };
}

export function hmacMD5FromState(state: HMACMD5State, message: Buffer): Buffer {
  const innerHash = new MD5(state.inner, MD5_BLOCK).update(message).digest();
  return new MD5(state.outer, MD5_BLOCK).update(innerHash).digest();
}
