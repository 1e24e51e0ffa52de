// Subject pass tokens, as in mox: a sender without reputation whose message was refused as
// mildly spammy is given a token; a new attempt with the token in its Subject, from the same
// From address within the validity period, passes the content checks. The token is an HMAC,
// so nothing needs to be stored per sender.
import crypto from 'node:crypto';

const tokenBytes = 8 + 12;

function mac(key: Buffer, from: string, ts: Buffer): Buffer {
  return crypto.createHmac('sha256', key).update(ts).update(from.toLowerCase()).digest().subarray(0, 12);
}

export function generate(key: Buffer, from: string, now: number): string {
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(Math.floor(now / 1000)));
  return Buffer.concat([ts, mac(key, from, ts)]).toString('base64url');
}

/** Whether the subject has a token for this From address made within the last validMs. */
export function verify(key: Buffer, from: string, subject: string, now: number, validMs: number): boolean {
  for (const m of subject.matchAll(/[A-Za-z0-9_-]{27}/g)) {
    const b = Buffer.from(m[0], 'base64url');
    if (b.length !== tokenBytes) continue;
    const ts = b.subarray(0, 8);
    const at = Number(ts.readBigUInt64BE()) * 1000;
    if (at > now + 60_000 || now - at > validMs) continue;
    if (crypto.timingSafeEqual(b.subarray(8), mac(key, from, ts))) return true;
  }
  return false;
}

export function explanation(token: string, validMs: number): string {
  return `your message looks like junk; if it is not, send it again with "(pass ${token})" added to its Subject, within ${Math.round(validMs / 3600_000)} hours`;
}
