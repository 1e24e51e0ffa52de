// Message flags: IMAP system flags (RFC 9051 2.3.2) and the well-known keywords that
// Postern acts on (junk training, RFC 9051 2.3.2 "$Junk"/"$NotJunk", RFC 5788 registry)
// are bits; other keywords are kept as a list.
export const Flag = {
  Seen: 1 << 0,
  Answered: 1 << 1,
  Flagged: 1 << 2,
  Deleted: 1 << 3,
  Draft: 1 << 4,
  Forwarded: 1 << 5,
  Junk: 1 << 6,
  NotJunk: 1 << 7,
  Phishing: 1 << 8,
  MDNSent: 1 << 9,
} as const;

export const flagNames: [string, number][] = [
  ['\\Seen', Flag.Seen],
  ['\\Answered', Flag.Answered],
  ['\\Flagged', Flag.Flagged],
  ['\\Deleted', Flag.Deleted],
  ['\\Draft', Flag.Draft],
  ['$Forwarded', Flag.Forwarded],
  ['$Junk', Flag.Junk],
  ['$NotJunk', Flag.NotJunk],
  ['$Phishing', Flag.Phishing],
  ['$MDNSent', Flag.MDNSent],
];

const byLower = new Map(flagNames.map(([n, b]) => [n.toLowerCase(), b]));

/** Bit for a flag name (case-insensitive, RFC 9051 2.3.2), or 0 for a plain keyword. */
export function flagBit(name: string): number {
  return byLower.get(name.toLowerCase()) ?? 0;
}

/** Flag names of a bitmask plus keywords, in a stable order. */
export function flagList(flags: number, keywords: readonly string[]): string[] {
  const out: string[] = [];
  for (const [n, b] of flagNames) if (flags & b) out.push(n);
  return out.concat(keywords);
}

/** Splits names into bits and keywords; keywords deduplicated case-insensitively. */
export function parseFlags(names: readonly string[]): { flags: number; keywords: string[] } {
  let flags = 0;
  const keywords: string[] = [];
  const seen = new Set<string>();
  for (const n of names) {
    const b = flagBit(n);
    if (b) flags |= b;
    else if (!seen.has(n.toLowerCase())) {
      seen.add(n.toLowerCase());
      keywords.push(n);
    }
  }
  return { flags, keywords };
}
