// Canonicalization, RFC 6376 3.4.

import { createHash } from 'node:crypto';

import { asciiLower, type HeaderField, trimEnd } from './message.js';

export type Canon = 'simple' | 'relaxed';

/** Canonical form of one header field (latin1), including its final CRLF. */
export function canonHeader(raw: string, canon: Canon): string {
  // RFC 6376 3.4.1: simple keeps the field as it is.
  if (canon === 'simple') return raw + '\r\n';
  // RFC 6376 3.4.2: lower-case the name, unfold, one SP per WSP run, no WSP around the colon or at the end.
  const colon = raw.indexOf(':');
  const name = asciiLower(trimEnd(raw.slice(0, colon), ' \t'));
  const value = raw
    .slice(colon + 1)
    .replace(/\r\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .replace(/^ | $/g, '');
  return name + ':' + value + '\r\n';
}

/**
 * The canonical header fields that h= names, each taken from the bottom up (RFC 6376 5.4.2);
 * names without an unused instance contribute nothing. `skip` is the index of the signature
 * field being verified, which is hashed separately.
 */
export function signedFields(fields: HeaderField[], names: string[], skip: number, canon: Canon): string {
  const byKey = new Map<string, number[]>();
  fields.forEach((f, i) => {
    if (i === skip) return;
    const list = byKey.get(f.key);
    if (list) list.push(i);
    else byKey.set(f.key, [i]);
  });
  let out = '';
  for (const name of names) {
    const i = byKey.get(name.toLowerCase())?.pop();
    if (i !== undefined) out += canonHeader(fields[i]!.raw, canon);
  }
  return out;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;

/**
 * Streaming body canonicalizer. Memory stays bounded whatever the input: runs of empty lines
 * and of trailing whitespace are counted, not buffered. The output is handed to `emit` in
 * pieces of a reused buffer, which must be consumed (e.g. hashed) before `emit` returns.
 */
export class BodyCanon {
  /** Canonical bytes emitted so far. */
  length = 0;
  private readonly relaxed: boolean;
  private readonly out = Buffer.allocUnsafe(64 * 1024);
  private pos = 0;
  private emptyLines = 0; // empty lines held back: dropped if they end the body
  private lineHasContent = false;
  private pendingCR = false; // a CR that may start a CRLF
  private pendingWSP = false; // relaxed: a WSP run, kept only if more content follows on the line

  constructor(
    canon: Canon,
    private readonly emit: (data: Uint8Array) => void,
  ) {
    this.relaxed = canon === 'relaxed';
  }

  write(chunk: Uint8Array): void {
    const relaxed = this.relaxed;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.pendingCR) {
        this.pendingCR = false;
        if (b === LF) {
          this.endLine();
          continue;
        }
        this.content(CR);
      }
      if (b === CR) this.pendingCR = true;
      else if (b === LF) this.endLine();
      else if (relaxed && (b === SP || b === HTAB)) this.pendingWSP = true;
      else this.content(b);
    }
    this.flush();
  }

  end(): void {
    if (this.pendingCR) this.content(CR);
    // RFC 6376 3.4.3 and 3.4.4: a last line without CRLF gets one.
    if (this.lineHasContent) this.endLine();
    // RFC 6376 3.4.3: an empty body is one CRLF in simple; in relaxed it stays empty (3.4.4).
    if (!this.relaxed && this.length + this.pos === 0) this.put2(CR, LF);
    this.flush();
  }

  private content(b: number): void {
    if (!this.lineHasContent) {
      this.lineHasContent = true;
      for (; this.emptyLines > 0; this.emptyLines--) this.put2(CR, LF);
    }
    if (this.pendingWSP) {
      // RFC 6376 3.4.4: a WSP run inside a line becomes one SP.
      this.pendingWSP = false;
      this.put(SP);
    }
    this.put(b);
  }

  private endLine(): void {
    // RFC 6376 3.4.4: WSP at the end of a line is dropped.
    this.pendingWSP = false;
    // RFC 6376 3.4.3 and 3.4.4: empty lines at the end of the body are ignored.
    if (this.lineHasContent) this.put2(CR, LF);
    else this.emptyLines++;
    this.lineHasContent = false;
  }

  private put(b: number): void {
    this.out[this.pos++] = b;
    if (this.pos === this.out.length) this.flush();
  }

  private put2(a: number, b: number): void {
    this.put(a);
    this.put(b);
  }

  private flush(): void {
    if (this.pos === 0) return;
    this.length += this.pos;
    this.emit(this.out.subarray(0, this.pos));
    this.pos = 0;
  }
}

export interface BodyHashSpec {
  canon: Canon;
  /** l= tag: hash only this many canonical bytes (RFC 6376 3.5). */
  limit?: number;
}

export interface BodyHashResult {
  /** SHA-256 of the canonical body, cut at the limit. */
  hash: Buffer;
  /** Length of the whole canonical body. */
  length: number;
}

/** Hashes a body once per spec, canonicalizing it once per canonicalization used. */
export async function hashBody(body: AsyncIterable<Uint8Array>, specs: BodyHashSpec[]): Promise<BodyHashResult[]> {
  const hashes = specs.map(() => ({ hash: createHash('sha256'), hashed: 0 }));
  const canons = new Map<Canon, BodyCanon>();
  for (const canon of new Set(specs.map((s) => s.canon))) {
    const users = specs.flatMap((s, i) => (s.canon === canon ? [{ limit: s.limit ?? Infinity, h: hashes[i]! }] : []));
    canons.set(
      canon,
      new BodyCanon(canon, (data) => {
        for (const { limit, h } of users) {
          const take = Math.min(data.length, limit - h.hashed);
          if (take <= 0) continue;
          h.hash.update(take === data.length ? data : data.subarray(0, take));
          h.hashed += take;
        }
      }),
    );
  }
  for await (const chunk of body) for (const c of canons.values()) c.write(chunk);
  for (const c of canons.values()) c.end();
  return specs.map((s, i) => ({ hash: hashes[i]!.hash.digest(), length: canons.get(s.canon)!.length }));
}
