// Commands for the webapi, the webhook queue and the suppression lists.
import type { Command, Ctx } from './cli.js';
import { UsageError } from './cli.js';
import { Config } from '../config/load.js';
import { ctlCall, ctlPath } from '../ctl/ctl.js';
import { parseDuration } from './queuecmds.js';
import { methodDocs, openapi } from '../webapi/openapi.js';
import type { Hook, HookRetired, HookResult } from '../webhook/hooks.js';
import type { Suppression } from '../queue/suppression.js';

function ctl(ctx: Ctx, cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
  return ctlCall(ctlPath(Config.load(ctx.configFile).dataDir), cmd, args);
}

const out = (s: string) => process.stdout.write(s + '\n');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

async function stdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Calls a method; the credentials come from the URL, as in http://user%40domain:password@host/webapi/v0/. */
async function callMethod(method: string, baseURL: string, request: string): Promise<number> {
  const u = new URL(method, baseURL.endsWith('/') ? baseURL : baseURL + '/');
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  u.username = '';
  u.password = '';
  const res = await fetch(u, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(user && { Authorization: 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64') }) },
    body: request.trim() || '{}',
  });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) {
    process.stderr.write(`postern: ${res.status} ${body.toString('utf8')}\n`);
    return 1;
  }
  if (/^application\/json/.test(res.headers.get('content-type') ?? '')) out(JSON.stringify(JSON.parse(body.toString('utf8')), null, 2));
  else process.stdout.write(body);
  return 0;
}

const hookLine = (h: Hook | HookRetired) => {
  const results = JSON.parse(h.results) as HookResult[];
  const last = results[results.length - 1];
  const what = h.incoming ? 'incoming' : `${h.event} queuemsg ${h.queuemsgid}`;
  const state = 'nextattempt' in h ? `next ${iso(h.nextattempt)}` : h.success ? 'delivered' : h.supersededby ? `superseded by ${h.supersededby}` : 'failed';
  return `${h.id} ${h.account} ${what} ${h.url} ${h.attempts} attempts, ${state}${last && !last.success ? `, last error: ${last.error}` : ''}`;
};

const hookFilter = {
  id: { type: 'string' as const, help: 'Webhook ids, comma-separated.' },
  account: { type: 'string' as const, help: 'Account of the webhook.' },
  event: { type: 'string' as const, help: 'Event (delivered, failed, ...), or "incoming".' },
};

function hookArgs(ctx: Ctx): Record<string, unknown> {
  const f = ctx.flags;
  return { ...(typeof f.id === 'string' && { ids: f.id }), account: f.account, event: f.event, ...(f.all === true && { all: true }) };
}

export const webapiCommands: Command[] = [
  {
    name: 'webapi',
    args: '[method [baseurl]]',
    nargs: [0, 2],
    help: `Lists the webapi methods, prints an example request of one, or calls it.

Without arguments, lists the methods. With a method, prints its example request and result.
With a base URL too, reads the JSON request from standard input, calls the method, and prints
the result (JSON, or the bytes for MessageRawGet and MessagePartGet). The base URL carries the
credentials, with "@" in the user name written as %40, e.g.
http://jane%40example.com:password@localhost/webapi/v0/. See docs/webapi.md.`,
    async run(ctx) {
      const [method, base] = ctx.args;
      if (!method) {
        for (const m of methodDocs) out(`${m.name}\n        ${m.summary}`);
        return;
      }
      const m = methodDocs.find((d) => d.name === method);
      if (!m) throw new UsageError(`unknown method ${method}; "postern webapi" lists them`);
      if (!base) {
        out(`request (${m.request}):\n${JSON.stringify(m.example, null, 2)}`);
        out(m.raw ? `result: the bytes, ${m.result}` : `result (${m.result}):${m.resultExample !== undefined ? `\n${JSON.stringify(m.resultExample, null, 2)}` : ' see "postern webapi openapi"'}`);
        return;
      }
      return callMethod(method, base, await stdin());
    },
  },
  {
    name: 'webapi openapi',
    args: '',
    nargs: [0, 0],
    help: `Prints the OpenAPI 3.1 document of the webapi and its webhooks, as served at /webapi/v0/openapi.json and kept in docs/webapi-openapi.json.`,
    run() {
      out(JSON.stringify(openapi(), null, 2));
    },
  },
  {
    name: 'queue webhook list',
    args: '',
    nargs: [0, 0],
    flags: hookFilter,
    help: `Lists webhook posts waiting for an attempt in the running server.

One line per webhook: id, account, event and queue message (or "incoming"), URL, attempts
and the next one, and the last error.`,
    async run(ctx) {
      const hooks = (await ctl(ctx, 'queue webhook list', hookArgs(ctx))) as Hook[];
      if (hooks.length === 0) out('(none)');
      for (const h of hooks) out(hookLine(h));
    },
  },
  {
    name: 'queue webhook schedule',
    args: 'duration',
    nargs: [1, 1],
    flags: { ...hookFilter, all: { type: 'bool', help: 'Select all webhooks when no filter is given.' }, now: { type: 'bool', help: 'Relative to now instead of to the scheduled attempt.' } },
    help: `Moves the next attempt of webhooks by a duration, e.g. 10m; "-now 0" attempts at once.`,
    async run(ctx) {
      const n = (await ctl(ctx, 'queue webhook schedule', { ...hookArgs(ctx), durationMs: parseDuration(ctx.args[0]!), fromNow: ctx.flags.now === true })) as number;
      out(`${n} webhook${n === 1 ? '' : 's'} rescheduled`);
    },
  },
  {
    name: 'queue webhook cancel',
    args: '',
    nargs: [0, 0],
    flags: { ...hookFilter, all: { type: 'bool', help: 'Select all webhooks when no filter is given.' } },
    help: `Cancels webhook posts: they are moved to the retired list as failed.`,
    async run(ctx) {
      const n = (await ctl(ctx, 'queue webhook cancel', hookArgs(ctx))) as number;
      out(`${n} webhook${n === 1 ? '' : 's'} canceled`);
    },
  },
  {
    name: 'queue webhook print',
    args: 'id',
    nargs: [1, 1],
    help: `Prints a waiting webhook with its JSON body and the results of its attempts.`,
    async run(ctx) {
      out(JSON.stringify(await ctl(ctx, 'queue webhook print', { id: Number(ctx.args[0]) }), null, 2));
    },
  },
  {
    name: 'queue webhook retired list',
    args: '',
    nargs: [0, 0],
    help: `Lists delivered, failed and superseded webhooks, kept for the account's KeepRetiredWebhookPeriod.`,
    async run(ctx) {
      const hooks = (await ctl(ctx, 'queue webhook retired list')) as HookRetired[];
      if (hooks.length === 0) out('(none)');
      for (const h of hooks) out(hookLine(h));
    },
  },
  {
    name: 'queue webhook retired print',
    args: 'id',
    nargs: [1, 1],
    help: `Prints a retired webhook with its JSON body and the results of its attempts.`,
    async run(ctx) {
      out(JSON.stringify(await ctl(ctx, 'queue webhook retired print', { id: Number(ctx.args[0]) }), null, 2));
    },
  },
  {
    name: 'queue suppress list',
    args: '',
    nargs: [0, 0],
    flags: { account: { type: 'string', help: 'Only this account.' } },
    help: `Lists the suppression lists: addresses accounts do not send to.

Addresses are added after a permanent failure that says the address is bad (a delivery
attempt, or a DSN to a unique MAIL FROM address), through the webapi, or with "queue suppress add".`,
    async run(ctx) {
      const list = (await ctl(ctx, 'queue suppress list', { account: ctx.flags.account })) as Suppression[];
      if (list.length === 0) out('(none)');
      for (const s of list) out(`${s.account} ${s.baseaddress} (${s.originaladdress}) ${iso(s.created)}${s.manual ? ' manual' : ''}${s.reason ? `: ${s.reason}` : ''}`);
    },
  },
  {
    name: 'queue suppress add',
    args: 'account address',
    nargs: [2, 2],
    flags: { reason: { type: 'string', help: 'Why the address is suppressed.' } },
    help: `Adds an address to the suppression list of an account.`,
    async run(ctx) {
      const added = (await ctl(ctx, 'queue suppress add', { account: ctx.args[0], address: ctx.args[1], reason: ctx.flags.reason })) as boolean;
      out(added ? 'added' : 'already on the list');
    },
  },
  {
    name: 'queue suppress remove',
    args: 'account address',
    nargs: [2, 2],
    help: `Removes an address from the suppression list of an account.`,
    async run(ctx) {
      await ctl(ctx, 'queue suppress remove', { account: ctx.args[0], address: ctx.args[1] });
      out('removed');
    },
  },
  {
    name: 'queue suppress lookup',
    args: 'account address',
    nargs: [2, 2],
    help: `Says whether an address is on the suppression list of an account; exit status 1 if not.`,
    async run(ctx) {
      const s = (await ctl(ctx, 'queue suppress lookup', { account: ctx.args[0], address: ctx.args[1] })) as Suppression | null;
      out(s ? `suppressed as ${s.baseaddress}${s.reason ? `: ${s.reason}` : ''}` : 'not suppressed');
      return s ? 0 : 1;
    },
  },
];
