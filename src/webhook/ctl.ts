// Control socket commands for the webhook queue and the suppression lists of a running server,
// used by "postern queue webhook ..." and "postern queue suppress ...".
import type { App } from '../server/app.js';
import type { CtlHandler } from '../ctl/ctl.js';
import { suppressionAdd, suppressionList, suppressionLookup, suppressionRemove } from '../queue/suppression.js';
import { hookCancel, hookList, hookRetiredList, hookSchedule, type Hook } from './hooks.js';

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

/** Hooks selected by ids (list or comma-separated), account and event; all given must match. */
function select(app: App, args: Record<string, unknown>, needFilter: boolean): Hook[] {
  const ids = Array.isArray(args.ids) ? args.ids.map(Number) : str(args.ids)?.split(',').map(Number);
  if (ids?.some((n) => !Number.isSafeInteger(n))) throw new Error('ids must be numbers');
  const account = str(args.account);
  const event = str(args.event);
  if (needFilter && !ids && !account && !event && args.all !== true) throw new Error('no webhooks selected: give a filter, or -all for all');
  return hookList(app).filter((h) => (!ids || ids.includes(h.id)) && (!account || h.account === account) && (!event || (h.incoming ? 'incoming' : h.event) === event));
}

function account(app: App, args: Record<string, unknown>): string {
  const a = str(args.account);
  if (!a || !app.config.domains.Accounts[a]) throw new Error(`no account ${String(args.account)}`);
  return a;
}

function address(args: Record<string, unknown>): string {
  const a = str(args.address);
  if (!a || !a.includes('@')) throw new Error('address needed');
  return a;
}

export function webhookHandlers(app: App): Map<string, CtlHandler> {
  const h = new Map<string, CtlHandler>();
  h.set('queue webhook list', (args) => select(app, args, false).map(({ auth: _, ...rest }) => rest));
  h.set('queue webhook schedule', (args) => {
    const d = Number(args.durationMs ?? 0);
    if (!Number.isFinite(d)) throw new Error('bad duration');
    const now = app.clock.now();
    return hookSchedule(
      app,
      select(app, args, true).map((x) => x.id),
      (x) => (args.fromNow ? now : x.nextattempt) + d,
    );
  });
  h.set('queue webhook cancel', (args) =>
    hookCancel(
      app,
      select(app, args, true).map((x) => x.id),
    ),
  );
  h.set('queue webhook print', (args) => {
    const x = hookList(app).find((y) => y.id === Number(args.id));
    if (!x) throw new Error(`no webhook with id ${String(args.id)}`);
    const { auth: _, ...rest } = x;
    return rest;
  });
  h.set('queue webhook retired list', () => hookRetiredList(app));
  h.set('queue webhook retired print', (args) => {
    const x = hookRetiredList(app).find((y) => y.id === Number(args.id));
    if (!x) throw new Error(`no retired webhook with id ${String(args.id)}`);
    return x;
  });
  h.set('queue suppress list', (args) => suppressionList(app.queue, str(args.account)));
  h.set('queue suppress add', (args) => suppressionAdd(app.queue, account(app, args), address(args), { manual: true, reason: str(args.reason) ?? '', now: app.clock.now() }));
  h.set('queue suppress remove', (args) => {
    if (!suppressionRemove(app.queue, account(app, args), address(args))) throw new Error('address not on the suppression list');
    return true;
  });
  h.set('queue suppress lookup', (args) => suppressionLookup(app.queue, account(app, args), address(args)) ?? null);
  return h;
}
