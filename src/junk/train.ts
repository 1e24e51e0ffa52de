// Training an account's filter from what the user does with messages: $Junk/$NotJunk flags,
// moves into and out of the Junk mailbox (which set those flags, as mail clients and mox do),
// messages in the not-junk mailboxes, and messages kept a while in Inbox or Junk (classOf).
// Each message's trained state is recorded, so a change untrains the old class first and a
// message is never counted twice.
import type { Account, Change } from '../store/account.js';
import { Flag, flagList } from '../store/flags.js';
import type { Clock } from '../limits/limiter.js';
import type { Log } from '../log/log.js';
import type { Filter, TrainItem } from './filter.js';
import { classOf, mailboxRoles, type Class } from './reputation.js';
import type { JunkSettings } from './settings.js';
import { tokenize } from './tokenize.js';
import { readStoredFile } from '../store/fileread.js';

interface MsgRow {
  id: number;
  mailbox_id: number;
  uid: number;
  flags: number;
  received: number;
  size: number;
  remoteip: string;
  dkimdomains: string;
}

/** How a message arrived, copied to its training record for reputation. */
const arrival =
  'remoteip, remoteipmask1 AS ip1, remoteipmask2 AS ip2, remoteipmask3 AS ip3, ehlodomain, ehlovalidated, mailfromdomain, mailfromvalidated, msgfrom, msgfromdomain, msgfromorgdomain, msgfromvalidated, dkimdomains';
const rowColumns = `id, mailbox_id, uid, flags, received, size, ${arrival}`;

/** Messages brought up to date in one transaction: word counts shared among them are written once. */
const batchSize = 100;
/** Message files read at the same time. */
const readers = 8;

export class Trainer {
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private closed = false;
  /** A remove just seen: a move's adds follow it synchronously, in the same order. */
  private lastRemove?: { mailboxId: number; uids: number[] };
  private readonly st;
  /** Messages whose training is to be brought in line with their state, by the next flush. */
  private readonly dirty = new Set<number>();
  private flushQueued = false;
  private readonly listener = (changes: Change[]) => this.onChanges(changes);

  constructor(
    readonly acc: Account,
    readonly filter: Filter,
    private readonly settings: () => JunkSettings,
    private readonly clock: Clock,
    private readonly log: Log,
  ) {
    this.st = {
      byUid: acc.db.prepare(`SELECT ${rowColumns} FROM message WHERE mailbox_id = ? AND uid = ?`),
      byId: acc.db.prepare(`SELECT ${rowColumns} FROM message WHERE id = ?`),
      trained: filter.db.prepare('SELECT msgid, spam FROM trained WHERE msgid = ?'),
      trainedAt: filter.db.prepare('SELECT msgid FROM trained WHERE mailbox_id = ? AND uid = ?').pluck(),
      setTrained: filter.db.prepare(
        `INSERT OR REPLACE INTO trained (msgid, mailbox_id, uid, spam, received, remoteip, ip1, ip2, ip3, ehlodomain, ehlovalidated, mailfromdomain, mailfromvalidated, msgfrom, msgfromdomain, msgfromorgdomain, msgfromvalidated)
         VALUES (@id, @mailbox_id, @uid, @spam, @received, @remoteip, @ip1, @ip2, @ip3, @ehlodomain, @ehlovalidated, @mailfromdomain, @mailfromvalidated, @msgfrom, @msgfromdomain, @msgfromorgdomain, @msgfromvalidated)`,
      ),
      setDKIM: filter.db.prepare('INSERT OR IGNORE INTO traineddkim (domain, received, msgid) VALUES (?, ?, ?)'),
      dropDKIM: filter.db.prepare('DELETE FROM traineddkim WHERE msgid = ?'),
      moveTrained: filter.db.prepare('UPDATE trained SET mailbox_id = ?, uid = ? WHERE msgid = ?'),
      dropTrainedRow: filter.db.prepare('DELETE FROM trained WHERE msgid = ?'),
      scanMark: filter.db.prepare('SELECT uid FROM scan WHERE mailbox_id = ?').pluck(),
      setScanMark: filter.db.prepare('INSERT INTO scan (mailbox_id, uid) VALUES (?, ?) ON CONFLICT (mailbox_id) DO UPDATE SET uid = excluded.uid'),
      scanRows: acc.db.prepare('SELECT id, uid, received FROM message WHERE mailbox_id = ? AND uid > ? ORDER BY uid LIMIT 500'),
    };
    if (filter.fresh) {
      // History before the filter existed is learned by "postern retrain", not in the background.
      filter.db.transaction(() => {
        for (const mb of acc.mailboxes()) this.st.setScanMark.run(mb.id, mb.uidnext - 1);
        filter.setMeta('created', clock.now());
      })();
    }
    acc.on('changes', this.listener);
  }

  /** Jobs waiting or running. */
  get backlog(): number {
    return this.pending;
  }

  /** Resolves when all queued work is done, including work queued meanwhile. */
  async idle(): Promise<void> {
    while (this.pending > 0) await this.queue;
  }

  close(): void {
    this.closed = true;
    this.acc.off('changes', this.listener);
  }

  private enqueue(job: () => Promise<void> | void): Promise<void> {
    this.pending++;
    const p = this.queue.then(async () => {
      try {
        if (!this.closed) await job();
      } catch (e) {
        this.log.error('junk filter training failed', e as Error);
      } finally {
        this.pending--;
      }
    });
    this.queue = p;
    return p;
  }

  private onChanges(changes: Change[]): void {
    const moved = this.lastRemove;
    this.lastRemove = undefined;
    for (const c of changes) {
      if (c.type === 'remove') {
        const removed = { mailboxId: c.mailboxId, uids: [...c.uids].sort((a, b) => a - b) };
        this.lastRemove = removed;
        // Expunged messages are untrained while their file is still there; moved ones still
        // have their row and are handled at their add.
        queueMicrotask(() => {
          if (this.lastRemove === removed) this.lastRemove = undefined;
          for (const uid of removed.uids) {
            const id = this.st.trainedAt.get(removed.mailboxId, uid) as number | undefined;
            if (id !== undefined && !this.st.byId.get(id)) this.touch(id);
          }
        });
      } else if (c.type === 'add') {
        const row = this.st.byUid.get(c.mailboxId, c.uid) as MsgRow | undefined;
        if (!row) continue;
        const from = moved && moved.uids.length === changes.length ? moved.mailboxId : undefined;
        this.autoFlags(row, from);
        this.touch(row.id);
      } else if (c.type === 'flags') {
        // Only the junk flags decide a message's class (classOf).
        if (!((c.flags ^ c.oldFlags) & (Flag.Junk | Flag.NotJunk))) continue;
        const row = this.st.byUid.get(c.mailboxId, c.uid) as MsgRow | undefined;
        if (row) this.touch(row.id);
      }
    }
  }

  /**
   * A message the user put into Junk (moved, copied or appended; not delivered there by the
   * server) gets $Junk; one moved out of Junk to a mailbox that is kept gets $NotJunk.
   */
  private autoFlags(row: MsgRow, movedFrom: number | undefined): void {
    const s = this.settings();
    const roles = mailboxRoles(this.acc, s);
    const mb = this.acc.mailboxById(row.mailbox_id);
    if (!mb) return;
    let want = 0;
    if (roles.junk.has(row.mailbox_id)) {
      const byUser = movedFrom !== undefined ? !roles.junk.has(movedFrom) : row.remoteip === '';
      if (byUser) want = Flag.Junk;
    } else if (movedFrom !== undefined && roles.junk.has(movedFrom) && mb.specialuse !== '\\Trash' && mb.name.toLowerCase() !== s.rejectsMailbox.toLowerCase()) {
      want = Flag.NotJunk;
    }
    if (!want || (row.flags & (Flag.Junk | Flag.NotJunk)) === want) return;
    const flags = (row.flags & ~(Flag.Junk | Flag.NotJunk)) | want;
    // After the current change has reached every listener.
    setImmediate(() => {
      if (this.closed) return;
      const m = this.acc.message(row.mailbox_id, row.uid);
      if (m) this.acc.storeFlags(row.mailbox_id, [row.uid], '=', flagList(flags, m.keywords));
    });
  }

  private record(row: MsgRow, spam: boolean): void {
    this.st.setTrained.run({ ...row, spam: spam ? 1 : 0 });
    for (const d of row.dkimdomains.trim().split(' ')) if (d) this.st.setDKIM.run(d, row.received, row.id);
  }

  private dropTrained(id: number): void {
    this.st.dropTrainedRow.run(id);
    this.st.dropDKIM.run(id);
  }

  private touch(id: number): void {
    this.dirty.add(id);
    if (this.flushQueued) return;
    this.flushQueued = true;
    void this.enqueue(() => this.flush());
  }

  /** Brings a batch of messages' training in line with their current state. */
  private async flush(): Promise<void> {
    this.flushQueued = false;
    const ids: number[] = [];
    for (const id of this.dirty) {
      ids.push(id);
      this.dirty.delete(id);
      if (ids.length === batchSize) break;
    }
    if (this.dirty.size) {
      this.flushQueued = true;
      void this.enqueue(() => this.flush());
    }
    const s = this.settings();
    const roles = mailboxRoles(this.acc, s);
    /** What the message should count as, and what it was trained as. */
    const state = (id: number) => {
      const row = this.st.byId.get(id) as MsgRow | undefined;
      const want: Class = row ? classOf(row, roles, s, this.clock.now()) : undefined;
      const rec = this.st.trained.get(id) as { msgid: number; spam: number } | undefined;
      const had: Class = rec ? (rec.spam ? 'junk' : 'ham') : undefined;
      return { row, want, rec, had };
    };
    const sizes = new Map<number, number>();
    const changing = ids.filter((id) => {
      const { row, want, had } = state(id);
      if (row) sizes.set(id, row.size);
      return want !== had;
    });
    // The words of each message that changes class, read a few files at a time.
    const tokens = new Map<number, Set<string> | Error>();
    for (let i = 0; i < changing.length; i += readers) {
      await Promise.all(
        changing.slice(i, i + readers).map(async (id) => {
          try {
            tokens.set(id, tokenize(await readStoredFile(this.acc.messagePath(id), sizes.get(id) ?? 0)));
          } catch (e) {
            tokens.set(id, e as Error);
          }
        }),
      );
    }
    if (this.closed) return;
    let trained = 0;
    this.filter.db.transaction(() => {
      const learn: TrainItem[] = [];
      for (const id of ids) {
        // The state again: the message may have changed while files were read.
        const { row, want, rec, had } = state(id);
        if (want === had) {
          if (rec && row) this.st.moveTrained.run(row.mailbox_id, row.uid, id);
          continue;
        }
        const t = tokens.get(id);
        if (t === undefined) {
          this.touch(id);
          continue;
        }
        if (t instanceof Error) {
          // The file of an expunged message may be gone already: only the record can go.
          this.log.info('cannot read message for junk filter training', { msgid: id, err: t.message });
          if (!row) this.dropTrained(id);
          continue;
        }
        if (had) learn.push({ tokens: t, spam: had === 'junk', n: -1 });
        if (want && row) {
          learn.push({ tokens: t, spam: want === 'junk', n: 1 });
          this.record(row, want === 'junk');
        } else this.dropTrained(id);
        trained++;
      }
      this.filter.trainMany(learn);
    })();
    if (trained) this.log.debug('junk filter trained', { messages: trained });
  }

  /**
   * Messages that became "kept long enough" in Inbox or Junk since the last scan. Each mailbox
   * is read from a watermark on, so a scan costs what arrived since the previous one.
   */
  scanKept(): Promise<void> {
    return this.enqueue(() => {
      const s = this.settings();
      if (s.keptMs <= 0) return;
      const roles = mailboxRoles(this.acc, s);
      const cutoff = this.clock.now() - s.keptMs;
      for (const mbId of [...roles.inbox, ...roles.junk]) {
        let mark = (this.st.scanMark.get(mbId) as number | undefined) ?? 0;
        for (;;) {
          const rows = this.st.scanRows.all(mbId, mark) as { id: number; uid: number; received: number }[];
          let young = false;
          for (const r of rows) {
            if (r.received > cutoff) {
              young = true;
              break;
            }
            this.touch(r.id);
            mark = r.uid;
          }
          this.st.setScanMark.run(mbId, mark);
          if (young || rows.length < 500) break;
        }
      }
    });
  }

  /** Forgets everything learned and learns again from all messages of the account. */
  retrain(progress?: (n: number) => void): Promise<{ ham: number; spam: number }> {
    let result = { ham: 0, spam: 0 };
    return this.enqueue(async () => {
      const s = this.settings();
      const roles = mailboxRoles(this.acc, s);
      const now = this.clock.now();
      this.filter.db.transaction(() => this.filter.reset())();
      const batch = this.acc.db.prepare(`SELECT ${rowColumns} FROM message WHERE id > ? ORDER BY id LIMIT 200`);
      let last = 0;
      for (;;) {
        const rows = batch.all(last) as MsgRow[];
        if (!rows.length) break;
        const learned: { row: MsgRow; spam: boolean; tokens: Set<string> }[] = [];
        for (const row of rows) {
          last = row.id;
          const c = classOf(row, roles, s, now);
          if (!c) continue;
          try {
            learned.push({ row, spam: c === 'junk', tokens: tokenize(await readStoredFile(this.acc.messagePath(row.id), row.size)) });
          } catch (e) {
            this.log.info('cannot read message for junk filter training', { msgid: row.id, err: (e as Error).message });
          }
        }
        if (this.closed) return;
        this.filter.db.transaction(() => {
          this.filter.trainMany(learned.map((l) => ({ tokens: l.tokens, spam: l.spam, n: 1 })));
          for (const l of learned) {
            this.record(l.row, l.spam);
            if (l.spam) result.spam++;
            else result.ham++;
          }
        })();
        progress?.(result.ham + result.spam);
      }
      // Messages in Inbox and Junk that are not kept long enough yet are picked up by later scans.
      this.filter.db.transaction(() => {
        for (const mbId of [...roles.inbox, ...roles.junk]) {
          const mark = this.acc.db.prepare('SELECT coalesce(max(uid), 0) FROM message WHERE mailbox_id = ? AND received <= ?').pluck().get(mbId, now - s.keptMs) as number;
          this.st.setScanMark.run(mbId, s.keptMs > 0 ? mark : 0);
        }
      })();
      result = { ...result };
    }).then(() => result);
  }
}
