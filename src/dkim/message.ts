// Raw header splitting for DKIM. Signatures cover the header fields byte for byte, so fields are
// kept as latin1 strings (one char per byte) and never decoded.

/** A whole message, or its bytes in order (a file or socket stream). */
export type MessageInput = Uint8Array | AsyncIterable<Uint8Array>;

export interface HeaderField {
  /** Lower-cased name without WSP before the colon; '' for a line that is not a field. */
  key: string;
  /** The field's bytes as latin1, lines joined by CRLF, without the final CRLF. */
  raw: string;
}

/** Larger header sections are refused: they are all held in memory. */
export const MAX_HEADER_BYTES = 1024 * 1024;

export class MessageError extends Error {
  override name = 'MessageError';
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * Reads a message's header section, then streams the rest as its body. Bare LF line ends are
 * accepted as CRLF (RFC 6376 5.3: a message is canonicalized in its CRLF form).
 */
export class MessageReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private rest: Uint8Array | undefined;
  private ended = false;

  constructor(input: MessageInput) {
    const iterable = input instanceof Uint8Array ? once(input) : input;
    this.it = iterable[Symbol.asyncIterator]();
  }

  /** Reads up to and including the empty line ending the header section. */
  async header(): Promise<HeaderField[]> {
    const parts: Uint8Array[] = [];
    let size = 0;
    let lineStart = true; // at the first byte of a line
    let crOnly = false; // the line so far is a lone CR
    for (;;) {
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        return splitFields(Buffer.concat(parts).toString('latin1'));
      }
      const chunk = r.value;
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i];
        if (b === LF) {
          if (lineStart || crOnly) {
            parts.push(chunk.subarray(0, i + 1));
            this.rest = chunk.subarray(i + 1);
            return splitFields(Buffer.concat(parts).toString('latin1'));
          }
          lineStart = true;
        } else {
          crOnly = lineStart && b === CR;
          lineStart = false;
        }
        if (size + i >= MAX_HEADER_BYTES) {
          await this.close();
          throw new MessageError(`header section larger than ${MAX_HEADER_BYTES} bytes`);
        }
      }
      parts.push(chunk);
      size += chunk.length;
    }
  }

  /** The bytes after the header section; call header() first. */
  async *body(): AsyncGenerator<Uint8Array> {
    if (this.rest?.length) yield this.rest;
    this.rest = undefined;
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else yield r.value;
    }
  }

  /** Stops reading early, releasing a stream's resources. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.it.return?.();
  }
}

async function* once(buf: Uint8Array): AsyncGenerator<Uint8Array> {
  yield buf;
}

/** RFC 5322 2.2.3: a line starting with WSP continues the previous field. */
function splitFields(text: string): HeaderField[] {
  const fields: HeaderField[] = [];
  for (let line of text.split('\n')) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '') break;
    const last = fields[fields.length - 1];
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      last.raw += '\r\n' + line;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 && line[0] !== ' ' && line[0] !== '\t' ? trimEnd(line.slice(0, colon), ' \t') : '';
    fields.push({ key: asciiLower(name), raw: line });
  }
  return fields;
}

/** Lower-cases ASCII letters only: other latin1 chars stand for raw bytes. */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Strips trailing chars found in `chars`; an end-anchored regex would take quadratic time on long runs. */
export function trimEnd(s: string, chars: string): string {
  let end = s.length;
  while (end > 0 && chars.includes(s[end - 1]!)) end--;
  return s.slice(0, end);
}
