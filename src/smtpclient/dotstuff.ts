// Dot-stuffing of message data for DATA (RFC 5321 4.5.2), streaming over chunks of any size.

const DOT = Buffer.from('.');
const END = Buffer.from('.\r\n');
const CRLF_END = Buffer.from('\r\n.\r\n');

export class DotStuffer {
  private lineStart = true;
  // An empty message needs no line ending: the DATA command's CRLF starts the end sequence.
  private endsCRLF = true;
  private lastCR = false;

  /**
   * Returns the chunk with a dot added before each dot that starts a line. A dot after a bare LF is
   * doubled too: receivers that end lines at bare LF then never see an end of data inside the
   * message, and RFC 5321 2.3.8 forbids bare LF anyway.
   */
  push(b: Buffer): Buffer[] {
    if (b.length === 0) return [];
    const out: Buffer[] = [];
    if (this.lineStart && b[0] === 0x2e) out.push(DOT);
    let start = 0;
    for (let i = b.indexOf(0x0a); i !== -1 && i + 1 < b.length; i = b.indexOf(0x0a, i + 1)) {
      if (b[i + 1] === 0x2e) {
        out.push(b.subarray(start, i + 1), DOT);
        start = i + 1;
      }
    }
    out.push(start === 0 ? b : b.subarray(start));
    const n = b.length;
    this.lineStart = b[n - 1] === 0x0a;
    this.endsCRLF = this.lineStart && (n > 1 ? b[n - 2] === 0x0d : this.lastCR);
    this.lastCR = b[n - 1] === 0x0d;
    return out;
  }

  /** The end of data (RFC 5321 4.1.1.4), after a CRLF if the message does not end in one. */
  end(): Buffer {
    return this.endsCRLF ? END : CRLF_END;
  }
}
