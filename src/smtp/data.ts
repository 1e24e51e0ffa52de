// Reading the DATA message stream: dot-unstuffing, end detection and SMTP smuggling checks.
//
// RFC 5321 4.1.1.4: only CRLF "." CRLF ends the data; RFC 5321 4.5.2: a leading dot of a
// line is removed. Look-alike end sequences with bare LF or bare CR are how "SMTP
// smuggling" hides a second message inside the first for servers that end the data at
// them; such a message is read to its real end and then rejected as a whole. Lines ending
// in bare LF are otherwise stored with CRLF (RFC 5321 2.3.8 forbids bare LF, but it is
// common in mail from scripts).
import type { Conn } from '../proto/conn.js';

export interface DataResult {
  size: number;
  /** Message exceeded maxSize: contents were discarded after the limit. */
  tooLarge: boolean;
  /** Set when a bare CR or an end-of-data look-alike was seen. */
  smuggling?: string;
}

// States of the scanner; LS = at line start.
const enum S {
  Mid,
  LSAfterCRLF,
  LSAfterLF,
  Dot, // "." at line start
  DotCR, // "." CR at line start
  CR, // CR inside line
}

/**
 * Reads message data from conn until CRLF.CRLF, writing the unstuffed message to sink.
 * The data starts right after the DATA command's CRLF.
 */
export async function readData(conn: Conn, sink: (b: Buffer) => void, maxSize: number, timeoutMs: number): Promise<DataResult> {
  let state: S = S.LSAfterCRLF;
  let dotAfterLF = false;
  let size = 0;
  let tooLarge = false;
  let smuggling: string | undefined;
  const out: Buffer[] = [];
  let outLen = 0;

  const emit = (b: Buffer) => {
    if (smuggling || tooLarge || b.length === 0) return;
    size += b.length;
    if (size > maxSize) {
      tooLarge = true;
      return;
    }
    out.push(b);
    outLen += b.length;
    if (outLen >= 64 * 1024) flushOut();
  };
  const flushOut = () => {
    if (outLen) sink(out.length === 1 ? out[0]! : Buffer.concat(out));
    out.length = 0;
    outLen = 0;
  };
  const bad = (why: string) => {
    smuggling ??= why;
  };
  const CRLF = Buffer.from('\r\n');

  for (;;) {
    const b = await conn.readChunk(timeoutMs);
    let i = 0;
    // Start of a run of plain bytes to copy.
    let run = 0;
    while (i < b.length) {
      const c = b[i]!;
      switch (state) {
        case S.Mid: {
          // Fast path: skip to the next CR or LF.
          let j = i;
          while (j < b.length && b[j] !== 13 && b[j] !== 10) j++;
          if (j === b.length) {
            i = j;
            continue;
          }
          i = j;
          if (b[i] === 13) {
            emit(b.subarray(run, i));
            state = S.CR;
          } else {
            emit(b.subarray(run, i));
            emit(CRLF);
            state = S.LSAfterLF;
          }
          i++;
          run = i;
          continue;
        }
        case S.CR:
          if (c === 10) {
            emit(CRLF);
            state = S.LSAfterCRLF;
            i++;
            run = i;
          } else {
            bad('bare carriage return');
            state = S.Mid;
            run = i;
          }
          continue;
        case S.LSAfterCRLF:
        case S.LSAfterLF:
          if (c === 46) {
            dotAfterLF = state === S.LSAfterLF;
            state = S.Dot;
            i++;
            run = i;
          } else {
            state = S.Mid;
            run = i;
          }
          continue;
        case S.Dot:
          if (c === 13) {
            state = S.DotCR;
            i++;
          } else if (c === 10) {
            bad(dotAfterLF ? 'bare LF "." bare LF' : 'CRLF "." bare LF');
            state = S.LSAfterLF;
            i++;
            run = i;
          } else {
            // Stuffed dot removed (RFC 5321 4.5.2).
            state = S.Mid;
            run = i;
          }
          continue;
        case S.DotCR:
          if (c === 10) {
            if (!dotAfterLF) {
              flushOut();
              conn.unread(b.subarray(i + 1));
              return { size, tooLarge, smuggling };
            }
            bad('bare LF "." CRLF');
            state = S.LSAfterCRLF;
            i++;
            run = i;
          } else {
            bad('"." bare CR');
            state = S.Mid;
            run = i;
          }
          continue;
      }
    }
    if (state === S.Mid) emit(b.subarray(run, i));
    flushOut();
  }
}
