// The admin pages: #overview (domains, accounts), #domain/<name>, #account/<name>, #queue,
// #reports, #loglevels, #webserver.
import { act, button, call, field, form, formatSize, formatTime, h, notify, show, start } from './lib.js';

interface AccountInfo {
  name: string;
  domain: string;
  fullName: string;
  destinations: { key: string; mailbox: string; rules: number }[];
  quota: number;
  usage: number;
  hasPassword: boolean;
}
interface Overview {
  hostname: string;
  domains: { name: string; description: string; accounts: string[] }[];
  accounts: AccountInfo[];
}
interface DNSRecord {
  name: string;
  type: string;
  value: string;
  purpose: string;
  comment: string;
}
interface DomainInfo {
  name: string;
  description: string;
  dkimSelectors: string[];
  mtastsPolicy: string;
  addresses: { address: string; account: string }[];
  records: DNSRecord[];
  zone: string;
}
interface CheckResult {
  name: string;
  type: string;
  status: 'ok' | 'warning' | 'error';
  expected: string;
  found: string[];
  message: string;
}
interface QueueMsg {
  id: number;
  created: number;
  account: string;
  sender: string;
  recipient: string;
  size: number;
  nextattempt: number;
  attempts: number;
  lasterror: string | null;
  hold: number;
  subject: string;
}

const enc = encodeURIComponent;

async function overview(): Promise<void> {
  const o = await call<Overview>('overview');
  show(
    h('section', { id: 'domains' },
      h('h2', 'Domains'),
      h('table',
        h('tr', h('th', 'Domain'), h('th', 'Accounts'), h('th', '')),
        o.domains.map((d) =>
          h('tr', h('td', h('a', { href: `#domain/${enc(d.name)}` }, d.name)), h('td', d.accounts.join(', ')), h('td', button('Remove', async () => {
            if (!confirm(`Remove domain ${d.name}?`)) return;
            await call('domainRemove', { domain: d.name });
            notify(`Domain ${d.name} removed`);
            await overview();
          }))),
        ),
      ),
      form({ id: 'domain-add', class: 'inline' }, [
        field('New domain', h('input', { name: 'domain', required: true, placeholder: 'example.com' })),
        field('Account (optional)', h('input', { name: 'account', placeholder: 'jane' })),
        field('Localpart (optional)', h('input', { name: 'localpart', placeholder: 'jane' })),
        h('button', { type: 'submit' }, 'Add domain'),
      ], async (v) => {
        await call('domainAdd', v);
        notify(`Domain ${v.domain} added`);
        await overview();
      }),
    ),
    h('section', { id: 'accounts' },
      h('h2', 'Accounts'),
      h('table',
        h('tr', h('th', 'Account'), h('th', 'Domain'), h('th', 'Addresses'), h('th', 'Usage'), h('th', 'Password')),
        o.accounts.map((a) =>
          h('tr',
            h('td', h('a', { href: `#account/${enc(a.name)}` }, a.name)),
            h('td', a.domain),
            h('td', a.destinations.map((d) => d.key).join(', ')),
            h('td', `${formatSize(a.usage)}${a.quota ? ` of ${formatSize(a.quota)}` : ''}`),
            h('td', a.hasPassword ? 'set' : h('span', { class: 'warn' }, 'not set')),
          ),
        ),
      ),
      form({ id: 'account-add', class: 'inline' }, [
        field('New account', h('input', { name: 'account', required: true, placeholder: 'jane' })),
        field('Address', h('input', { name: 'address', required: true, placeholder: 'jane@example.com' })),
        h('button', { type: 'submit' }, 'Add account'),
      ], async (v) => {
        await call('accountAdd', v);
        location.hash = `#account/${enc(v.account!)}`;
        notify(`Account ${v.account} added; set its password`);
      }),
    ),
  );
}

async function domain(name: string): Promise<void> {
  const d = await call<DomainInfo>('domain', { domain: name });
  const results = h('div', { id: 'dnscheck' });
  show(
    h('h2', `Domain ${d.name}`),
    d.description && h('p', d.description),
    h('section',
      h('h3', 'Addresses'),
      h('ul', d.addresses.map((a) => h('li', a.address, ' → ', h('a', { href: `#account/${enc(a.account)}` }, a.account)))),
    ),
    h('section',
      h('h3', 'DNS records'),
      h('p', 'Create these records in the DNS zone of the domain. The explanations are in the zone text below.'),
      h('table', { class: 'records' },
        h('tr', h('th', 'Name'), h('th', 'Type'), h('th', 'Value')),
        d.records.map((r) => h('tr', { title: r.comment }, h('td', r.name), h('td', r.type), h('td', { class: 'value' }, r.value))),
      ),
      h('details', h('summary', 'Zone file text'), h('pre', { id: 'zone' }, d.zone)),
      d.mtastsPolicy && h('details', h('summary', 'MTA-STS policy'), h('pre', d.mtastsPolicy)),
      button('Check DNS', async () => {
        results.replaceChildren(h('p', 'Checking…'));
        const c = await call<{ results: CheckResult[]; errors: string[]; warnings: string[] }>('dnsCheck', { domain: name });
        results.replaceChildren(
          h('p', c.errors.length ? `${c.errors.length} errors, ${c.warnings.length} warnings` : c.warnings.length ? `No errors, ${c.warnings.length} warnings` : 'All records as expected'),
          h('table', { class: 'records' },
            h('tr', h('th', 'Status'), h('th', 'Name'), h('th', 'Type'), h('th', 'Found'), h('th', 'Problem')),
            c.results.map((r) => h('tr', { class: r.status }, h('td', r.status), h('td', r.name), h('td', r.type), h('td', { class: 'value' }, r.found.join('\n')), h('td', r.message))),
          ),
        );
      }, { id: 'dnscheck-button' }),
      results,
    ),
  );
}

async function account(name: string): Promise<void> {
  const a = await call<AccountInfo>('account', { account: name });
  const reload = () => account(name);
  show(
    h('h2', `Account ${a.name}`),
    h('p', `Default domain ${a.domain}. Usage ${formatSize(a.usage)}${a.quota ? ` of ${formatSize(a.quota)}` : ', no quota'}.`),
    h('section',
      h('h3', 'Addresses'),
      h('table',
        a.destinations.map((d) =>
          h('tr', h('td', d.key), h('td', `to ${d.mailbox}${d.rules ? `, ${d.rules} rules` : ''}`), h('td', button('Remove', async () => {
            await call('addressRemove', { address: d.key.includes('@') ? d.key : `${d.key}@${a.domain}` });
            notify(`Address ${d.key} removed`);
            await reload();
          }))),
        ),
      ),
      form({ id: 'address-add', class: 'inline' }, [field('New address', h('input', { name: 'address', required: true, placeholder: `someone@${a.domain}` })), h('button', { type: 'submit' }, 'Add address')], async (v) => {
        await call('addressAdd', { address: v.address, account: name });
        notify(`Address ${v.address} added`);
        await reload();
      }),
    ),
    h('section',
      h('h3', 'Password'),
      form({ id: 'password-set', class: 'inline' }, [field('New password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true })), h('button', { type: 'submit' }, 'Set password')], async (v, f) => {
        await call('setPassword', { account: name, password: v.password });
        f.reset();
        notify('Password set');
      }),
    ),
    h('section',
      h('h3', 'Quota'),
      form({ id: 'quota-set', class: 'inline' }, [
        field('Maximum size in MiB (0 for none)', h('input', { name: 'mib', type: 'number', min: 0, step: 'any', value: a.quota / (1 << 20) })),
        h('button', { type: 'submit' }, 'Set quota'),
      ], async (v) => {
        await call('setQuota', { account: name, bytes: Math.round(Number(v.mib) * (1 << 20)) });
        notify('Quota set');
        await reload();
      }),
    ),
    h('section',
      button('Remove account', async () => {
        if (!confirm(`Remove account ${name}? Its messages stay in the data directory.`)) return;
        await call('accountRemove', { account: name });
        location.hash = '';
        notify(`Account ${name} removed`);
      }, { class: 'danger' }),
    ),
  );
}

async function queue(): Promise<void> {
  const msgs = await call<QueueMsg[]>('queueList');
  const selected = () => Array.from(document.querySelectorAll<HTMLInputElement>('input.pick:checked')).map((i) => Number(i.value));
  const op = (method: string, what: string, extra: Record<string, unknown> = {}) =>
    button(what, async () => {
      const ids = selected();
      if (ids.length === 0) throw new Error('select messages first');
      const n = await call<number>(method, { ids, ...extra });
      notify(`${what}: ${n} messages`);
      await queue();
    });
  show(
    h('h2', 'Outbound queue'),
    msgs.length === 0
      ? h('p', { id: 'queue-empty' }, 'The queue is empty.')
      : h('table', { id: 'queue' },
          h('tr', h('th', ''), h('th', 'Id'), h('th', 'Created'), h('th', 'From'), h('th', 'To'), h('th', 'Subject'), h('th', 'Size'), h('th', 'Attempts'), h('th', 'Next attempt'), h('th', 'Last error'), h('th', '')),
          msgs.map((m) =>
            h('tr', { class: m.hold ? 'held' : undefined },
              h('td', h('input', { type: 'checkbox', class: 'pick', value: m.id })),
              h('td', m.id),
              h('td', formatTime(m.created)),
              h('td', m.sender),
              h('td', m.recipient),
              h('td', m.subject),
              h('td', formatSize(m.size)),
              h('td', m.attempts),
              h('td', m.hold ? 'on hold' : formatTime(m.nextattempt)),
              h('td', m.lasterror ?? ''),
              h('td', h('a', { href: `api/queuedump?id=${m.id}`, download: `queue-${m.id}.eml` }, 'Dump')),
            ),
          ),
        ),
    msgs.length > 0 && h('p', { class: 'actions' }, op('queueKick', 'Kick'), op('queueHold', 'Hold'), op('queueHold', 'Release', { hold: false }), op('queueDrop', 'Drop')),
  );
}

interface Report {
  id: number;
  received: number;
  sender: string;
  org: string;
  begin: number;
  end: number;
  report: unknown;
}

async function reports(): Promise<void> {
  const r = await call<{ dmarc: (Report & { domain: string; messages: number })[]; tls: (Report & { domains: string[]; successful: number; failed: number })[] }>('reports');
  const full = (x: Report) => h('details', h('summary', 'report'), h('pre', JSON.stringify(x.report, null, 2)));
  const period = (x: Report) => `${formatTime(x.begin)} – ${formatTime(x.end)}`;
  show(
    h('h2', 'Received reports'),
    h('section', { id: 'dmarc-reports' },
      h('h3', 'DMARC aggregate reports'),
      r.dmarc.length === 0 ? h('p', { class: 'empty' }, 'No DMARC reports received.') : h('table',
        h('tr', h('th', 'Domain'), h('th', 'From'), h('th', 'Period'), h('th', 'Messages'), h('th', '')),
        r.dmarc.map((x) => h('tr', h('td', x.domain), h('td', x.org, h('br'), x.sender), h('td', period(x)), h('td', x.messages), h('td', full(x)))),
      ),
    ),
    h('section', { id: 'tls-reports' },
      h('h3', 'TLS reports'),
      r.tls.length === 0 ? h('p', { class: 'empty' }, 'No TLS reports received.') : h('table',
        h('tr', h('th', 'Domains'), h('th', 'From'), h('th', 'Period'), h('th', 'Sessions ok'), h('th', 'Failed'), h('th', '')),
        r.tls.map((x) => h('tr', h('td', x.domains.join(', ')), h('td', x.org, h('br'), x.sender), h('td', period(x)), h('td', x.successful), h('td', x.failed), h('td', full(x)))),
      ),
    ),
  );
}

async function loglevels(): Promise<void> {
  const l = await call<{ root: string; packages: Record<string, string>; levels: string[] }>('logLevels');
  const select = (name: string, value: string, pkg: string) =>
    h('select', { name, onchange: (e: Event) => void act(async () => {
      await call('setLogLevel', { level: (e.target as HTMLSelectElement).value, pkg });
      notify(`Log level of ${pkg || 'default'} set`);
    }) }, l.levels.map((x) => h('option', { value: x, selected: x === value }, x)));
  show(
    h('h2', 'Log levels'),
    h('p', 'Changes last until the server restarts; set LogLevel and PackageLogLevels in postern.conf to keep them.'),
    h('table', h('tr', h('td', 'default'), h('td', select('root', l.root, ''))), Object.entries(l.packages).map(([p, v]) => h('tr', h('td', p), h('td', select(p, v, p))))),
    form({ id: 'loglevel-add', class: 'inline' }, [
      field('Package', h('input', { name: 'pkg', required: true, placeholder: 'smtpserver' })),
      field('Level', h('select', { name: 'level' }, l.levels.map((x) => h('option', { value: x, selected: x === 'debug' }, x)))),
      h('button', { type: 'submit' }, 'Set'),
    ], async (v) => {
      await call('setLogLevel', v);
      await loglevels();
    }),
  );
}

interface WebserverConfig {
  WebDomainRedirects: Record<string, string>;
  WebHandlers: Record<string, Record<string, unknown> | string | boolean | undefined>[];
}

const handlerKinds = ['WebStatic', 'WebRedirect', 'WebForward', 'WebInternal'];

/** The web server's handlers: a summary, and the configuration as JSON to edit; the server checks it. */
async function webserver(): Promise<void> {
  const c = await call<WebserverConfig>('webserver');
  const target = (x: WebserverConfig['WebHandlers'][number]) => {
    const k = handlerKinds.find((n) => x[n]);
    const v = (k ? x[k] : {}) as Record<string, unknown>;
    return [k?.slice(3) ?? '', String(v.Root ?? v.BaseURL ?? v.ReplacePath ?? v.URL ?? v.Service ?? '')];
  };
  const json = (v: unknown, rows: number, name: string) => h('textarea', { name, id: `webserver-${name}`, rows, cols: 100, spellcheck: false }, JSON.stringify(v, null, 2));
  show(
    h('h2', 'Web server'),
    h('p', 'Sites served on the ports of listeners with WebserverHTTP or WebserverHTTPS in postern.conf. Handlers are tried in order on the domain and path of a request; plain HTTP requests are redirected to HTTPS unless DontRedirectPlainHTTP. The fields are those of WebHandlers and WebDomainRedirects in "postern config describe-domains". Saved changes apply at once.'),
    c.WebHandlers.length === 0
      ? h('p', { class: 'empty' }, 'No handlers.')
      : h('table', { id: 'webhandlers' },
          h('tr', h('th', '#'), h('th', 'Name'), h('th', 'Domain'), h('th', 'Path'), h('th', 'Kind'), h('th', 'Target')),
          c.WebHandlers.map((x, i) => h('tr', h('td', i), h('td', String(x.LogName ?? '')), h('td', String(x.Domain)), h('td', String(x.PathRegexp)), ...target(x).map((t) => h('td', t)))),
        ),
    form({ id: 'webserver-save' }, [
      field('Whole-domain redirects (JSON object: domain to target domain)', json(c.WebDomainRedirects, 4, 'redirects')),
      field('Handlers (JSON list)', json(c.WebHandlers, 24, 'handlers')),
      h('button', { type: 'submit' }, 'Save'),
    ], async (v) => {
      let redirects: unknown;
      let handlers: unknown;
      try {
        redirects = JSON.parse(v.redirects || '{}');
        handlers = JSON.parse(v.handlers || '[]');
      } catch (e) {
        throw new Error(`invalid JSON: ${(e as Error).message}`);
      }
      await call('webserverSave', { WebDomainRedirects: redirects, WebHandlers: handlers });
      await webserver();
      notify('Web server configuration saved');
    }),
  );
}

start({
  title: 'Postern admin',
  username: false,
  nav: [
    ['Overview', '#'],
    ['Queue', '#queue'],
    ['Reports', '#reports'],
    ['Log levels', '#loglevels'],
    ['Web server', '#webserver'],
  ],
  async route(hash) {
    const [page, arg] = hash.split('/', 2).map((x) => decodeURIComponent(x));
    if (page === 'domain' && arg) return domain(arg);
    if (page === 'account' && arg) return account(arg);
    if (page === 'queue') return queue();
    if (page === 'reports') return reports();
    if (page === 'loglevels') return loglevels();
    if (page === 'webserver') return webserver();
    return overview();
  },
});
