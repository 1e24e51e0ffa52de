// Commands for the outbound queue of a running server, and sendmail for scripts.
import type { Command, Ctx, FlagSpec } from './cli.js';
import { UsageError } from './cli.js';
import { Config } from '../config/load.js';
import { ctlCall, ctlPath } from '../ctl/ctl.js';
import type { HoldRule, QueueMsg, RetiredMsg } from '../queue/store.js';
import { sendmailCommand } from '../sendmail/sendmail.js';

function ctl(ctx: Ctx, cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
  return ctlCall(ctlPath(Config.load(ctx.configFile).dataDir), cmd, args);
}

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z'));
const out = (s: string) => process.stdout.write(s + '\n');

const filterFlags: Record<string, FlagSpec> = {
  id: { type: 'string', help: 'Message ids, comma-separated.' },
  account: { type: 'string', help: 'Account that submitted the message.' },
  fromdomain: { type: 'string', help: 'Domain of the sender address.' },
  todomain: { type: 'string', help: 'Domain of the recipient address.' },
  recipient: { type: 'string', help: 'Recipient address.' },
  transport: { type: 'string', help: 'Transport set on the message.' },
  hold: { type: 'string', help: '"true" for held messages only, "false" for messages not held.' },
};
const allFlag: Record<string, FlagSpec> = { all: { type: 'bool', help: 'Select all messages when no filter is given.' } };

function filterArgs(ctx: Ctx, withTransport = true): Record<string, unknown> {
  const f = ctx.flags;
  const a: Record<string, unknown> = {};
  if (typeof f.id === 'string') a.ids = f.id;
  for (const k of ['account', 'fromdomain', 'todomain', 'recipient'] as const) if (typeof f[k] === 'string') a[k] = f[k];
  if (withTransport && typeof f.transport === 'string') a.transport = f.transport;
  if (typeof f.hold === 'string') {
    if (f.hold !== 'true' && f.hold !== 'false') throw new UsageError('-hold must be true or false');
    a.hold = f.hold === 'true';
  }
  if (f.all === true) a.all = true;
  return a;
}

/** Durations such as "90s", "30m", "2h", "1d", "-1h30m", or milliseconds as a plain number. */
export function parseDuration(s: string): number {
  if (/^-?\d+$/.test(s)) return Number(s);
  const m = /^(-)?((?:\d+(?:\.\d+)?[smhd])+)$/.exec(s);
  if (!m) throw new UsageError(`bad duration ${JSON.stringify(s)}, e.g. 30m, 2h or -1h`);
  const unit = { s: 1000, m: 60_000, h: 3600_000, d: 86400_000 } as Record<string, number>;
  let ms = 0;
  for (const [, n, u] of m[2]!.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)) ms += Number(n) * unit[u!]!;
  return m[1] ? -ms : ms;
}

/** A command that sends a filter to the server and prints how many messages it affected. */
function filterCommand(name: string, help: string, what: string, extra: Record<string, unknown> = {}, flags: Record<string, FlagSpec> = {}): Command {
  return {
    name: `queue ${name}`,
    args: '',
    nargs: [0, 0],
    flags: { ...filterFlags, ...allFlag, ...flags },
    help,
    async run(ctx) {
      const n = (await ctl(ctx, `queue ${name}`, { ...filterArgs(ctx), ...extra })) as number;
      out(`${n} message${n === 1 ? '' : 's'} ${what}`);
    },
  };
}

const filterHelp = `
Messages are selected with the filter flags; all given must match. Commands that change
messages need a filter, or -all.`;

export const queueCommands: Command[] = [
  {
    name: 'queue list',
    args: '',
    nargs: [0, 0],
    flags: filterFlags,
    help: `Lists the messages in the outbound queue of the running server.

One line per recipient: queue id, account, sender, recipient, size, attempts made, time
of the next attempt, whether it is held, the transport if one is set, and the last error.`,
    async run(ctx) {
      const msgs = (await ctl(ctx, 'queue list', filterArgs(ctx))) as QueueMsg[];
      if (msgs.length === 0) {
        out('(queue empty)');
        return;
      }
      for (const m of msgs) {
        const hold = m.hold ? ' held' : '';
        const transport = m.transport ? ` transport ${m.transport}` : '';
        const err = m.lasterror ? ` last error: ${m.lasterror}` : '';
        out(`${m.id} ${m.account} <${m.sender}> -> <${m.recipient}> ${m.size} bytes, ${m.attempts} attempts, next ${iso(m.nextattempt)}${hold}${transport}${err}`);
      }
    },
  },
  filterCommand('hold', `Holds messages: they are not delivered until released with "queue unhold".\n${filterHelp}`, 'held'),
  filterCommand('unhold', `Releases held messages for delivery at their scheduled time.\n${filterHelp}`, 'released'),
  {
    name: 'queue schedule',
    args: 'duration',
    nargs: [1, 1],
    flags: { ...filterFlags, ...allFlag, now: { type: 'bool', help: 'Schedule relative to now instead of to the current next attempt.' } },
    help: `Moves the next delivery attempt of messages by a duration, e.g. 30m, 2h or -1h.

With -now, the next attempt is now plus the duration; "queue schedule -now 0" attempts at once.
${filterHelp}`,
    async run(ctx) {
      const n = (await ctl(ctx, 'queue schedule', { ...filterArgs(ctx), durationMs: parseDuration(ctx.args[0]!), fromNow: ctx.flags.now === true })) as number;
      out(`${n} message${n === 1 ? '' : 's'} rescheduled`);
    },
  },
  {
    name: 'queue transport',
    args: 'transport',
    nargs: [1, 1],
    flags: { ...filterFlags, ...allFlag },
    help: `Sets the transport for the next delivery attempts of messages, overriding the routes.

The transport is a name from Transports in postern.conf, or "default" to go back to the routes.
The -transport filter is not used here.${filterHelp}`,
    async run(ctx) {
      const t = ctx.args[0] === 'default' ? '' : ctx.args[0]!;
      const n = (await ctl(ctx, 'queue transport', { ...filterArgs(ctx, false), transport: t })) as number;
      out(`${n} message${n === 1 ? '' : 's'} changed`);
    },
  },
  {
    name: 'queue kick',
    args: '',
    nargs: [0, 0],
    flags: {
      id: filterFlags.id!,
      account: filterFlags.account!,
      fromdomain: filterFlags.fromdomain!,
      todomain: filterFlags.todomain!,
      recipient: filterFlags.recipient!,
      transport: { type: 'string', help: 'Transport to use for the attempt and later ones (set on the messages).' },
    },
    help: `Attempts delivery of queued messages now, all of them without filter flags.

Held messages stay held. With -transport, the messages are delivered with that transport.`,
    async run(ctx) {
      const args = filterArgs(ctx, false);
      if (typeof ctx.flags.transport === 'string') args.transport = ctx.flags.transport === 'default' ? '' : ctx.flags.transport;
      const n = (await ctl(ctx, 'queue kick', args)) as number;
      out(`${n} message${n === 1 ? '' : 's'} scheduled for delivery now`);
    },
  },
  filterCommand('fail', `Fails delivery of messages: they leave the queue and their senders get a DSN.\n${filterHelp}`, 'failed'),
  filterCommand('drop', `Removes messages from the queue without a DSN to their senders.\n${filterHelp}`, 'dropped'),
  {
    name: 'queue dump',
    args: 'id',
    nargs: [1, 1],
    help: 'Writes a queued message, as it will be sent, to standard output.',
    async run(ctx) {
      const b64 = (await ctl(ctx, 'queue dump', { id: Number(ctx.args[0]) })) as string;
      process.stdout.write(Buffer.from(b64, 'base64'));
    },
  },
  {
    name: 'queue holdrules list',
    args: '',
    nargs: [0, 0],
    help: `Lists the hold rules: new messages matching a rule are held when queued.`,
    async run(ctx) {
      const rules = (await ctl(ctx, 'queue holdrules list')) as HoldRule[];
      if (rules.length === 0) out('(no hold rules)');
      for (const r of rules) out(`${r.id} account ${r.account || '*'}, sender domain ${r.senderdomain || '*'}, recipient domain ${r.recipientdomain || '*'}`);
    },
  },
  {
    name: 'queue holdrules add',
    args: '',
    nargs: [0, 0],
    flags: {
      account: { type: 'string', help: 'Account that submits.' },
      senderdomain: { type: 'string', help: 'Domain of the sender address.' },
      recipientdomain: { type: 'string', help: 'Domain of the recipient address.' },
    },
    help: `Adds a hold rule, and holds the queued messages it matches.

A rule without conditions holds all messages.`,
    async run(ctx) {
      const f = ctx.flags;
      const r = (await ctl(ctx, 'queue holdrules add', { account: f.account, senderdomain: f.senderdomain, recipientdomain: f.recipientdomain })) as HoldRule;
      out(`hold rule ${r.id} added`);
    },
  },
  {
    name: 'queue holdrules remove',
    args: 'id',
    nargs: [1, 1],
    help: 'Removes a hold rule. Messages it held stay held until released with "queue unhold".',
    async run(ctx) {
      await ctl(ctx, 'queue holdrules remove', { id: Number(ctx.args[0]) });
      out(`hold rule ${ctx.args[0]} removed`);
    },
  },
  {
    name: 'queue retired list',
    args: '',
    nargs: [0, 0],
    help: `Lists recently delivered and failed recipients, kept for Queue.RetiredDays.`,
    async run(ctx) {
      const rs = (await ctl(ctx, 'queue retired list')) as RetiredMsg[];
      if (rs.length === 0) out('(none)');
      for (const r of rs) {
        out(`${r.id} ${r.account} <${r.sender}> -> <${r.recipient}> ${r.success ? 'delivered' : 'failed'} ${iso(r.retired)} after ${r.attempts} attempts${r.lasterror ? `: ${r.lasterror}` : ''}`);
      }
    },
  },
  sendmailCommand,
];
