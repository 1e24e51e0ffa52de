// The suppression list of each account: recipient addresses it does not send to, because mail to
// them failed permanently (a delivery attempt or an incoming DSN said the address is bad) or
// because someone added them. Sending to them through the webapi is refused; queued messages to
// them fail at their next attempt. Matching is on a simplified "base" address, as in mox, so
// variants of one mailbox are covered by one entry.
import type { QueueStore } from './store.js';
import { normalizeDomain } from '../config/domains.js';

export interface Suppression {
  id: number;
  created: number;
  account: string;
  baseaddress: string;
  originaladdress: string;
  manual: number;
  reason: string;
}

/**
 * The base form of an address: lower case, the localpart cut at its first "+" or "-" (usual
 * subaddress separators) and without dots (which some providers ignore). Deliberately broad: a
 * suppressed address must not come back through a variant.
 */
export function baseAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at <= 0) throw new Error(`invalid address ${JSON.stringify(address)}`);
  const domain = normalizeDomain(address.slice(at + 1)) ?? address.slice(at + 1).toLowerCase();
  const lp = address.slice(0, at).toLowerCase().split(/[+-]/)[0]!.replace(/\./g, '');
  return `${lp || address.slice(0, at).toLowerCase()}@${domain}`;
}

export function suppressionList(q: QueueStore, account?: string): Suppression[] {
  if (account === undefined) return q.db.prepare('SELECT * FROM suppression ORDER BY account, id').all() as Suppression[];
  return q.db.prepare('SELECT * FROM suppression WHERE account = ? ORDER BY id').all(account) as Suppression[];
}

export function suppressionLookup(q: QueueStore, account: string, address: string): Suppression | undefined {
  return q.db.prepare('SELECT * FROM suppression WHERE account = ? AND baseaddress = ?').get(account, baseAddress(address)) as Suppression | undefined;
}

/** Adds an address; false if its base address was listed already (the earlier entry stays). */
export function suppressionAdd(q: QueueStore, account: string, address: string, o: { manual: boolean; reason: string; now: number }): boolean {
  const r = q.db
    .prepare('INSERT OR IGNORE INTO suppression (created, account, baseaddress, originaladdress, manual, reason) VALUES (?, ?, ?, ?, ?, ?)')
    .run(o.now, account, baseAddress(address), address, o.manual ? 1 : 0, o.reason);
  return r.changes > 0;
}

export function suppressionRemove(q: QueueStore, account: string, address: string): boolean {
  return q.db.prepare('DELETE FROM suppression WHERE account = ? AND baseaddress = ?').run(account, baseAddress(address)).changes > 0;
}

/**
 * Whether a permanent failure says the address itself is bad, so further mail to it is pointless:
 * RFC 3463 3.2 addressing status (5.1.x: no such user, bad domain, null MX) and 5.2.1 (mailbox
 * disabled). Policy refusals (5.7.x) and full mailboxes are not about the address.
 */
export function suppressible(status: string): boolean {
  return /^5\.1\.\d+$/.test(status) || status === '5.2.1';
}
