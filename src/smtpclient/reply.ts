// SMTP replies as read by the client: multi-line replies (RFC 5321 4.2.1) with enhanced status
// codes (RFC 3463, RFC 2034), read in bounded memory.
import type { Conn } from '../proto/conn.js';

export interface Reply {
  code: number;
  /** Enhanced status code such as "5.1.1", when the reply carries one of the code's class. */
  enhanced?: string;
  /** Text of all lines without reply and enhanced codes, joined with "\n". */
  text: string;
  /** The lines as received, without line endings, e.g. for a DSN's Diagnostic-Code (RFC 3464 2.3.6). */
  lines: string[];
}

/** The server broke the protocol: a garbled or oversized reply. */
export class ProtocolError extends Error {}

// RFC 5321 4.2: a three-digit code, "-" on all lines but the last, then text.
const LINE = /^([2-5][0-9][0-9])(?:([ -])(.*))?$/s;
// RFC 3463 2: class.subject.detail, class matching the reply code's first digit (RFC 2034 4).
const ENHANCED = /^([245])\.([0-9]{1,3})\.([0-9]{1,3})(?: |$)/;

/** Reads one reply, of at most maxLines lines of at most maxLine bytes. */
export async function readReply(conn: Conn, maxLine: number, maxLines: number, timeoutMs: number): Promise<Reply> {
  const lines: string[] = [];
  const texts: string[] = [];
  let code = 0;
  let enhanced: string | undefined;
  for (;;) {
    const { line, ok } = await conn.readLine(maxLine, timeoutMs);
    if (!ok) throw new ProtocolError(`reply line longer than ${maxLine} bytes`);
    const s = line.toString('utf8');
    const m = LINE.exec(s);
    if (!m) throw new ProtocolError(`malformed reply line ${JSON.stringify(s.slice(0, 100))}`);
    const c = Number(m[1]);
    if (lines.length > 0 && c !== code) throw new ProtocolError(`reply code changes from ${code} to ${c} within a reply`);
    code = c;
    lines.push(s);
    let text = m[3] ?? '';
    const e = ENHANCED.exec(text);
    if (e && e[1] === m[1]![0]) {
      if (lines.length === 1) enhanced = `${e[1]}.${Number(e[2])}.${Number(e[3])}`;
      text = text.slice(e[0].length);
    }
    texts.push(text);
    if (m[2] !== '-') break;
    if (lines.length >= maxLines) throw new ProtocolError(`reply longer than ${maxLines} lines`);
  }
  return { code, enhanced, text: texts.join('\n'), lines };
}
