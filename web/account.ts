// The account page: addresses, password, delivery rules, mail client settings, mailboxes.
import { button, call, field, form, formatSize, h, notify, show, start, upload } from './lib.js';

interface Ruleset {
  SMTPMailFromRegexp?: string;
  MsgFromRegexp?: string;
  VerifiedDomain?: string;
  HeadersRegexp: Record<string, string>;
  Mailbox: string;
}
interface Overview {
  account: string;
  loginAddress: string;
  fullName: string;
  quota: number;
  usage: number;
  destinations: { key: string; mailbox: string; rulesets: Ruleset[] }[];
  addresses: string[];
  mailboxes: { name: string; messages: number; unseen: number; size: number }[];
  clientSettings: string;
  webhooks: Webhooks;
}
interface Webhooks {
  outgoing: { URL: string; Authorization: string; Events: string[] } | null;
  incoming: { URL: string; Authorization: string } | null;
  fromIDLoginAddresses: string[];
}

const outgoingEvents = ['delivered', 'suppressed', 'delayed', 'failed', 'relayed', 'expanded', 'canceled', 'unrecognized'];

/** Webhooks for applications (see the webapi documentation), and login addresses with unique MAIL FROM addresses. */
function webhooksSection(w: Webhooks): HTMLElement {
  const events = outgoingEvents.map((e) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: `event-${e}`, value: e, checked: w.outgoing?.Events.includes(e) ?? false }), e));
  return h('section', { id: 'webhooks' },
    h('h2', 'Webhooks'),
    h('p', 'Applications learn the fate of the mail they send (outgoing) and get the mail that arrives (incoming) as JSON posted to a URL. An empty URL turns a webhook off.'),
    form({ id: 'webhooks-form' }, [
      h('h3', 'Outgoing: delivery events'),
      field('URL', h('input', { name: 'outURL', type: 'url', value: w.outgoing?.URL ?? '', placeholder: 'https://app.example.com/postern/outgoing' })),
      field('Authorization header (optional)', h('input', { name: 'outAuth', value: w.outgoing?.Authorization ?? '', placeholder: 'Basic dXNlcjpwYXNzd29yZA==', autocomplete: 'off' })),
      h('fieldset', h('legend', 'Events (none checked: all)'), events),
      h('h3', 'Incoming: delivered messages'),
      field('URL', h('input', { name: 'inURL', type: 'url', value: w.incoming?.URL ?? '', placeholder: 'https://app.example.com/postern/incoming' })),
      field('Authorization header (optional)', h('input', { name: 'inAuth', value: w.incoming?.Authorization ?? '', autocomplete: 'off' })),
      h('h3', 'Unique MAIL FROM addresses'),
      field(
        'Login addresses whose messages get a MAIL FROM address of their own per recipient, so that bounces map to message and recipient (one a line)',
        h('textarea', { name: 'fromIDs', rows: 2, placeholder: 'you+app@example.com' }, w.fromIDLoginAddresses.join('\n')),
      ),
      h('button', { type: 'submit', class: 'primary' }, 'Save webhooks'),
    ], async (v, f) => {
      const checked = outgoingEvents.filter((e) => (f.elements.namedItem(`event-${e}`) as HTMLInputElement).checked);
      await call('setWebhooks', {
        outgoing: v.outURL ? { URL: v.outURL, Authorization: v.outAuth, Events: checked } : null,
        incoming: v.inURL ? { URL: v.inURL, Authorization: v.inAuth } : null,
        fromIDLoginAddresses: (v.fromIDs ?? '').split('\n').map((x) => x.trim()).filter((x) => x),
      });
      notify('Webhooks saved');
    }),
  );
}

/** Editor for the rules of one destination; rules are edited in place and saved together. */
function rulesEditor(dest: Overview['destinations'][number]): HTMLElement {
  const rules: Ruleset[] = dest.rulesets.map((r) => ({ ...r, HeadersRegexp: { ...r.HeadersRegexp } }));
  const box = h('div', { class: 'rules', 'data-destination': dest.key });
  const text = (r: Ruleset, k: 'SMTPMailFromRegexp' | 'MsgFromRegexp' | 'VerifiedDomain' | 'Mailbox', label: string, placeholder: string) =>
    field(label, h('input', { name: k, value: r[k] ?? '', placeholder, oninput: (e: Event) => (r[k] = (e.target as HTMLInputElement).value) }));
  const headers = (r: Ruleset) =>
    field(
      'Header fields, one "name: regexp" a line',
      h('textarea', {
        name: 'HeadersRegexp',
        rows: 2,
        placeholder: 'list-id: dev\\.lists\\.example\\.org',
        oninput: (e: Event) => {
          r.HeadersRegexp = {};
          for (const line of (e.target as HTMLTextAreaElement).value.split('\n')) {
            const i = line.indexOf(':');
            if (i > 0) r.HeadersRegexp[line.slice(0, i).trim()] = line.slice(i + 1).trim();
          }
        },
      }, Object.entries(r.HeadersRegexp).map(([k, v]) => `${k}: ${v}`).join('\n')),
    );
  const render = () =>
    box.replaceChildren(
      rules.length === 0 ? h('p', { class: 'empty' }, `No rules: all mail goes to ${dest.mailbox}.`) : h('ol',
        rules.map((r, i) =>
          h('li', { class: 'rule' },
            text(r, 'SMTPMailFromRegexp', 'SMTP MAIL FROM matches', '^bank@'),
            text(r, 'MsgFromRegexp', 'From header matches', '@example\\.org$'),
            text(r, 'VerifiedDomain', 'Verified domain (SPF or DKIM)', 'example.org'),
            headers(r),
            text(r, 'Mailbox', 'Deliver to mailbox', 'Lists/dev'),
            h('p', { class: 'actions' },
              i > 0 && button('Move up', () => {
                rules.splice(i - 1, 0, rules.splice(i, 1)[0]!);
                render();
              }),
              button('Remove rule', () => {
                rules.splice(i, 1);
                render();
              }),
            ),
          ),
        ),
      ),
      h('p', { class: 'actions' },
        button('Add rule', () => {
          rules.push({ HeadersRegexp: {}, Mailbox: '' });
          render();
        }),
        button('Save rules', async () => {
          await call('setRulesets', { destination: dest.key, rulesets: rules });
          notify(`Rules for ${dest.key} saved`);
        }, { class: 'primary' }),
      ),
    );
  render();
  return box;
}

function importExport(o: Overview): HTMLElement {
  const format = h('select', { name: 'format' }, h('option', { value: 'maildir' }, 'Maildir'), h('option', { value: 'mbox' }, 'mbox'));
  const archive = h('select', { name: 'archive' }, h('option', { value: 'zip' }, 'zip'), h('option', { value: 'tgz' }, 'tar.gz'));
  const mailbox = h('select', { name: 'mailbox' }, h('option', { value: '' }, 'All mailboxes'), o.mailboxes.map((m) => h('option', { value: m.name }, m.name)));
  const link = h('a', { id: 'export-link', class: 'button', download: '' }, 'Export');
  const update = () => (link.href = `api/export?${new URLSearchParams({ format: format.value, archive: archive.value, mailbox: mailbox.value })}`);
  for (const s of [format, archive, mailbox]) s.addEventListener('change', update);
  update();
  const file = h('input', { type: 'file', name: 'archive', accept: '.zip,.tgz,.tar.gz,.tar,.mbox', required: true });
  const progress = h('p', { id: 'import-progress', class: 'note' });
  return h('section', { id: 'importexport' },
    h('h2', 'Export and import'),
    h('p', 'Export all mail or one mailbox as Maildir directories or mbox files (mboxrd) in a zip or tar.gz archive; flags and keywords are kept.'),
    h('div', { class: 'inline' }, field('Format', format), field('Archive', archive), field('Mailbox', mailbox), link),
    form({ id: 'import', class: 'inline' }, [
      field('Archive of Maildirs or mbox files (zip, tar.gz) or one mbox file', file),
      h('button', { type: 'submit' }, 'Import'),
    ], async () => {
      const f = file.files?.[0];
      if (!f) throw new Error('choose a file');
      let result: Record<string, unknown> | undefined;
      await upload('import', f, (x) => (progress.textContent = x < 1 ? `Uploading, ${Math.round(x * 100)}%…` : 'Uploaded, importing…'), (v) => {
        if (v.error) throw new Error(String(v.error));
        if (v.done) result = v;
        else progress.textContent = `Imported ${v.imported} messages, now into ${v.mailbox}…`;
      }).catch((e) => {
        progress.textContent = '';
        throw e;
      });
      await page();
      notify(`Imported ${result?.messages ?? 0} messages into ${Object.keys((result?.mailboxes as object) ?? {}).length} mailboxes`);
    }),
    progress,
  );
}

async function page(): Promise<void> {
  const o = await call<Overview>('overview');
  show(
    h('section', { id: 'addresses' },
      h('h2', 'Your addresses'),
      h('ul', o.addresses.map((a) => h('li', a))),
      h('p', `Account ${o.account}, ${formatSize(o.usage)} used${o.quota ? ` of ${formatSize(o.quota)}` : ''}.`),
    ),
    h('section', { id: 'password' },
      h('h2', 'Change password'),
      form({ id: 'password-change', class: 'inline' }, [
        field('Current password', h('input', { name: 'current', type: 'password', autocomplete: 'current-password', required: true })),
        field('New password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 })),
        field('Repeat new password', h('input', { name: 'repeat', type: 'password', autocomplete: 'new-password', required: true })),
        h('button', { type: 'submit' }, 'Change password'),
      ], async (v, f) => {
        if (v.password !== v.repeat) throw new Error('the new passwords differ');
        await call('setPassword', { current: v.current, password: v.password });
        f.reset();
        notify('Password changed');
      }),
    ),
    h('section', { id: 'rules' },
      h('h2', 'Delivery rules'),
      h('p', 'Incoming mail for an address is checked against its rules in order; the first rule whose conditions all match chooses the mailbox. Conditions are regular expressions, case-insensitive; empty ones are left out.'),
      o.destinations.map((d) => h('div', { class: 'destination' }, h('h3', d.key), rulesEditor(d))),
    ),
    h('section', { id: 'settings' },
      h('h2', 'Mail client settings'),
      h('pre', o.clientSettings),
      h('p', 'On an iPhone, iPad or Mac, open a configuration profile to set up the account: ',
        o.addresses.filter((a) => !a.startsWith('@')).map((a) => h('a', { href: `api/mobileconfig?address=${encodeURIComponent(a)}`, class: 'download' }, a)),
      ),
    ),
    importExport(o),
    webhooksSection(o.webhooks),
    h('section', { id: 'mailboxes' },
      h('h2', 'Mailboxes'),
      h('table', h('tr', h('th', 'Mailbox'), h('th', 'Messages'), h('th', 'Unread'), h('th', 'Size')), o.mailboxes.map((m) => h('tr', h('td', m.name), h('td', m.messages), h('td', m.unseen), h('td', formatSize(m.size))))),
    ),
  );
}

start({ title: 'Postern account', username: true, nav: [], route: () => page() });
