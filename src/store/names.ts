// Rules for mailbox names, whatever protocol creates them.

export const separator = '/';

/** Normalizes a mailbox name (NFC, "INBOX" in any case is "Inbox"), or explains why it is invalid. */
export function checkMailboxName(name: string): { name: string } | { error: string } {
  const n = name.normalize('NFC');
  if (n === '') return { error: 'empty mailbox name' };
  if (Buffer.byteLength(n) > 1000) return { error: 'mailbox name too long' };
  // RFC 9051 5.1: control characters are not allowed; wildcards would make LIST ambiguous.
  if (/[\x00-\x1f\x7f-\x9f\u2028\u2029]/.test(n)) return { error: 'control characters not allowed in mailbox name' };
  if (/[%*]/.test(n)) return { error: 'wildcard characters "%" and "*" not allowed in mailbox name' };
  if (n.startsWith('#')) return { error: 'mailbox name cannot start with "#" (namespace prefix)' };
  const parts = n.split(separator);
  if (parts.some((p) => p === '' || p.trim() !== p)) return { error: 'mailbox name has an empty hierarchy level or surrounding spaces' };
  if (parts.some((p) => p === '.' || p === '..')) return { error: 'mailbox name cannot contain "." or ".." levels' };
  if (parts[0]!.toLowerCase() === 'inbox') parts[0] = 'Inbox';
  return { name: parts.join(separator) };
}
