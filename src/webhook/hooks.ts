// The webhook queue: posts about outgoing and incoming messages wait in the queue database (tables
// hook and hookretired) until their URL answers 2xx. Failed posts are retried after 1m, 2m, 4m,
// 7.5m, 15m, 30m, 1h, 2h, 4h, 8h and 16h (±1%), as in mox; each attempt may take 60 seconds. Of
// the outgoing events about one queue message, only the newest is posted: queueing an event
// retires the older ones still waiting, and none is posted while an older one is in flight.
import type { App } from '../server/app.js';
import { AdjustableClock } from '../limits/limiter.js';
import { durationMs } from '../config/domains.js';
import { Log } from '../log/log.js';
import type { Incoming, Outgoing, OutgoingEvent } from './payload.js';

const log = Log.pkg('webhook');

const MINUTE = 60_000;
export const retryDelays = [1, 2, 4, 7.5, 15, 30, 60, 120, 240, 480, 960].map((m) => m * MINUTE);
const TIMEOUT = 60_000;
const CONCURRENCY = 10;

export interface HookResult {
  start: number;
  duration: number;
  success: boolean;
  code: number;
  error: string;
  /** Start of the response body, for debugging the receiver. */
  response: string;
}

export interface Hook {
  id: number;
  account: string;
  url: string;
  auth: string;
  incoming: number;
  queuemsgid: number;
  fromid: string;
  messageid: string;
  subject: string;
  event: string;
  payload: string;
  submitted: number;
  attempts: number;
  nextattempt: number;
  results: string;
}

export interface HookRetired extends Omit<Hook, 'auth' | 'nextattempt'> {
  success: number;
  supersededby: number;
  retired: number;
  keepuntil: number;
}

const workers = new WeakMap<App, Webhooks>();

function keepMs(app: App, account: string): number {
  const p = app.config.domains.Accounts[account]?.KeepRetiredWebhookPeriod;
  return (p ? durationMs(p) : undefined) ?? app.config.static_.Queue.RetiredDays * 86400_000;
}

/** Moves hooks to the retired list, in the caller's transaction or its own. */
function retire(app: App, hooks: Hook[], success: boolean, supersededby = 0): void {
  const db = app.queue.db;
  const now = app.clock.now();
  const ins = db.prepare(
    `INSERT OR REPLACE INTO hookretired (id, account, url, incoming, queuemsgid, fromid, messageid, subject, event, payload, submitted, attempts, results, success, supersededby, retired, keepuntil)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (const h of hooks) {
      ins.run(h.id, h.account, h.url, h.incoming, h.queuemsgid, h.fromid, h.messageid, h.subject, h.event, h.payload, h.submitted, h.attempts, h.results, success ? 1 : 0, supersededby, now, now + keepMs(app, h.account));
      db.prepare('DELETE FROM hook WHERE id = ?').run(h.id);
    }
    db.prepare('DELETE FROM hookretired WHERE keepuntil < ?').run(now);
  })();
}

export interface OutgoingInput {
  account: string;
  event: OutgoingEvent;
  queueMsgId: number;
  fromId: string;
  messageId: string;
  subject: string;
  extra: Record<string, string>;
  dsn?: boolean;
  suppressing?: boolean;
  smtpCode?: number;
  enhancedCode?: string;
  error?: string;
}

/** Queues an event for the account's outgoing webhook, if it has one that wants the event. */
export function queueOutgoing(app: App, o: OutgoingInput): number | undefined {
  const wh = app.config.domains.Accounts[o.account]?.OutgoingWebhook;
  if (!wh || (wh.Events.length > 0 && !wh.Events.includes(o.event))) return undefined;
  const now = app.clock.now();
  const payload: Outgoing = {
    Version: 0,
    Event: o.event,
    DSN: !!o.dsn,
    Suppressing: !!o.suppressing,
    QueueMsgID: o.queueMsgId,
    FromID: o.fromId,
    MessageID: o.messageId,
    Subject: o.subject,
    WebhookQueued: new Date(now).toISOString(),
    SMTPCode: o.smtpCode ?? 0,
    SMTPEnhancedCode: o.enhancedCode ?? '',
    Error: o.error ?? '',
    Extra: o.extra,
  };
  const db = app.queue.db;
  const inflight = workers.get(app)?.inflight ?? new Set<number>();
  let id = 0;
  db.transaction(() => {
    id = Number(
      db
        .prepare('INSERT INTO hook (account, url, auth, incoming, queuemsgid, fromid, messageid, subject, event, payload, submitted, nextattempt) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(o.account, wh.URL, wh.Authorization ?? '', o.queueMsgId, o.fromId, o.messageId, o.subject, o.event, JSON.stringify(payload), now, now).lastInsertRowid,
    );
    // Older events still waiting are of no use anymore: the receiver only needs the latest state.
    const older = (db.prepare('SELECT * FROM hook WHERE account = ? AND queuemsgid = ? AND incoming = 0 AND id < ?').all(o.account, o.queueMsgId, id) as Hook[]).filter(
      (h) => !inflight.has(h.id),
    );
    if (older.length) retire(app, older, false, id);
  })();
  log.debug('outgoing webhook queued', { id, account: o.account, event: o.event, queuemsgid: o.queueMsgId });
  app.queue.emit('hook');
  return id;
}

/** Queues an incoming message for the account's incoming webhook, if it has one. */
export function queueIncoming(app: App, account: string, payload: Incoming): number | undefined {
  const wh = app.config.domains.Accounts[account]?.IncomingWebhook;
  if (!wh) return undefined;
  const now = app.clock.now();
  const id = Number(
    app.queue.db
      .prepare('INSERT INTO hook (account, url, auth, incoming, messageid, subject, payload, submitted, nextattempt) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)')
      .run(account, wh.URL, wh.Authorization ?? '', payload.MessageID, payload.Subject, JSON.stringify(payload), now, now).lastInsertRowid,
  );
  log.debug('incoming webhook queued', { id, account, msgid: payload.Meta.MsgID });
  app.queue.emit('hook');
  return id;
}

export function hookList(app: App): Hook[] {
  return app.queue.db.prepare('SELECT * FROM hook ORDER BY id').all() as Hook[];
}

export function hookRetiredList(app: App): HookRetired[] {
  return app.queue.db.prepare('SELECT * FROM hookretired ORDER BY retired, id').all() as HookRetired[];
}

/** Cancels waiting hooks: they are retired as failed. An attempt in flight still finishes. */
export function hookCancel(app: App, ids: number[]): number {
  const hooks = ids.map((id) => app.queue.db.prepare('SELECT * FROM hook WHERE id = ?').get(id) as Hook | undefined).filter((h): h is Hook => !!h);
  retire(app, hooks, false);
  return hooks.length;
}

/** Moves the next attempt of hooks; the worker picks them up. */
export function hookSchedule(app: App, ids: number[], at: (h: Hook) => number): number {
  let n = 0;
  for (const id of ids) n += app.queue.db.prepare('UPDATE hook SET nextattempt = ? WHERE id = ?').run(at(app.queue.db.prepare('SELECT * FROM hook WHERE id = ?').get(id) as Hook), id).changes;
  app.queue.emit('hook');
  return n;
}

/** Posts due hooks, at most CONCURRENCY at a time. */
export class Webhooks {
  readonly inflight = new Set<number>();
  /** Outgoing hooks in flight by account and queue message: a newer one waits for them. */
  private readonly busyMsgs = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly app: App) {
    workers.set(app, this);
  }

  start(): void {
    this.app.queue.on('hook', () => this.schedule());
    if (this.app.clock instanceof AdjustableClock) this.app.clock.onAdvance(() => this.schedule());
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    const now = this.app.clock.now();
    // Bodies are read only for the attempt itself.
    const hooks = this.app.queue.db.prepare('SELECT id, account, incoming, queuemsgid, nextattempt FROM hook ORDER BY nextattempt, id').all() as Pick<Hook, 'id' | 'account' | 'incoming' | 'queuemsgid' | 'nextattempt'>[];
    let next: number | undefined;
    for (const h of hooks) {
      if (this.inflight.has(h.id)) continue;
      const key = `${h.account}\0${h.queuemsgid}`;
      if (!h.incoming && this.busyMsgs.has(key)) continue;
      if (h.nextattempt > now) {
        next ??= h.nextattempt;
        continue;
      }
      if (this.inflight.size >= CONCURRENCY) break;
      this.inflight.add(h.id);
      if (!h.incoming) this.busyMsgs.add(key);
      const p = this.attempt(h.id)
        .catch((e) => log.error('webhook attempt', e as Error))
        .finally(() => {
          this.inflight.delete(h.id);
          this.busyMsgs.delete(key);
          this.running.delete(p);
          this.schedule();
        });
      this.running.add(p);
    }
    // Bounded, so that a changed clock is noticed.
    if (next !== undefined) this.timer = setTimeout(() => this.schedule(), Math.min(Math.max(next - now, 100), 10 * MINUTE));
  }

  private async attempt(id: number): Promise<void> {
    const h = this.app.queue.db.prepare('SELECT * FROM hook WHERE id = ?').get(id) as Hook | undefined;
    if (!h) return;
    const attempt = h.attempts + 1;
    const start = this.app.clock.now();
    const t0 = Date.now();
    const r: HookResult = { start, duration: 0, success: false, code: 0, error: '', response: '' };
    try {
      const res = await fetch(h.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          'User-Agent': 'postern-webhook',
          'X-Postern-Webhook-ID': String(h.id),
          'X-Postern-Webhook-Attempt': String(attempt),
          ...(h.auth && { Authorization: h.auth }),
        },
        body: h.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(TIMEOUT),
      });
      r.code = res.status;
      r.response = (await res.text().catch(() => '')).slice(0, 512);
      r.success = res.status >= 200 && res.status < 300;
      if (!r.success) r.error = `status ${res.status}`;
    } catch (e) {
      r.error = (e as Error).name === 'TimeoutError' ? 'timeout' : ((e as Error & { cause?: Error }).cause?.message ?? (e as Error).message);
    }
    r.duration = Date.now() - t0;
    const db = this.app.queue.db;
    const cur = db.prepare('SELECT * FROM hook WHERE id = ?').get(h.id) as Hook | undefined;
    if (!cur) return;
    cur.attempts = attempt;
    cur.results = JSON.stringify([...(JSON.parse(cur.results) as HookResult[]), r]);
    const hlog = log.with({ id: h.id, account: h.account, attempt, url: h.url });
    if (r.success) {
      retire(this.app, [cur], true);
      hlog.info('webhook delivered', { code: r.code });
      return;
    }
    const newer = h.incoming ? undefined : (db.prepare('SELECT id FROM hook WHERE account = ? AND queuemsgid = ? AND incoming = 0 AND id > ? ORDER BY id DESC').pluck().get(h.account, h.queuemsgid, h.id) as number | undefined);
    if (newer !== undefined || attempt > retryDelays.length) {
      retire(this.app, [cur], false, newer);
      hlog.info(newer !== undefined ? 'webhook failed, superseded by a newer event' : 'webhook failed, giving up', { error: r.error });
      return;
    }
    const delay = retryDelays[attempt - 1]! * (0.99 + Math.random() * 0.02);
    db.prepare('UPDATE hook SET attempts = ?, results = ?, nextattempt = ? WHERE id = ?').run(attempt, cur.results, this.app.clock.now() + Math.round(delay), h.id);
    hlog.info('webhook failed, will retry', { error: r.error, retryInMs: Math.round(delay) });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.race([Promise.allSettled([...this.running]), new Promise((r) => setTimeout(r, 2000))]);
  }
}
