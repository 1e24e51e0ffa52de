// Flags and keywords as the Unix mail formats record them, translated to and from the
// store's bits and keyword list.
import { Flag, parseFlags } from '../store/flags.js';

/**
 * Keyword spellings of other mail programs for flags Postern keeps as bits: Thunderbird
 * writes "Junk" and "NonJunk", others drop the "$" of the RFC 5788 registered names.
 */
const aliases = new Map<string, string>([
  ['junk', '$Junk'],
  ['nonjunk', '$NotJunk'],
  ['notjunk', '$NotJunk'],
  ['forwarded', '$Forwarded'],
  ['phishing', '$Phishing'],
  ['mdnsent', '$MDNSent'],
]);

/** A keyword must be an IMAP atom (RFC 9051 9, flag-keyword) to be shown to clients. */
const atom = /^[^\s(){%*"\\\]\x00-\x1f\x7f]+$/;

/** Bits and keywords from keyword names found in a file, dropping ones IMAP cannot carry. */
export function keywordFlags(names: readonly string[]): { flags: number; keywords: string[] } {
  return parseFlags(names.filter((n) => atom.test(n)).map((n) => aliases.get(n.toLowerCase()) ?? n));
}

/** Names of the flags that have no letter of their own in Maildir or mbox headers. */
export function extraKeywords(flags: number, keywords: readonly string[], exclude = 0): string[] {
  const out: string[] = [];
  const named: [number, string][] = [
    [Flag.Forwarded, '$Forwarded'],
    [Flag.Junk, '$Junk'],
    [Flag.NotJunk, '$NotJunk'],
    [Flag.Phishing, '$Phishing'],
    [Flag.MDNSent, '$MDNSent'],
  ];
  for (const [bit, name] of named) if (flags & bit & ~exclude) out.push(name);
  return out.concat(keywords);
}
