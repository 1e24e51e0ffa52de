// The per-account Bayesian junk filter: word counts in ham and spam messages in an SQLite
// database (data/accounts/<name>/junkfilter.db), combined as in Graham's "A Plan for Spam"
// (2002) with Robinson's handling of rare words ("A Statistical Approach to the Spam Problem",
// 2003). The same database records which messages were trained as what, so training follows
// a message's current state and nothing is counted twice, plus the account's Rejects copies.
import Database from 'better-sqlite3';

export interface FilterParams {
  /** Word probabilities are kept within [MaxPower, 1-MaxPower]: no single word decides. */
  maxPower: number;
  /** Words from each end (most spammy, most hammy) that are combined. */
  topWords: number;
  /** Words this close to 0.5 say nothing and are skipped. */
  ignoreWords: number;
  /** Robinson's s: how strongly a word seen in few messages is pulled toward 0.5. */
  rareStrength: number;
}

export const defaultParams: FilterParams = { maxPower: 0.01, topWords: 10, ignoreWords: 0.1, rareStrength: 1 };

export interface Classification {
  /** Spam probability, 0..1. */
  prob: number;
  /** The filter has learned from enough ham to be trusted with rejections. */
  significant: boolean;
  /** The words that decided, most extreme first, with their probabilities. */
  words: { word: string; p: number }[];
  nham: number;
  nspam: number;
}

const schema = `
  CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v ANY) STRICT;
  CREATE TABLE IF NOT EXISTS word (w TEXT PRIMARY KEY, ham INTEGER NOT NULL, spam INTEGER NOT NULL) STRICT, WITHOUT ROWID;
  -- What each message was trained as (1 spam, 0 ham), and where it is, to untrain it when it goes.
  -- With how it arrived (copied from the account's message), it is also the history that sender
  -- reputation looks at: only classified messages, so a lookup reads only rows that count.
  CREATE TABLE IF NOT EXISTS trained (
    msgid INTEGER PRIMARY KEY, mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, spam INTEGER NOT NULL,
    received INTEGER NOT NULL DEFAULT 0, remoteip TEXT NOT NULL DEFAULT '', ip1 TEXT NOT NULL DEFAULT '', ip2 TEXT NOT NULL DEFAULT '', ip3 TEXT NOT NULL DEFAULT '',
    ehlodomain TEXT NOT NULL DEFAULT '', ehlovalidated INTEGER NOT NULL DEFAULT 0, mailfromdomain TEXT NOT NULL DEFAULT '', mailfromvalidated INTEGER NOT NULL DEFAULT 0,
    msgfrom TEXT NOT NULL DEFAULT '', msgfromdomain TEXT NOT NULL DEFAULT '', msgfromorgdomain TEXT NOT NULL DEFAULT '', msgfromvalidated INTEGER NOT NULL DEFAULT 0
  ) STRICT;
  CREATE INDEX IF NOT EXISTS trained_mailbox_uid ON trained (mailbox_id, uid);
  CREATE INDEX IF NOT EXISTS trained_remoteip ON trained (remoteip, received);
  CREATE INDEX IF NOT EXISTS trained_ip1 ON trained (ip1, received);
  CREATE INDEX IF NOT EXISTS trained_ip2 ON trained (ip2, received);
  CREATE INDEX IF NOT EXISTS trained_ip3 ON trained (ip3, received);
  CREATE INDEX IF NOT EXISTS trained_ehlodomain ON trained (ehlodomain, received);
  CREATE INDEX IF NOT EXISTS trained_mailfromdomain ON trained (mailfromdomain, received);
  CREATE INDEX IF NOT EXISTS trained_msgfrom ON trained (msgfrom, received);
  CREATE INDEX IF NOT EXISTS trained_msgfromdomain ON trained (msgfromdomain, received);
  CREATE INDEX IF NOT EXISTS trained_msgfromorgdomain ON trained (msgfromorgdomain, received);
  CREATE TABLE IF NOT EXISTS traineddkim (domain TEXT NOT NULL, received INTEGER NOT NULL, msgid INTEGER NOT NULL, PRIMARY KEY (domain, received, msgid)) STRICT, WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS traineddkim_msgid ON traineddkim (msgid);
  -- Messages older than the watermark were looked at for "kept long enough" training.
  CREATE TABLE IF NOT EXISTS scan (mailbox_id INTEGER PRIMARY KEY, uid INTEGER NOT NULL) STRICT;
  -- Copies of rejected messages in the Rejects mailbox, by Message-ID or content hash.
  CREATE TABLE IF NOT EXISTS reject (key TEXT PRIMARY KEY, msgid INTEGER NOT NULL) STRICT;
`;

const chunkSize = 250;

/** One message's words, added (n = 1) or removed (n = -1) as ham or spam. */
export interface TrainItem {
  tokens: Iterable<string>;
  spam: boolean;
  n: 1 | -1;
}

export class Filter {
  readonly db: Database.Database;
  private readonly st;

  constructor(
    file: string,
    readonly params: FilterParams = defaultParams,
  ) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // Losing the last trainings in a crash is harmless; a retrain rebuilds everything.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(schema);
    this.st = {
      getMeta: this.db.prepare('SELECT v FROM meta WHERE k = ?').pluck(),
      setMeta: this.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v'),
      add: this.db.prepare('INSERT INTO word (w, ham, spam) VALUES (?, ?, ?) ON CONFLICT (w) DO UPDATE SET ham = ham + excluded.ham, spam = spam + excluded.spam'),
      prune: this.db.prepare('DELETE FROM word WHERE w = ? AND ham <= 0 AND spam <= 0'),
    };
  }

  /** True when the database was just created: nothing was ever recorded in it. */
  get fresh(): boolean {
    return this.meta('created') === undefined;
  }

  meta(k: string): number | string | undefined {
    return this.st.getMeta.get(k) as number | string | undefined;
  }

  setMeta(k: string, v: number | string): void {
    this.st.setMeta.run(k, v);
  }

  counts(): { nham: number; nspam: number } {
    return { nham: Number(this.meta('nham') ?? 0), nspam: Number(this.meta('nspam') ?? 0) };
  }

  /** Adds (n = 1) or removes (n = -1) one message's words as ham or spam. Call within a transaction for batches. */
  train(tokens: Iterable<string>, spam: boolean, n: 1 | -1): void {
    this.trainMany([{ tokens, spam, n }]);
  }

  /** Trains several messages at once, writing each word once. Call within a transaction. */
  trainMany(items: readonly TrainItem[]): void {
    if (!items.length) return;
    let dham = 0;
    let dspam = 0;
    const delta = new Map<string, { ham: number; spam: number }>();
    for (const { tokens, spam, n } of items) {
      if (spam) dspam += n;
      else dham += n;
      for (const w of tokens) {
        let d = delta.get(w);
        if (!d) delta.set(w, (d = { ham: 0, spam: 0 }));
        if (spam) d.spam += n;
        else d.ham += n;
      }
    }
    const c = this.counts();
    if (dham) this.setMeta('nham', Math.max(0, c.nham + dham));
    if (dspam) this.setMeta('nspam', Math.max(0, c.nspam + dspam));
    for (const [w, d] of delta) {
      if (d.ham === 0 && d.spam === 0) continue;
      this.st.add.run(w, d.ham, d.spam);
      if (d.ham < 0 || d.spam < 0) this.st.prune.run(w);
    }
  }

  /** Ham and spam counts of words; absent words are not in the map. */
  lookup(tokens: string[]): Map<string, { ham: number; spam: number }> {
    const out = new Map<string, { ham: number; spam: number }>();
    for (let i = 0; i < tokens.length; i += chunkSize) {
      const chunk = tokens.slice(i, i + chunkSize);
      const st = chunk.length === chunkSize ? (this.chunkStmt ??= this.inStmt(chunkSize)) : this.inStmt(chunk.length);
      for (const r of st.all(...chunk) as { w: string; ham: number; spam: number }[]) out.set(r.w, { ham: r.ham, spam: r.spam });
    }
    return out;
  }

  private chunkStmt?: Database.Statement;

  private inStmt(n: number): Database.Statement {
    return this.db.prepare(`SELECT w, ham, spam FROM word WHERE w IN (${Array(n).fill('?').join(',')})`);
  }

  classify(tokens: Iterable<string>, minHam: number): Classification {
    const { nham, nspam } = this.counts();
    const { maxPower, topWords, ignoreWords, rareStrength } = this.params;
    const scored: { word: string; p: number }[] = [];
    const counts = this.lookup([...tokens]);
    for (const [word, { ham, spam }] of counts) {
      const hf = nham ? ham / nham : 0;
      const sf = nspam ? spam / nspam : 0;
      if (hf + sf === 0) continue;
      // Robinson: with few sightings, the estimate stays near the neutral 0.5.
      const n = ham + spam;
      let p = (rareStrength * 0.5 + n * (sf / (hf + sf))) / (rareStrength + n);
      p = Math.min(1 - maxPower, Math.max(maxPower, p));
      if (Math.abs(p - 0.5) >= ignoreWords) scored.push({ word, p });
    }
    scored.sort((a, b) => a.p - b.p);
    const hammy = scored.slice(0, Math.min(topWords, scored.length)).filter((w) => w.p < 0.5);
    const spammy = scored.slice(Math.max(0, scored.length - topWords)).filter((w) => w.p > 0.5);
    const decisive = [...hammy, ...spammy];
    // Naive Bayes combination in log space, avoiding underflow: 1 / (1 + prod((1-p)/p)).
    let eta = 0;
    for (const { p } of decisive) eta += Math.log(1 - p) - Math.log(p);
    const prob = decisive.length ? 1 / (1 + Math.exp(eta)) : 0.5;
    decisive.sort((a, b) => Math.abs(b.p - 0.5) - Math.abs(a.p - 0.5));
    return { prob, significant: nham >= minHam, words: decisive, nham, nspam };
  }

  /** Forgets all words and training state, for a retrain. */
  reset(): void {
    this.db.exec('DELETE FROM word; DELETE FROM trained; DELETE FROM traineddkim; DELETE FROM scan;');
    this.setMeta('nham', 0);
    this.setMeta('nspam', 0);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
