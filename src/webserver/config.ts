// Edits of the web server configuration in domains.conf, for the admin pages. The whole list of
// handlers is replaced at once; domains.conf validation checks it before the file is written.
import { editDomains, EditError } from '../config/edit.js';

/** Fields left out when they have their default value, so the file stays as short as written by hand. */
function clean(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clean);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined || x === null || x === false) continue;
    if (typeof x === 'object' && !Array.isArray(x) && Object.keys(x).length === 0 && k === 'ResponseHeaders') continue;
    out[k] = clean(x);
  }
  return out;
}

export function setWebserverConfig(staticFile: string, redirects: unknown, handlers: unknown): void {
  if (typeof redirects !== 'object' || redirects === null || Array.isArray(redirects)) throw new EditError('domain redirects must be an object of domain to domain');
  if (!Array.isArray(handlers) || handlers.some((h) => typeof h !== 'object' || h === null || Array.isArray(h))) throw new EditError('handlers must be a list of objects');
  editDomains(staticFile, (doc) => {
    for (const [key, value] of [
      ['WebDomainRedirects', redirects],
      ['WebHandlers', clean(handlers)],
    ] as const) {
      const empty = Array.isArray(value) ? value.length === 0 : Object.keys(value as object).length === 0;
      if (empty) doc.delete(key);
      else doc.set(key, doc.createNode(value));
    }
  });
}
