// Edits of domains.conf that keep the comments and layout of everything left untouched.
// Shared by the CLI and the web admin. The result is validated before it replaces the file.
import fs from 'node:fs';
import path from 'node:path';
import { isMap, parseDocument, type Document } from 'yaml';
import { ConfigInvalid, parseDomains, parseStatic } from './load.js';
import { normalizeDomain, splitAddress, checkAccountName, type DomainsConfig, type Ruleset } from './domains.js';

export class EditError extends Error {}

/** Writes a file so that readers see either the old or the new contents, durably. */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

type Editor = (doc: Document, cfg: DomainsConfig) => void;

/** Applies an edit to domains.conf next to the given postern.conf. */
export function editDomains(staticFile: string, edit: Editor): DomainsConfig {
  const dir = path.dirname(path.resolve(staticFile));
  const file = path.join(dir, 'domains.conf');
  const text = fs.readFileSync(file, 'utf8');
  const st = parseStatic(staticFile, fs.readFileSync(staticFile, 'utf8'));
  const cur = parseDomains(file, text, st.config?.Postmaster);
  if (!cur.config) throw new ConfigInvalid(cur.errors);
  const doc = parseDocument(text);
  for (const key of ['Domains', 'Accounts']) {
    if (!isMap(doc.get(key))) doc.set(key, doc.createNode({}));
  }
  edit(doc, cur.config);
  const out = String(doc);
  const next = parseDomains(file, out, st.config?.Postmaster);
  if (!next.config) throw new ConfigInvalid(next.errors);
  writeFileAtomic(file, out);
  return next.config;
}

function parseAddr(address: string): { localpart: string; domain: string } {
  const at = splitAddress(address);
  const domain = at && normalizeDomain(at.domain);
  if (!at || !domain || at.localpart.includes('@')) throw new EditError(`invalid address ${address}`);
  return { localpart: at.localpart, domain };
}

function findDestination(cfg: DomainsConfig, address: string): { account: string; key: string } | undefined {
  const { localpart, domain } = parseAddr(address);
  const want = `${localpart.toLowerCase()}@${domain}`;
  for (const [account, acc] of Object.entries(cfg.Accounts)) {
    for (const key of Object.keys(acc.Destinations)) {
      const at = splitAddress(key);
      const full = at ? `${at.localpart.toLowerCase()}@${normalizeDomain(at.domain)}` : `${key.toLowerCase()}@${acc.Domain}`;
      if (full === want) return { account, key };
    }
  }
  return undefined;
}

export function addDomain(staticFile: string, domain: string, account?: string, localpart?: string): void {
  const d = normalizeDomain(domain);
  if (!d) throw new EditError(`invalid domain ${domain}`);
  editDomains(staticFile, (doc, cfg) => {
    if (cfg.Domains[d]) throw new EditError(`domain ${d} already exists`);
    doc.setIn(['Domains', d], doc.createNode({ LocalpartCatchallSeparator: '+' }));
    if (account) {
      const address = `${localpart ?? account}@${d}`;
      if (cfg.Accounts[account]) doc.setIn(['Accounts', account, 'Destinations', address], doc.createNode({}));
      else newAccount(doc, account, address);
    }
  });
}

export function rmDomain(staticFile: string, domain: string): void {
  const d = normalizeDomain(domain);
  editDomains(staticFile, (doc, cfg) => {
    if (!d || !cfg.Domains[d]) throw new EditError(`domain ${domain} does not exist`);
    for (const [name, acc] of Object.entries(cfg.Accounts)) {
      const uses = acc.Domain === d || Object.keys(acc.Destinations).some((k) => splitAddress(k)?.domain === d);
      if (uses) throw new EditError(`domain ${d} is still used by account ${name}; remove its addresses first`);
    }
    doc.deleteIn(['Domains', d]);
  });
}

function newAccount(doc: Document, account: string, address: string): void {
  const msg = checkAccountName(account);
  if (msg) throw new EditError(msg);
  const { domain } = parseAddr(address);
  doc.setIn(['Accounts', account], doc.createNode({ Domain: domain, Destinations: { [address]: {} } }));
}

export function addAccount(staticFile: string, account: string, address: string): void {
  editDomains(staticFile, (doc, cfg) => {
    if (cfg.Accounts[account]) throw new EditError(`account ${account} already exists`);
    if (findDestination(cfg, address)) throw new EditError(`address ${address} already in use`);
    newAccount(doc, account, address);
  });
}

export function rmAccount(staticFile: string, account: string): void {
  editDomains(staticFile, (doc, cfg) => {
    if (!cfg.Accounts[account]) throw new EditError(`account ${account} does not exist`);
    doc.deleteIn(['Accounts', account]);
  });
}

export function addAddress(staticFile: string, address: string, account: string): void {
  editDomains(staticFile, (doc, cfg) => {
    if (!cfg.Accounts[account]) throw new EditError(`account ${account} does not exist`);
    if (!address.startsWith('@') && findDestination(cfg, address)) throw new EditError(`address ${address} already in use`);
    doc.setIn(['Accounts', account, 'Destinations', address], doc.createNode({}));
  });
}

export function rmAddress(staticFile: string, address: string): void {
  editDomains(staticFile, (doc, cfg) => {
    let found: { account: string; key: string } | undefined;
    if (address.startsWith('@')) {
      const acc = Object.entries(cfg.Accounts).find(([, a]) => a.Destinations[address]);
      found = acc && { account: acc[0], key: address };
    } else found = findDestination(cfg, address);
    if (!found) throw new EditError(`address ${address} not configured`);
    if (Object.keys(cfg.Accounts[found.account]!.Destinations).length === 1) {
      throw new EditError(`address ${address} is the last of account ${found.account}; remove the account instead`);
    }
    doc.deleteIn(['Accounts', found.account, 'Destinations', found.key]);
  });
}

/** Registers a TLS client certificate's key for SASL EXTERNAL logins as the address. */
export function addTLSPublicKey(staticFile: string, address: string, fingerprint: string, name?: string): string {
  let account = '';
  editDomains(staticFile, (doc, cfg) => {
    const found = findDestination(cfg, address);
    if (!found) throw new EditError(`address ${address} not configured`);
    account = found.account;
    const list = cfg.Accounts[account]!.TLSPublicKeys;
    doc.setIn(['Accounts', account, 'TLSPublicKeys'], doc.createNode([...list, { ...(name ? { Name: name } : {}), Fingerprint: fingerprint, LoginAddress: address }]));
  });
  return account;
}

export function rmTLSPublicKey(staticFile: string, fingerprint: string): void {
  editDomains(staticFile, (doc, cfg) => {
    const hit = Object.entries(cfg.Accounts).find(([, a]) => a.TLSPublicKeys.some((k) => k.Fingerprint === fingerprint));
    if (!hit) throw new EditError(`no key with fingerprint ${fingerprint}`);
    const [account, acc] = hit;
    const rest = acc.TLSPublicKeys.filter((k) => k.Fingerprint !== fingerprint);
    if (rest.length) doc.setIn(['Accounts', account, 'TLSPublicKeys'], doc.createNode(rest));
    else doc.deleteIn(['Accounts', account, 'TLSPublicKeys']);
  });
}

/** Sets the quota of an account in bytes; 0 removes the limit. */
export function setQuota(staticFile: string, account: string, bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new EditError('quota must be a whole number of bytes, 0 for no limit');
  editDomains(staticFile, (doc, cfg) => {
    if (!cfg.Accounts[account]) throw new EditError(`account ${account} does not exist`);
    if (bytes === 0) doc.deleteIn(['Accounts', account, 'QuotaMessageSize']);
    else doc.setIn(['Accounts', account, 'QuotaMessageSize'], bytes);
  });
}

/** Replaces the delivery rules of one destination of an account; the key is as written in domains.conf. */
export function setRulesets(staticFile: string, account: string, destination: string, rulesets: Ruleset[]): void {
  editDomains(staticFile, (doc, cfg) => {
    const dest = cfg.Accounts[account]?.Destinations[destination];
    if (!dest) throw new EditError(`address ${destination} is not a destination of account ${account}`);
    // Only the fields a rule uses are written, so the file stays as short as hand-written.
    const clean = rulesets.map((r) =>
      Object.fromEntries(Object.entries(r).filter(([k, v]) => v !== undefined && v !== '' && !(k === 'HeadersRegexp' && Object.keys(v as object).length === 0))),
    );
    const node = doc.getIn(['Accounts', account, 'Destinations', destination]);
    if (!isMap(node)) doc.setIn(['Accounts', account, 'Destinations', destination], doc.createNode({}));
    else if (node.flow && clean.length) node.flow = false;
    if (clean.length === 0) doc.deleteIn(['Accounts', account, 'Destinations', destination, 'Rulesets']);
    else doc.setIn(['Accounts', account, 'Destinations', destination, 'Rulesets'], doc.createNode(clean));
  });
}

export interface WebhookSettings {
  /** Absent or null: no webhook. */
  outgoing?: { URL: string; Authorization?: string; Events?: string[] } | null;
  incoming?: { URL: string; Authorization?: string } | null;
  fromIDLoginAddresses?: string[];
}

/** Sets the webhooks and unique-MAIL-FROM login addresses of an account, as on its account page. */
export function setWebhooks(staticFile: string, account: string, w: WebhookSettings): void {
  editDomains(staticFile, (doc, cfg) => {
    if (!cfg.Accounts[account]) throw new EditError(`no account ${account}`);
    const at = (k: string) => ['Accounts', account, k];
    const node = doc.getIn(['Accounts', account]);
    if (isMap(node) && node.flow) node.flow = false;
    // Only fields with a value are written, so the file stays as short as hand-written.
    const clean = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0)));
    if (w.outgoing?.URL) doc.setIn(at('OutgoingWebhook'), doc.createNode(clean(w.outgoing)));
    else doc.deleteIn(at('OutgoingWebhook'));
    if (w.incoming?.URL) doc.setIn(at('IncomingWebhook'), doc.createNode(clean(w.incoming)));
    else doc.deleteIn(at('IncomingWebhook'));
    const ids = (w.fromIDLoginAddresses ?? []).map((a) => a.trim()).filter((a) => a);
    if (ids.length) doc.setIn(at('FromIDLoginAddresses'), doc.createNode(ids));
    else doc.deleteIn(at('FromIDLoginAddresses'));
  });
}
