// Control socket commands for the queue of a running server, used by "postern queue ...".
import fs from 'node:fs';
import type { App } from '../server/app.js';
import type { CtlHandler } from '../ctl/ctl.js';
import type { Delivery } from './deliver.js';
import type { Filter, QueueMsg } from './store.js';
import { sendTLSReports } from './tlsreports.js';
import { removedFromQueue } from '../webhook/events.js';

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

/** A filter from control arguments: ids (list or comma-separated), account, fromdomain, todomain, recipient, transport, hold. */
export function filterFrom(args: Record<string, unknown>, byTransport = true): Filter {
  const f: Filter = {};
  const ids = Array.isArray(args.ids) ? args.ids.map(Number) : str(args.ids)?.split(',').map(Number);
  if (ids) {
    if (ids.some((n) => !Number.isSafeInteger(n))) throw new Error('ids must be numbers');
    f.ids = ids;
  }
  if (str(args.account)) f.account = str(args.account);
  if (str(args.fromdomain)) f.fromDomain = str(args.fromdomain);
  if (str(args.todomain)) f.toDomain = str(args.todomain);
  if (str(args.recipient)) f.recipient = str(args.recipient);
  if (typeof args.transport === 'string' && byTransport) f.transport = args.transport;
  if (typeof args.hold === 'boolean') f.hold = args.hold;
  return f;
}

const shown = (m: QueueMsg) => {
  const { prefix: _, ...rest } = m;
  return rest;
};

export function queueHandlers(app: App, delivery: Delivery): Map<string, CtlHandler> {
  const q = app.queue;
  const h = new Map<string, CtlHandler>();
  /** Selected messages; a command that changes or removes messages needs a filter or "all". */
  const select = (args: Record<string, unknown>, needFilter: boolean, byTransport = true): QueueMsg[] => {
    const f = filterFrom(args, byTransport);
    if (needFilter && Object.keys(f).length === 0 && args.all !== true) throw new Error('no messages selected: give a filter, or -all for all messages');
    return q.select(f);
  };
  const ids = (ms: QueueMsg[]) => ms.map((m) => m.id);

  h.set('queue list', (args) => select(args, false).map(shown));
  h.set('queue hold', (args) => {
    const ms = select(args, true);
    q.update(ids(ms), { hold: 1 });
    return ms.length;
  });
  h.set('queue unhold', (args) => {
    const ms = select(args, true);
    q.update(ids(ms), { hold: 0 });
    return ms.length;
  });
  // Reschedules by a duration in ms, from now or from the current next attempt.
  h.set('queue schedule', (args) => {
    const ms = select(args, true);
    const d = Number(args.durationMs ?? 0);
    if (!Number.isFinite(d)) throw new Error('bad duration');
    const now = app.clock.now();
    for (const m of ms) q.update([m.id], { nextattempt: (args.fromNow ? now : m.nextattempt) + d });
    return ms.length;
  });
  h.set('queue transport', (args) => {
    const t = String(args.transport ?? '');
    if (t !== '' && !app.config.static_.Transports[t]) throw new Error(`unknown transport ${t}`);
    const ms = select(args, true, false);
    q.update(ids(ms), { transport: t });
    return ms.length;
  });
  // Attempts at once; with a transport, that transport is set first.
  h.set('queue kick', (args) => {
    const t = typeof args.transport === 'string' ? args.transport : undefined;
    if (t && !app.config.static_.Transports[t]) throw new Error(`unknown transport ${t}`);
    const ms = select(args, false, false);
    q.update(ids(ms), { nextattempt: app.clock.now(), ...(t !== undefined && { transport: t }) });
    return ms.length;
  });
  h.set('queue fail', async (args) => {
    const ms = select(args, true);
    const now = app.clock.now();
    const keep = app.config.static_.Queue.RetiredDays * 86400_000;
    const text = 'delivery failed by the administrator';
    q.retire(ms, false, text, now, keep, false);
    removedFromQueue(app, ms, 'failed', text);
    const byFile = new Map<number, QueueMsg[]>();
    for (const m of ms) byFile.set(m.fileid, [...(byFile.get(m.fileid) ?? []), m]);
    for (const group of byFile.values()) {
      const wanted = group.filter((m) => m.dsnnotify === null || m.dsnnotify.split(',').includes('FAILURE'));
      if (wanted.length === 0) continue;
      await delivery.sendDSN(
        group[0]!,
        wanted.map((m) => ({ recipient: m.recipient, orcpt: m.dsnorcpt, action: 'failed' as const, status: '5.3.0', diagnostic: m.lasterror ? `${text}; last error: ${m.lasterror}` : text })),
      );
    }
    q.dropUnusedFiles(ms.map((m) => m.fileid));
    return ms.length;
  });
  h.set('queue drop', (args) => {
    const ms = select(args, true);
    q.remove(ids(ms));
    removedFromQueue(app, ms, 'canceled', 'removed from the queue by the administrator');
    return ms.length;
  });
  h.set('queue dump', async (args) => {
    const m = q.get(Number(args.id));
    if (!m) throw new Error(`no message with id ${String(args.id)}`);
    const file = await fs.promises.readFile(q.filePath(m.fileid));
    return Buffer.concat([q.prefix(m.id), file]).toString('base64');
  });
  h.set('queue holdrules list', () => q.holdRules());
  h.set('queue holdrules add', (args) => q.addHoldRule({ account: str(args.account) ?? '', senderdomain: str(args.senderdomain) ?? '', recipientdomain: str(args.recipientdomain) ?? '' }));
  h.set('queue holdrules remove', (args) => {
    if (!q.removeHoldRule(Number(args.id))) throw new Error(`no hold rule with id ${String(args.id)}`);
    return true;
  });
  h.set('queue retired list', () => q.retired());
  h.set('queue tlsreports send', () => sendTLSReports(app));
  return h;
}
