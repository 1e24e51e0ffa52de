// A few helpers for the admin and account pages: element construction, calls to the JSON API
// with the CSRF token, login, messages and hash-based navigation.

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

/** Creates an element; attributes starting with "on" are event listeners. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | Child, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs && typeof attrs === 'object' && !(attrs instanceof Node) && !Array.isArray(attrs)) {
    for (const [k, v] of Object.entries(attrs)) {
      if (typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else if (v !== undefined && v !== false) el.setAttribute(k, String(v));
    }
  } else children.unshift(attrs as Child);
  append(el, children);
  return el;
}

function append(el: Node, c: Child): void {
  if (c === null || c === undefined || c === false) return;
  if (Array.isArray(c)) c.forEach((x) => append(el, x));
  else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
}

let csrf = '';
let onLoggedOut: () => void = () => location.reload();

export class APIError extends Error {}

/** Calls an API method; the answer's "error" becomes an exception. */
export async function call<T = unknown>(method: string, args: Record<string, unknown> = {}): Promise<T> {
  const r = await fetch(`api/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Postern-CSRF': csrf },
    body: JSON.stringify(args),
    credentials: 'same-origin',
  });
  const v = (await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }))) as T & { error?: string };
  if (r.status === 401 && method !== 'login') onLoggedOut();
  if (!r.ok) throw new APIError(v.error ?? `${r.status} ${r.statusText}`);
  return v;
}

/**
 * Sends a file as the body of an API call, reporting upload progress (0..1) and each line of
 * JSON the server writes back while it works.
 */
export function upload(method: string, file: Blob, onUpload: (fraction: number) => void, onLine: (v: Record<string, unknown>) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    let seen = 0;
    let failed: unknown;
    const lines = () => {
      const text = x.responseText;
      const end = text.lastIndexOf('\n') + 1;
      for (const l of text.slice(seen, end).split('\n')) if (l.trim()) onLine(JSON.parse(l) as Record<string, unknown>);
      seen = Math.max(seen, end);
    };
    x.open('POST', `api/${method}`);
    x.setRequestHeader('X-Postern-CSRF', csrf);
    x.setRequestHeader('Content-Type', 'application/octet-stream');
    x.upload.onprogress = (e) => e.lengthComputable && onUpload(e.loaded / e.total);
    x.onprogress = () => {
      try {
        lines();
      } catch (e) {
        failed ??= e;
      }
    };
    x.onload = () => {
      if (x.status !== 200) {
        let msg = `${x.status} ${x.statusText}`;
        try {
          msg = (JSON.parse(x.responseText) as { error: string }).error;
        } catch {
          // Not JSON: keep the status line.
        }
        return reject(new APIError(msg));
      }
      try {
        lines();
      } catch (e) {
        failed ??= e;
      }
      if (failed) reject(failed);
      else resolve();
    };
    x.onerror = () => reject(new APIError('upload failed'));
    x.send(file);
  });
}

/** Shows a message at the top of the page; errors stay until the next action. */
export function notify(text: string, error = false): void {
  const bar = document.getElementById('notice')!;
  bar.textContent = text;
  bar.className = error ? 'error' : 'ok';
  bar.hidden = false;
  if (!error) setTimeout(() => bar.textContent === text && (bar.hidden = true), 4000);
}

/** Runs an action from a button or form, showing its failure. */
export async function act(f: () => Promise<unknown>, success?: string): Promise<void> {
  document.getElementById('notice')!.hidden = true;
  try {
    await f();
    if (success) notify(success);
  } catch (e) {
    notify((e as Error).message, true);
  }
}

/** A form whose inputs' values are passed to submit by name. */
export function form(attrs: Attrs, fields: Child[], submit: (values: Record<string, string>, f: HTMLFormElement) => Promise<unknown>): HTMLFormElement {
  const f = h('form', attrs, fields);
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    const values: Record<string, string> = {};
    for (const el of Array.from(f.elements)) {
      const i = el as HTMLInputElement;
      if (i.name) values[i.name] = i.value;
    }
    const button = f.querySelector('button[type=submit]') as HTMLButtonElement | null;
    if (button) button.disabled = true;
    void act(() => submit(values, f)).finally(() => button && (button.disabled = false));
  });
  return f;
}

export function field(label: string, input: HTMLElement): HTMLLabelElement {
  return h('label', h('span', label), input);
}

export function button(text: string, onclick: () => Promise<unknown> | void, attrs: Attrs = {}): HTMLButtonElement {
  return h('button', { type: 'button', ...attrs, onclick: () => void act(async () => onclick()) }, text);
}

export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do {
    n /= 1024;
    i++;
  } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatTime(ms: number | null): string {
  return ms ? new Date(ms).toLocaleString() : '';
}

/** Replaces the content of the main area. */
export function show(...content: Child[]): void {
  const main = document.getElementById('main')!;
  main.replaceChildren();
  append(main, content);
}

export interface AppOptions {
  title: string;
  /** Login asks for an email address too. */
  username: boolean;
  nav: [string, string][];
  /** Renders the page for the location hash (without "#"). */
  route(hash: string, session: { account: string; loginAddress: string }): Promise<void>;
}

/** Starts an application: login when needed, then pages by location hash. */
export function start(o: AppOptions): void {
  let session: { account: string; loginAddress: string } | undefined;
  const header = document.getElementById('header')!;
  const render = async () => {
    if (!session) return;
    try {
      await o.route(location.hash.replace(/^#/, ''), session);
    } catch (e) {
      if (!(e instanceof APIError && !session)) show(h('p', { class: 'error' }, (e as Error).message));
    }
  };
  const loggedIn = (s: { csrf: string; account: string; loginAddress: string }) => {
    csrf = s.csrf;
    session = s;
    header.replaceChildren(
      h('h1', o.title),
      h('nav', ...o.nav.map(([text, href]) => h('a', { href }, text)), h('span', { class: 'who' }, s.loginAddress), button('Log out', async () => {
        await call('logout');
        location.hash = '';
        location.reload();
      })),
    );
    void render();
  };
  const login = () => {
    session = undefined;
    header.replaceChildren(h('h1', o.title));
    show(
      form({ class: 'login', id: 'login' }, [
        h('h2', 'Log in'),
        o.username && field('Email address', h('input', { name: 'username', type: 'email', autocomplete: 'username', required: true, autofocus: true })),
        field('Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, autofocus: !o.username })),
        h('button', { type: 'submit' }, 'Log in'),
      ], async (v) => loggedIn(await call('login', { username: v.username ?? '', password: v.password }))),
    );
  };
  onLoggedOut = login;
  window.addEventListener('hashchange', () => void render());
  void fetch('api/session', { credentials: 'same-origin' }).then(async (r) => (r.ok ? loggedIn(await r.json()) : login()));
}
