// Maildir (D. J. Bernstein, https://cr.yp.to/proto/maildir.html): one file per message in
// new/ (not yet seen by a mail reader) or cur/, flags in the "info" after ":2," in the file
// name: D draft, F flagged, P passed (forwarded), R replied, S seen, T trashed, stored in
// ASCII order. Dovecot adds keywords as lowercase letters a-z, numbered in a
// "dovecot-keywords" file of "<number> <keyword>" lines in the maildir.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Flag } from '../store/flags.js';
import { keywordFlags, extraKeywords } from './flags.js';

const letters: [string, number][] = [
  ['D', Flag.Draft],
  ['F', Flag.Flagged],
  ['P', Flag.Forwarded],
  ['R', Flag.Answered],
  ['S', Flag.Seen],
  ['T', Flag.Deleted],
];

/**
 * The info of a message file name, or "" when it has none. Windows file systems cannot
 * hold ":", so tools there write "!" or ";" instead.
 */
export function maildirInfo(name: string): string {
  const m = /[:!;]2,([A-Za-z]*)$/.exec(name);
  return m ? m[1]! : '';
}

/** Keyword names by their letter index, from a dovecot-keywords file. */
export function parseDovecotKeywords(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+) (.+)$/.exec(line.trim());
    if (m && Number(m[1]) < 26) out.set(Number(m[1]), m[2]!);
  }
  return out;
}

/** Flags of an info string; lowercase letters are looked up in the dovecot-keywords names. */
export function infoFlags(info: string, keywordNames: Map<number, string>): { flags: number; keywords: string[]; unknownLetters: string } {
  let flags = 0;
  const names: string[] = [];
  let unknownLetters = '';
  for (const c of info) {
    const bit = letters.find(([l]) => l === c)?.[1];
    if (bit) flags |= bit;
    else if (c >= 'a' && c <= 'z') {
      const k = keywordNames.get(c.charCodeAt(0) - 97);
      if (k) names.push(k);
      else unknownLetters += c;
    }
  }
  const kw = keywordFlags(names);
  return { flags: flags | kw.flags, keywords: kw.keywords, unknownLetters };
}

/**
 * Letters of the keywords of one maildir, assigned in order of first use, for its
 * dovecot-keywords file. Only 26 letters exist: keywords past them cannot be written.
 */
export class KeywordLetters {
  private readonly byName = new Map<string, number>();
  readonly names: string[] = [];
  dropped = 0;

  letter(name: string): string | undefined {
    const key = name.toLowerCase();
    let i = this.byName.get(key);
    if (i === undefined) {
      if (this.names.length >= 26) {
        this.dropped++;
        return undefined;
      }
      i = this.names.length;
      this.names.push(name);
      this.byName.set(key, i);
    }
    return String.fromCharCode(97 + i);
  }

  /** Contents of the dovecot-keywords file, or undefined when no keyword was used. */
  file(): string | undefined {
    return this.names.length ? this.names.map((n, i) => `${i} ${n}\n`).join('') : undefined;
  }
}

/** The ":2," info for flags and keywords, letters in ASCII order as the specification asks. */
export function formatInfo(flags: number, keywords: readonly string[], kl: KeywordLetters): string {
  let s = '';
  for (const [l, bit] of letters) if (flags & bit) s += l;
  const lower = extraKeywords(flags, keywords, Flag.Forwarded)
    .map((k) => kl.letter(k))
    .filter((l): l is string => l !== undefined)
    .sort();
  return ':2,' + s + [...new Set(lower)].join('');
}

/** Host part of a unique name, with "/" and ":" escaped as the specification says. */
export function maildirHost(): string {
  return os.hostname().replace(/\//g, '\\057').replace(/:/g, '\\072') || 'localhost';
}

/** Sort key of a maildir file: the delivery time its unique name starts with, then the name. */
export function byDeliveryTime(a: string, b: string): number {
  const ta = Number(/^\d+/.exec(a)?.[0] ?? Infinity);
  const tb = Number(/^\d+/.exec(b)?.[0] ?? Infinity);
  return ta !== tb ? (ta < tb ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0;
}

export interface MaildirMessage {
  data: Buffer;
  flags: number;
  keywords: string[];
  /** The file's modification time: Dovecot and others keep the internal date there. */
  received: number;
  name: string;
}

/** Whether dir looks like a maildir: it has a cur or new directory. */
export function isMaildir(dir: string): boolean {
  return ['cur', 'new'].some((d) => fs.statSync(path.join(dir, d), { throwIfNoEntry: false })?.isDirectory());
}

/** The messages of a maildir on disk, oldest delivery first, one file in memory at a time. */
export async function* readMaildir(dir: string): AsyncGenerator<MaildirMessage> {
  if (!isMaildir(dir)) throw new Error(`${dir}: not a maildir (no cur or new directory)`);
  const kwText = await fsp.readFile(path.join(dir, 'dovecot-keywords'), 'utf8').catch(() => '');
  const keywordNames = parseDovecotKeywords(kwText);
  const files: { sub: string; name: string }[] = [];
  for (const sub of ['new', 'cur']) {
    const names = await fsp.readdir(path.join(dir, sub)).catch(() => [] as string[]);
    for (const name of names) if (!name.startsWith('.')) files.push({ sub, name });
  }
  files.sort((a, b) => byDeliveryTime(a.name, b.name));
  for (const f of files) {
    const p = path.join(dir, f.sub, f.name);
    const st = await fsp.stat(p);
    if (!st.isFile()) continue;
    // Messages in new/ have no info yet (and no flags), whatever their name says.
    const { flags, keywords } = f.sub === 'cur' ? infoFlags(maildirInfo(f.name), keywordNames) : { flags: 0, keywords: [] };
    yield { data: await fsp.readFile(p), flags, keywords, received: Math.floor(st.mtimeMs), name: f.name };
  }
}
