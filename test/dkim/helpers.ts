// Shared fixtures for the DKIM tests.

import { createHash, type KeyObject, sign as cryptoSign } from 'node:crypto';

import { type Canon, canonHeader, hashBody, signedFields } from '../../src/dkim/canon.js';
import { MessageReader } from '../../src/dkim/message.js';
import { colonList, parseTags } from '../../src/dkim/tags.js';

export const MESSAGE = [
  'From: Alice <alice@example.org>',
  'To: Bob <bob@example.net>',
  'Subject: Lunch  on\r\n\tFriday?',
  'Date: Mon, 3 Jun 2024 10:00:00 +0200',
  'Message-ID: <1@example.org>',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hi Bob,  ',
  '',
  'Shall we meet at noon?\t',
  '',
  '',
].join('\r\n');

/** 2024-06-03T08:00:00Z */
export const NOW = new Date(1717401600 * 1000);

/**
 * Prepends a DKIM-Signature built from arbitrary tags (all but bh= and b=), signed with
 * rsa-sha256 or ed25519-sha256 as the key type says, so tests can produce tag combinations
 * Postern's signer never writes.
 */
export async function rawSign(message: string, key: KeyObject, tags: string): Promise<string> {
  const t = parseTags(tags);
  const [hc = 'simple', bc = 'simple'] = (t.get('c') ?? 'simple/simple').split('/') as Canon[];
  const l = t.get('l');
  const reader = new MessageReader(Buffer.from(message, 'latin1'));
  const fields = await reader.header();
  const [body] = await hashBody(reader.body(), [{ canon: bc, limit: l === undefined ? undefined : Number(l) }]);
  const field = `DKIM-Signature: ${tags}; bh=${body!.hash.toString('base64')}; b=`;
  const data = Buffer.from(signedFields(fields, colonList(t.get('h') ?? 'From'), -1, hc) + canonHeader(field, hc).slice(0, -2), 'latin1');
  const sig =
    key.asymmetricKeyType === 'ed25519'
      ? cryptoSign(null, createHash('sha256').update(data).digest(), key)
      : cryptoSign('sha256', data, key);
  return `${field}${sig.toString('base64')}\r\n${message}`;
}

/** Yields a string's bytes in pieces of `size`, like a file stream. */
export async function* chunked(s: string | Buffer, size: number): AsyncGenerator<Buffer> {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1');
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}
