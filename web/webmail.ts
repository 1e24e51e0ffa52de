// The webmail: mailboxes, a paged message list (or conversations), a reading pane, compose with
// attachments and drafts, search, live updates from the server's event stream, and keyboard
// shortcuts (press "?").
import { act, call, formatSize, h, notify, show, start, upload } from './lib.js';

interface Mailbox {
  id: number;
  name: string;
  specialUse: string;
  total: number;
  unread: number;
}
interface Address {
  name: string;
  address: string;
}
interface Item {
  uid: number;
  flags: string[];
  size: number;
  received: number;
  from: Address[];
  to: Address[];
  subject: string;
  date: number;
  attachments: boolean;
  preview: string;
  thread?: { uids: number[]; unread: number[]; count: number };
}
interface ListResult {
  total: number;
  offset: number;
  items: Item[];
  ms: number;
}
interface AttachmentInfo {
  path: string;
  name: string;
  type: string;
  size: number;
  cid?: string;
}
interface View {
  mailbox: number;
  uid: number;
  flags: string[];
  from: Address[];
  to: Address[];
  cc: Address[];
  bcc: Address[];
  replyTo: Address[];
  subject: string;
  date: number;
  messageId: string;
  inReplyTo: string;
  references: string[];
  text: string;
  html: boolean;
  remoteBlocked: number;
  attachments: AttachmentInfo[];
  draft: boolean;
  conversation: number[];
}
interface Init {
  account: string;
  loginAddress: string;
  fullName: string;
  addresses: string[];
  mailboxes: Mailbox[];
}
/** An attachment of a message being composed: uploaded, or a part of a stored message. */
interface ComposeAttachment {
  upload?: string;
  mailbox?: number;
  uid?: number;
  path?: string;
  name: string;
  size: number;
}
interface ComposeState {
  from: string;
  to: string;
  cc: string;
  bcc: string;
  subject: string;
  text: string;
  inReplyTo?: string;
  references?: string[];
  attachments: ComposeAttachment[];
  answer?: { mailbox: number; uid: number; forward: boolean };
  draft?: { mailbox: number; uid: number };
}

const pageSize = 50;
const specialOrder = ['', '\\Drafts', '\\Sent', '\\Archive', '\\Junk', '\\Trash'];

const st = {
  init: undefined as Init | undefined,
  mailboxes: [] as Mailbox[],
  mailbox: undefined as Mailbox | undefined,
  offset: 0,
  total: 0,
  items: [] as Item[],
  cursor: -1,
  checked: new Set<number>(),
  threads: localStorage.getItem('postern-threads') === '1',
  search: '',
  view: undefined as View | undefined,
  events: undefined as EventSource | undefined,
};

const el = {
  mailboxes: h('ul', { id: 'mailbox-list' }),
  list: h('div', { id: 'message-list', role: 'listbox', 'aria-label': 'Messages' }),
  pager: h('div', { class: 'pager' }),
  reader: h('section', { id: 'reader', 'aria-label': 'Message' }),
  search: h('input', { id: 'search', type: 'search', placeholder: 'Search (/)', 'aria-label': 'Search' }),
  threads: h('input', { id: 'threads-toggle', type: 'checkbox' }),
  move: h('select', { id: 'move-to', 'aria-label': 'Move to mailbox' }),
  checkAll: h('input', { type: 'checkbox', id: 'check-all', 'aria-label': 'Select all on this page' }),
};

const enc = encodeURIComponent;
const isFlag = (flags: string[], f: string) => flags.some((x) => x.toLowerCase() === f.toLowerCase());
const byUse = (use: string) => st.mailboxes.find((m) => m.specialUse === use) ?? st.mailboxes.find((m) => m.name.toLowerCase() === use.slice(1).toLowerCase());

function who(list: Address[]): string {
  return list.map((a) => a.name || a.address).join(', ');
}

function addrText(list: Address[]): string {
  return list.map((a) => (a.name ? `${a.name.replace(/[",<>]/g, '')} <${a.address}>` : a.address)).join(', ');
}

function shortDate(ms: number): string {
  const d = new Date(ms);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (d.getFullYear() === now.getFullYear()) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  return d.toLocaleDateString();
}

// Mailboxes: Inbox and the special ones first, then the others by name; children indented.
function sortedMailboxes(): Mailbox[] {
  const rank = (m: Mailbox) => (m.name === 'Inbox' ? -1 : m.specialUse ? specialOrder.indexOf(m.specialUse) : 100);
  return [...st.mailboxes].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

function renderMailboxes(): void {
  el.mailboxes.replaceChildren(
    ...sortedMailboxes().map((m) => {
      const depth = m.name.split('/').length - 1;
      return h('li', { class: m.id === st.mailbox?.id ? 'current' : '', 'data-mailbox': m.id },
        h('a', { href: `#m/${m.id}`, style: depth ? `padding-left:${0.8 + depth}em` : undefined },
          h('span', { class: 'name' }, m.name.split('/').pop()!),
          m.unread > 0 && h('span', { class: 'unread', title: `${m.unread} unread` }, m.unread),
        ),
      );
    }),
  );
  el.move.replaceChildren(h('option', { value: '' }, 'Move to…'), ...sortedMailboxes().filter((m) => m.id !== st.mailbox?.id).map((m) => h('option', { value: m.id }, m.name)));
  const unread = st.mailboxes.find((m) => m.name === 'Inbox')?.unread ?? 0;
  document.title = unread ? `(${unread}) Postern webmail` : 'Postern webmail';
}

function row(it: Item, i: number): HTMLElement {
  const unread = !isFlag(it.flags, '\\Seen');
  const flagged = isFlag(it.flags, '\\Flagged');
  const check = h('input', { type: 'checkbox', 'aria-label': 'Select', onclick: (e: Event) => e.stopPropagation() });
  check.checked = st.checked.has(it.uid);
  check.addEventListener('change', () => (check.checked ? st.checked.add(it.uid) : st.checked.delete(it.uid)));
  const drafts = st.mailbox?.specialUse === '\\Drafts' || st.mailbox?.specialUse === '\\Sent';
  return h('div', {
    class: `msg${unread ? ' unread' : ''}${flagged ? ' flagged' : ''}${i === st.cursor ? ' cursor' : ''}${st.view && (it.thread?.uids ?? [it.uid]).includes(st.view.uid) ? ' open' : ''}`,
    role: 'option',
    'data-uid': it.uid,
    onclick: () => {
      st.cursor = i;
      void act(() => openMessage(it));
    },
  },
    check,
    h('span', { class: 'star', title: flagged ? 'Flagged' : '' }, flagged ? '★' : ''),
    h('span', { class: 'from' }, drafts ? `To: ${who(it.to)}` : who(it.from) || '(no sender)', it.thread && it.thread.count > 1 && h('span', { class: 'count' }, it.thread.count)),
    h('span', { class: 'subject' }, it.subject || '(no subject)', h('span', { class: 'preview' }, it.preview)),
    h('span', { class: 'icons' }, it.attachments && h('span', { class: 'icon-attachment', title: 'Attachments' }), isFlag(it.flags, '\\Answered') && h('span', { class: 'icon-answered', title: 'Answered' })),
    h('time', { datetime: new Date(it.date).toISOString(), title: new Date(it.date).toLocaleString() }, shortDate(it.date)),
  );
}

function renderList(): void {
  el.list.replaceChildren(...(st.items.length ? st.items.map(row) : [h('p', { class: 'empty' }, st.search ? 'No messages found.' : 'No messages.')]));
  const end = st.offset + st.items.length;
  el.pager.replaceChildren(
    h('span', { id: 'page-info' }, st.total ? `${st.offset + 1}–${end} of ${st.total.toLocaleString()}${st.threads && !st.search ? ' conversations' : ''}` : ''),
    h('button', { type: 'button', id: 'prev-page', title: 'Newer (p)', disabled: st.offset === 0, onclick: () => void act(() => page(-1)) }, '‹'),
    h('button', { type: 'button', id: 'next-page', title: 'Older (n)', disabled: end >= st.total, onclick: () => void act(() => page(1)) }, '›'),
  );
  el.checkAll.checked = st.items.length > 0 && st.items.every((it) => st.checked.has(it.uid));
  el.list.querySelector('.cursor')?.scrollIntoView({ block: 'nearest' });
}

async function loadList(): Promise<void> {
  if (!st.mailbox) return;
  const r = await call<ListResult>('list', { mailbox: st.mailbox.id, offset: st.offset, limit: pageSize, threads: st.threads, search: st.search });
  // A page past the end (messages went away) shows the last page instead.
  if (!r.items.length && r.total && st.offset >= r.total) {
    st.offset = Math.max(0, Math.floor((r.total - 1) / pageSize) * pageSize);
    return loadList();
  }
  const cur = st.items[st.cursor]?.uid;
  st.items = r.items;
  st.total = r.total;
  el.list.dataset.ms = String(r.ms);
  const keep = cur === undefined ? -1 : st.items.findIndex((it) => it.uid === cur || it.thread?.uids.includes(cur));
  st.cursor = keep >= 0 ? keep : Math.min(st.cursor, st.items.length - 1);
  const uids = new Set(st.items.flatMap((it) => it.thread?.uids ?? [it.uid]));
  for (const u of st.checked) if (!uids.has(u)) st.checked.delete(u);
  renderList();
}

async function page(dir: number): Promise<void> {
  const next = st.offset + dir * pageSize;
  if (next < 0 || next >= st.total) return;
  st.offset = next;
  st.cursor = dir > 0 ? 0 : pageSize - 1;
  await loadList();
}

async function selectMailbox(id: number): Promise<void> {
  const mb = st.mailboxes.find((m) => m.id === id) ?? st.mailboxes.find((m) => m.name === 'Inbox');
  if (!mb) return;
  if (mb.id !== st.mailbox?.id) {
    st.mailbox = mb;
    st.offset = 0;
    st.cursor = -1;
    st.checked.clear();
    st.view = undefined;
    renderReader();
  }
  renderMailboxes();
  await loadList();
}

/** UIDs the toolbar and keys act on: the checked messages, else the open one or the one at the cursor. */
function targets(): number[] {
  if (st.checked.size) {
    // A checked conversation stands for all its messages.
    return st.items.filter((it) => st.checked.has(it.uid)).flatMap((it) => it.thread?.uids ?? [it.uid]);
  }
  if (st.view) return [st.view.uid];
  const it = st.items[st.cursor];
  return it ? (it.thread?.uids ?? [it.uid]) : [];
}

async function act2(method: string, args: Record<string, unknown>, done?: string): Promise<void> {
  const uids = targets();
  if (!uids.length || !st.mailbox) throw new Error('no message selected');
  await call(method, { mailbox: st.mailbox.id, uids, ...args });
  st.checked.clear();
  if (done) notify(done);
}

/** After messages leave the list: the reader moves on to the next message, if one was open. */
async function afterRemoval(): Promise<void> {
  const wasOpen = st.view !== undefined;
  st.view = undefined;
  renderReader();
  await loadList();
  const it = st.items[st.cursor];
  if (wasOpen && it) await openMessage(it);
}

const actions = {
  remove: () => act2('remove', {}, st.mailbox?.specialUse === '\\Trash' ? 'Deleted' : 'Moved to Trash').then(afterRemoval),
  junk: () => act2('junk', { junk: true }, 'Marked as junk').then(afterRemoval),
  notJunk: () => act2('junk', { junk: false }, 'Marked as not junk').then(() => (st.mailbox?.specialUse === '\\Junk' ? afterRemoval() : loadList())),
  archive: async () => {
    const a = byUse('\\Archive');
    if (!a || a.id === st.mailbox?.id) return;
    await act2('move', { to: a.id }, `Moved to ${a.name}`);
    await afterRemoval();
  },
  move: async (to: number) => {
    await act2('move', { to }, `Moved to ${st.mailboxes.find((m) => m.id === to)?.name}`);
    await afterRemoval();
  },
  flag: async () => {
    const flags = st.view?.flags ?? st.items[st.cursor]?.flags ?? [];
    const on = !isFlag(flags, '\\Flagged');
    await act2('flags', on ? { add: ['\\Flagged'] } : { remove: ['\\Flagged'] });
    if (st.view) st.view.flags = on ? [...flags, '\\Flagged'] : flags.filter((f) => f !== '\\Flagged');
    await loadList();
  },
  toggleRead: async () => {
    const it = st.items[st.cursor];
    const read = st.checked.size ? !st.items.filter((x) => st.checked.has(x.uid)).every((x) => isFlag(x.flags, '\\Seen')) : !isFlag(it?.flags ?? [], '\\Seen');
    await act2('flags', read ? { add: ['\\Seen'] } : { remove: ['\\Seen'] });
    await loadList();
  },
};

function toolbar(): HTMLElement {
  const b = (id: string, text: string, title: string, f: () => Promise<unknown>) => h('button', { type: 'button', id, title, onclick: () => void act(f) }, text);
  el.checkAll.addEventListener('change', () => {
    for (const it of st.items) el.checkAll.checked ? st.checked.add(it.uid) : st.checked.delete(it.uid);
    renderList();
  });
  el.threads.checked = st.threads;
  el.threads.addEventListener('change', () =>
    void act(async () => {
      st.threads = el.threads.checked;
      localStorage.setItem('postern-threads', st.threads ? '1' : '0');
      st.offset = 0;
      st.cursor = -1;
      await loadList();
    }),
  );
  el.move.addEventListener('change', () => {
    const to = Number(el.move.value);
    el.move.value = '';
    if (to) void act(() => actions.move(to));
  });
  const searchForm = h('form', { id: 'search-form', role: 'search' }, el.search);
  searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void act(() => runSearch(el.search.value.trim()));
  });
  return h('div', { class: 'toolbar' },
    searchForm,
    el.checkAll,
    b('read-button', 'Read/unread', 'Mark read or unread (u)', actions.toggleRead),
    b('flag-button', 'Flag', 'Flag or unflag (s)', actions.flag),
    b('archive-button', 'Archive', 'Archive (e)', actions.archive),
    b('delete-button', 'Delete', 'Delete (Delete or #)', actions.remove),
    b('junk-button', 'Junk', 'Mark as junk (!)', actions.junk),
    b('notjunk-button', 'Not junk', 'Mark as not junk', actions.notJunk),
    el.move,
    h('label', { class: 'toggle', title: 'Conversations (t)' }, el.threads, 'Conversations'),
  );
}

async function runSearch(q: string): Promise<void> {
  st.search = q;
  st.offset = 0;
  st.cursor = -1;
  await loadList();
}

/** Plain text with links and quoted lines marked; nothing from the message becomes markup. */
function textBody(text: string): HTMLElement {
  const pre = h('div', { class: 'text-body' });
  for (const line of text.split('\n')) {
    const l = h('div', { class: /^\s*>/.test(line) ? 'quote' : '' });
    let last = 0;
    for (const m of line.matchAll(/\bhttps?:\/\/[^\s<>"')\]]+/g)) {
      l.append(line.slice(last, m.index));
      l.append(h('a', { href: m[0], target: '_blank', rel: 'noopener noreferrer' }, m[0]));
      last = m.index! + m[0].length;
    }
    l.append(line.slice(last) || '\u200b');
    pre.append(l);
  }
  return pre;
}

function messageFrame(v: View, remote: boolean): HTMLIFrameElement {
  // No allow-scripts: nothing in the message runs. allow-same-origin lets this page size the frame
  // to its content; the document's own CSP blocks scripts and loads regardless.
  const f = h('iframe', {
    class: 'html-body',
    title: 'Message content',
    sandbox: 'allow-same-origin allow-popups allow-popups-to-escape-sandbox',
    src: `api/html?mailbox=${v.mailbox}&uid=${v.uid}${remote ? '&remote=1' : ''}`,
  });
  f.addEventListener('load', () => {
    const d = f.contentDocument;
    if (d) f.style.height = `${Math.max(60, d.documentElement.scrollHeight + 4)}px`;
  });
  return f;
}

function partURL(v: { mailbox: number; uid: number }, a: AttachmentInfo, download: boolean): string {
  return `api/part?mailbox=${v.mailbox}&uid=${v.uid}&path=${enc(a.path)}${download ? '&download=1' : ''}`;
}

function messageArticle(v: View, expanded: boolean): HTMLElement {
  const art = h('article', { class: `message${expanded ? ' expanded' : ''}`, 'data-uid': v.uid });
  const header = h('div', { class: 'message-header' },
    h('div', { class: 'from' }, h('strong', v.from[0]?.name || v.from[0]?.address || '(no sender)'), v.from[0]?.name && h('span', { class: 'addr' }, ` <${v.from[0].address}>`)),
    h('time', { title: new Date(v.date).toLocaleString() }, new Date(v.date).toLocaleString()),
  );
  art.append(header);
  if (!expanded) {
    art.append(h('div', { class: 'collapsed-preview' }, v.text.replace(/\s+/g, ' ').slice(0, 160)));
    art.addEventListener('click', () => {
      art.replaceWith(messageArticle(v, true));
    });
    return art;
  }
  const lines: [string, Address[]][] = [['To', v.to], ['Cc', v.cc], ['Bcc', v.bcc], ['Reply-To', v.replyTo]];
  art.append(h('dl', { class: 'addresses' }, lines.filter(([, l]) => l.length).map(([k, l]) => [h('dt', k), h('dd', addrText(l))])));
  const body = h('div', { class: 'body' });
  let showHTML = v.html;
  let remote = false;
  const bar = h('div', { class: 'body-bar' });
  const render = () => {
    body.replaceChildren(showHTML ? messageFrame(v, remote) : textBody(v.text));
    bar.replaceChildren();
    bar.append(h('span',
      v.html && h('button', { type: 'button', class: 'link', onclick: () => ((showHTML = !showHTML), render()) }, showHTML ? 'Show text' : 'Show HTML'),
      showHTML && v.remoteBlocked > 0 && !remote && h('span', { class: 'remote-note' }, `${v.remoteBlocked} remote image${v.remoteBlocked > 1 ? 's' : ''} blocked. `,
        h('button', { type: 'button', class: 'link', id: 'load-remote', onclick: () => ((remote = true), render()) }, 'Load remote images'),
      ),
    ), h('a', { href: `api/raw?mailbox=${v.mailbox}&uid=${v.uid}`, target: '_blank', rel: 'noopener', class: 'source' }, 'Source'));
  };
  render();
  art.append(bar, body);
  if (v.attachments.length) {
    art.append(h('ul', { class: 'attachments' }, v.attachments.map((a) =>
      h('li',
        a.type.startsWith('image/') && h('img', { src: partURL(v, a, false), alt: '', loading: 'lazy' }),
        h('a', { href: partURL(v, a, true), download: a.name, class: 'download' }, a.name),
        h('span', { class: 'size' }, ` ${formatSize(a.size)} `),
        /^(image\/(png|jpeg|gif|webp|bmp)|text\/plain|application\/pdf)$/.test(a.type) && h('a', { href: partURL(v, a, false), target: '_blank', rel: 'noopener', class: 'view' }, 'view'),
      ),
    )));
  }
  return art;
}

function renderReader(): void {
  const v = st.view;
  if (!v) {
    el.reader.replaceChildren(h('p', { class: 'empty' }, 'Select a message. Press ? for keyboard shortcuts.'));
    return;
  }
  const b = (text: string, title: string, f: () => unknown) => h('button', { type: 'button', title, onclick: () => void act(async () => f()) }, text);
  el.reader.replaceChildren(
    h('div', { class: 'reader-actions' },
      v.draft ? b('Edit draft', 'Continue writing', () => editDraft(v)) : [b('Reply', 'Reply (r)', () => reply(v, false)), b('Reply all', 'Reply all (a)', () => reply(v, true)), b('Forward', 'Forward (f)', () => forward(v))],
      b(isFlag(v.flags, '\\Flagged') ? 'Unflag' : 'Flag', 'Flag (s)', actions.flag),
      b('Delete', 'Delete (Delete)', actions.remove),
      st.mailbox?.specialUse === '\\Junk' ? b('Not junk', 'Mark as not junk', actions.notJunk) : b('Junk', 'Mark as junk (!)', actions.junk),
    ),
    h('h2', { id: 'reader-subject' }, v.subject || '(no subject)'),
    h('div', { id: 'conversation' }, messageArticle(v, true)),
  );
  // Other messages of the conversation, fetched when there are any, shown collapsed around it.
  const others = v.conversation.filter((u) => u !== v.uid);
  if (others.length && st.mailbox) {
    const mailbox = st.mailbox.id;
    void Promise.all(others.slice(-20).map((uid) => call<View>('message', { mailbox, uid }).catch(() => undefined))).then((views) => {
      if (st.view !== v) return;
      const conv = document.getElementById('conversation')!;
      const all = [...views.filter((x): x is View => x !== undefined), v].sort((a, b) => a.date - b.date);
      conv.replaceChildren(...all.map((x) => (x === v ? conv.querySelector(`article[data-uid="${v.uid}"]`)! : messageArticle(x, false))));
    });
  }
}

async function openMessage(it: Item): Promise<void> {
  if (!st.mailbox) return;
  // A conversation opens at its first unread message, else its newest.
  const uids = it.thread?.uids ?? [it.uid];
  const uid = it.thread?.unread[0] ?? uids[uids.length - 1]!;
  st.view = await call<View>('message', { mailbox: st.mailbox.id, uid, markRead: true });
  for (const x of st.items) if (x === it && !isFlag(x.flags, '\\Seen') && (!x.thread || x.thread.unread.length <= 1)) x.flags = [...x.flags, '\\Seen'];
  renderList();
  renderReader();
}

function moveCursor(d: number): void {
  if (!st.items.length) return;
  const next = Math.max(0, Math.min(st.items.length - 1, st.cursor + d));
  if (next === st.cursor && st.cursor >= 0) {
    // Past the end of the page: the next page.
    const reading = st.view !== undefined;
    void act(() => page(d).then(() => (reading && st.items[st.cursor] ? openMessage(st.items[st.cursor]!) : undefined)));
    return;
  }
  st.cursor = next;
  renderList();
  // With a message open, moving opens the next one, as in a reading pane.
  if (st.view) void act(() => openMessage(st.items[st.cursor]!));
}

// Compose.

let composing: { state: ComposeState; dialog: HTMLElement } | undefined;

function quote(v: View): string {
  const intro = `On ${new Date(v.date).toLocaleString()}, ${v.from[0] ? addrText([v.from[0]]) : 'someone'} wrote:`;
  // RFC 3676 4.5: quoted lines start with ">", one more for each level.
  return `\n\n${intro}\n${v.text.trimEnd().split('\n').map((l) => (l.startsWith('>') ? `>${l}` : `> ${l}`)).join('\n')}\n`;
}

function ownAddress(v: View): string {
  const own = st.init!.addresses.map((a) => a.toLowerCase());
  return [...v.to, ...v.cc, ...v.bcc].map((a) => a.address).find((a) => own.includes(a.toLowerCase())) ?? st.init!.loginAddress;
}

function reply(v: View, all: boolean): void {
  const own = new Set([...st.init!.addresses, st.init!.loginAddress].map((a) => a.toLowerCase()));
  // RFC 5322 3.6.3: replies go to Reply-To when present, else From.
  const to = v.replyTo.length ? v.replyTo : v.from;
  const seen = new Set(to.map((a) => a.address.toLowerCase()));
  const rest = (l: Address[]) => l.filter((a) => !own.has(a.address.toLowerCase()) && !seen.has(a.address.toLowerCase()) && (seen.add(a.address.toLowerCase()), true));
  const cc = all ? [...rest(v.to), ...rest(v.cc)] : [];
  openCompose({
    from: ownAddress(v),
    to: addrText(to.filter((a) => !own.has(a.address.toLowerCase())).length ? to : v.to),
    cc: addrText(cc),
    bcc: '',
    subject: /^re:/i.test(v.subject) ? v.subject : `Re: ${v.subject}`,
    text: quote(v),
    // RFC 5322 3.6.4: the parent's references and its own ID.
    inReplyTo: v.messageId || undefined,
    references: v.messageId ? [...v.references, v.messageId].slice(-20) : v.references,
    attachments: [],
    answer: { mailbox: v.mailbox, uid: v.uid, forward: false },
  });
}

function forward(v: View): void {
  const head = ['---------- Forwarded message ----------', `From: ${addrText(v.from)}`, `Date: ${new Date(v.date).toLocaleString()}`, `Subject: ${v.subject}`, `To: ${addrText(v.to)}`];
  if (v.cc.length) head.push(`Cc: ${addrText(v.cc)}`);
  openCompose({
    from: ownAddress(v),
    to: '',
    cc: '',
    bcc: '',
    subject: /^fwd?:/i.test(v.subject) ? v.subject : `Fwd: ${v.subject}`,
    text: `\n\n${head.join('\n')}\n\n${v.text}\n`,
    attachments: v.attachments.map((a) => ({ mailbox: v.mailbox, uid: v.uid, path: a.path, name: a.name, size: a.size })),
    answer: { mailbox: v.mailbox, uid: v.uid, forward: true },
  });
}

async function editDraft(v: View): Promise<void> {
  const r = await fetch(`api/draft?mailbox=${v.mailbox}&uid=${v.uid}`, { credentials: 'same-origin' });
  if (!r.ok) throw new Error(((await r.json()) as { error: string }).error);
  const d = (await r.json()) as ComposeState;
  openCompose({ ...d, attachments: d.attachments.map((a) => ({ mailbox: a.mailbox, uid: a.uid, path: a.path, name: a.name, size: a.size })) });
}

function newMessage(): void {
  openCompose({ from: st.init!.loginAddress, to: '', cc: '', bcc: '', subject: '', text: '', attachments: [] });
}

function openCompose(state: ComposeState): void {
  if (composing) closeCompose();
  const input = (name: keyof ComposeState, label: string, attrs: Record<string, string | boolean> = {}) => {
    const i = h('input', { name, value: String(state[name] ?? ''), autocomplete: 'off', ...attrs });
    i.addEventListener('input', () => ((state as unknown as Record<string, string>)[name] = i.value));
    return h('label', h('span', label), i);
  };
  const from = h('select', { name: 'from' }, [...new Set([state.from, ...st.init!.addresses])].filter(Boolean).map((a) => h('option', { value: a, selected: a === state.from }, st.init!.fullName ? `${st.init!.fullName} <${a}>` : a)));
  from.addEventListener('change', () => (state.from = from.value));
  const text = h('textarea', { name: 'text', rows: 16 }, state.text);
  text.addEventListener('input', () => (state.text = text.value));
  const list = h('ul', { class: 'compose-attachments' });
  const renderAttachments = () =>
    list.replaceChildren(...state.attachments.map((a) =>
      h('li', a.name, h('span', { class: 'size' }, ` ${formatSize(a.size)} `), h('button', { type: 'button', class: 'link', onclick: () => ((state.attachments = state.attachments.filter((x) => x !== a)), renderAttachments()) }, 'remove')),
    ));
  renderAttachments();
  const progress = h('span', { class: 'progress' });
  const file = h('input', { type: 'file', multiple: true, name: 'attachment', 'aria-label': 'Attach files' });
  let uploading = 0;
  file.addEventListener('change', () => {
    for (const f of Array.from(file.files ?? [])) {
      uploading++;
      void act(() =>
        upload(`upload?name=${enc(f.name)}&type=${enc(f.type || 'application/octet-stream')}`, f, (x) => (progress.textContent = x < 1 ? `Uploading ${f.name}: ${Math.round(x * 100)}%` : ''), (v) => {
          state.attachments.push({ upload: String(v.upload), name: String(v.name), size: Number(v.size) });
          renderAttachments();
        }).finally(() => {
          uploading--;
          if (!uploading) progress.textContent = '';
        }),
      );
    }
    file.value = '';
  });
  const args = () => ({
    from: state.from,
    to: state.to,
    cc: state.cc,
    bcc: state.bcc,
    subject: state.subject,
    text: state.text,
    inReplyTo: state.inReplyTo,
    references: state.references ?? [],
    attachments: state.attachments.map((a) => (a.upload ? { upload: a.upload } : { mailbox: a.mailbox, uid: a.uid, path: a.path })),
    draft: state.draft,
  });
  const send = async () => {
    if (uploading) throw new Error('wait for the attachments to upload');
    const r = await call<{ delivered: string[]; queued: string[] }>('send', { ...args(), answer: state.answer });
    closeCompose();
    notify(`Message sent${r.queued.length ? `, ${r.queued.length} recipient${r.queued.length > 1 ? 's' : ''} queued` : ''}`);
    if (st.view && state.answer?.uid === st.view.uid) st.view.flags.push(state.answer.forward ? '$Forwarded' : '\\Answered');
  };
  const save = async () => {
    if (uploading) throw new Error('wait for the attachments to upload');
    const r = await call<{ mailbox: number; uid: number; attachments: (AttachmentInfo & { mailbox: number; uid: number })[] }>('saveDraft', args());
    state.draft = { mailbox: r.mailbox, uid: r.uid };
    state.attachments = r.attachments.map((a) => ({ mailbox: a.mailbox, uid: a.uid, path: a.path, name: a.name, size: a.size }));
    renderAttachments();
    notify('Draft saved');
  };
  const form = h('form', { id: 'compose', class: 'compose' },
    h('h2', state.answer ? (state.answer.forward ? 'Forward' : 'Reply') : state.draft ? 'Draft' : 'New message'),
    h('label', h('span', 'From'), from),
    input('to', 'To', { placeholder: 'name@example.com, …' }),
    input('cc', 'Cc'),
    input('bcc', 'Bcc'),
    input('subject', 'Subject'),
    text,
    h('div', { class: 'attach' }, h('label', { class: 'button' }, 'Attach files', file), progress, list),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', title: 'Send (Ctrl+Enter)' }, 'Send'),
      h('button', { type: 'button', id: 'save-draft', onclick: () => void act(save) }, 'Save draft'),
      h('button', { type: 'button', id: 'discard', onclick: () => closeCompose() }, 'Discard'),
    ),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const btn = form.querySelector('button[type=submit]') as HTMLButtonElement;
    btn.disabled = true;
    void act(send).finally(() => (btn.disabled = false));
  });
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  const dialog = h('div', { class: 'overlay', id: 'compose-overlay' }, form);
  document.body.append(dialog);
  composing = { state, dialog };
  (state.to ? text : (form.querySelector('input[name=to]') as HTMLInputElement)).focus();
  if (state.to) text.setSelectionRange(0, 0);
}

function closeCompose(): void {
  composing?.dialog.remove();
  composing = undefined;
}

// Keyboard shortcuts.

const shortcuts: [string, string][] = [
  ['j / k', 'next / previous message'],
  ['o or Enter', 'open message'],
  ['u', 'mark read or unread'],
  ['s', 'flag or unflag'],
  ['r', 'reply'],
  ['a', 'reply all'],
  ['f', 'forward'],
  ['c', 'compose'],
  ['e', 'archive'],
  ['Delete or #', 'delete'],
  ['!', 'mark as junk'],
  ['x', 'select message'],
  ['n / p', 'older / newer page'],
  ['t', 'conversations on or off'],
  ['/', 'search'],
  ['Esc', 'close, clear search'],
  ['Ctrl+Enter', 'send (while composing)'],
  ['?', 'this help'],
];

function toggleHelp(): void {
  const have = document.getElementById('help');
  if (have) return have.remove();
  const box: HTMLElement = h('div', { class: 'overlay', id: 'help' },
    h('div', { class: 'help' }, h('h2', 'Keyboard shortcuts'), h('table', shortcuts.map(([k, d]) => h('tr', h('td', h('kbd', k)), h('td', d))))),
  );
  box.addEventListener('click', (e) => e.target === box && box.remove());
  document.body.append(box);
}

function onKey(e: KeyboardEvent): void {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target as HTMLElement;
  const typing = t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable;
  if (e.key === 'Escape') {
    if (document.getElementById('help')) document.getElementById('help')!.remove();
    else if (composing) closeCompose();
    else if (typing) t.blur();
    else if (st.view) {
      st.view = undefined;
      renderReader();
      renderList();
    } else if (st.search) {
      el.search.value = '';
      void act(() => runSearch(''));
    }
    return;
  }
  if (typing || composing || !st.init) return;
  // Enter on a focused button or link is theirs.
  if (e.key === 'Enter' && (t.tagName === 'BUTTON' || t.tagName === 'A')) return;
  if (document.getElementById('help') && e.key !== '?') return;
  const v = st.view;
  const keys: Record<string, () => unknown> = {
    j: () => moveCursor(1),
    k: () => moveCursor(-1),
    o: () => st.items[st.cursor] && act(() => openMessage(st.items[st.cursor]!)),
    Enter: () => st.items[st.cursor] && act(() => openMessage(st.items[st.cursor]!)),
    u: () => act(actions.toggleRead),
    s: () => act(actions.flag),
    r: () => v && reply(v, false),
    a: () => v && reply(v, true),
    f: () => v && forward(v),
    c: () => newMessage(),
    e: () => act(actions.archive),
    Delete: () => act(actions.remove),
    '#': () => act(actions.remove),
    '!': () => act(actions.junk),
    x: () => {
      const it = st.items[st.cursor];
      if (it) st.checked.has(it.uid) ? st.checked.delete(it.uid) : st.checked.add(it.uid);
      renderList();
    },
    n: () => act(() => page(1)),
    p: () => act(() => page(-1)),
    t: () => el.threads.click(),
    '/': () => el.search.focus(),
    '?': () => toggleHelp(),
  };
  const f = keys[e.key];
  if (!f) return;
  e.preventDefault();
  void f();
}

// Live updates.

let reloadTimer: number | undefined;

function listen(): void {
  st.events?.close();
  const es = new EventSource('api/events');
  st.events = es;
  es.addEventListener('changes', (e) => {
    const d = JSON.parse((e as MessageEvent<string>).data) as {
      changes: { type: string; mailbox: number; uid?: number; uids?: number[]; flags?: string[] }[];
      mailboxes: Mailbox[];
      mailboxList: boolean;
    };
    if (d.mailboxList) st.mailboxes = d.mailboxes;
    else for (const m of d.mailboxes) st.mailboxes = st.mailboxes.map((x) => (x.id === m.id ? m : x));
    if (st.mailbox) st.mailbox = st.mailboxes.find((m) => m.id === st.mailbox!.id) ?? st.mailbox;
    renderMailboxes();
    const mine = d.changes.filter((c) => c.mailbox === st.mailbox?.id);
    let reload = mine.some((c) => c.type !== 'flags');
    for (const c of mine.filter((c) => c.type === 'flags')) {
      const it = st.items.find((x) => x.uid === c.uid);
      if (it && !it.thread) it.flags = c.flags ?? it.flags;
      else if (it) reload = true;
    }
    if (mine.length && !reload) renderList();
    const arrived = d.changes.filter((c) => c.type === 'add' && c.flags && !isFlag(c.flags, '\\Seen') && st.mailboxes.find((m) => m.id === c.mailbox)?.name === 'Inbox');
    if (arrived.length) notify(arrived.length === 1 ? 'New message' : `${arrived.length} new messages`);
    if (reload) {
      clearTimeout(reloadTimer);
      reloadTimer = window.setTimeout(() => void act(loadList), 100);
    }
  });
}

async function route(hash: string): Promise<void> {
  if (!st.init) {
    st.init = await call<Init>('init');
    st.mailboxes = st.init.mailboxes;
    document.body.classList.add('app');
    show(
      h('div', { id: 'webmail' },
        h('nav', { id: 'mailboxes', 'aria-label': 'Mailboxes' }, h('button', { type: 'button', id: 'compose-button', class: 'primary', title: 'Compose (c)', onclick: () => newMessage() }, 'Compose'), el.mailboxes),
        h('section', { id: 'list-pane' }, toolbar(), el.list, el.pager),
        el.reader,
      ),
    );
    renderReader();
    document.addEventListener('keydown', onKey);
    listen();
  }
  const m = /^m\/(\d+)/.exec(hash);
  await selectMailbox(m ? Number(m[1]) : -1);
}

start({ title: 'Postern webmail', username: true, nav: [], route: (hash) => route(hash) });
