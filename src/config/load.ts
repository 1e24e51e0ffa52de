// Loading, checking and live reloading of postern.conf and domains.conf.
import { EventEmitter } from 'node:events';
import { createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { Positions, validate, type ConfigError } from './schema.js';
import { staticSpec, type StaticConfig } from './static.js';
import { AddressIndex, checkWebConfig, domainsSpec, splitAddress, normalizeDomain, type DomainsConfig } from './domains.js';
import { Log } from '../log/log.js';

export class ConfigInvalid extends Error {
  constructor(readonly errors: ConfigError[]) {
    super(`invalid configuration:\n${errors.map((e) => `${e.file}:${e.line}: ${e.path ? e.path + ': ' : ''}${e.message}`).join('\n')}`);
  }
}

function parseFile(file: string, text: string) {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: false });
  return { doc, pos: new Positions(file, lc) };
}

export function parseStatic(file: string, text: string): { config?: StaticConfig; errors: ConfigError[] } {
  const { doc, pos } = parseFile(file, text);
  const errors: ConfigError[] = [];
  const config = validate(doc, staticSpec, pos, errors) as StaticConfig | undefined;
  if (config && errors.length === 0) {
    const ports = new Map<string, string>();
    for (const [name, l] of Object.entries(config.Listeners)) {
      const lpath = `Listeners.${name}`;
      const services = [l.SMTP, l.Submission, l.Submissions, l.IMAP, l.IMAPS];
      const names = ['SMTP', 'Submission', 'Submissions', 'IMAP', 'IMAPS'];
      services.forEach((s, i) => {
        if (!s.Enabled) return;
        for (const ip of l.IPs) {
          const k = `${ip} ${s.Port}`;
          const other = ports.get(k);
          if (other) errors.push(pos.error(`${lpath}.${names[i]}.Port`, `port ${s.Port} on ${ip} also used by ${other}`));
          ports.set(k, `${lpath}.${names[i]}`);
        }
      });
      const needsTLS = l.Submissions.Enabled || l.IMAPS.Enabled;
      if (needsTLS && !l.TLS?.KeyCerts.length && !l.TLS?.ACME) errors.push(pos.error(lpath, 'Submissions and IMAPS need TLS.KeyCerts or TLS.ACME'));
      if (l.TLS?.ACME && !config.ACME[l.TLS.ACME]) errors.push(pos.error(`${lpath}.TLS.ACME`, `no ACME provider ${l.TLS.ACME} in ACME`));
      if (l.IPs.length === 0) errors.push(pos.error(`${lpath}.IPs`, 'at least one IP needed'));
    }
    if (!normalizeDomain(config.Hostname)) errors.push(pos.error('Hostname', 'invalid host name'));
    if (config.CheckUpdates && !config.UpdatesName) errors.push(pos.error('CheckUpdates', 'CheckUpdates needs UpdatesName'));
  }
  return { config: errors.length ? undefined : config, errors };
}

export function parseDomains(
  file: string,
  text: string,
  postmaster?: { Account: string; Mailbox: string },
): { config?: DomainsConfig; errors: ConfigError[] } {
  const { doc, pos } = parseFile(file, text);
  const errors: ConfigError[] = [];
  const config = validate(doc, domainsSpec, pos, errors) as DomainsConfig | undefined;
  if (config && errors.length === 0) {
    const index = new AddressIndex(config, { Account: '', Mailbox: '' });
    const seen = new Map<string, string>();
    for (const [name, acc] of Object.entries(config.Accounts)) {
      const apath = `Accounts.${name}`;
      if (!config.Domains[acc.Domain]) errors.push(pos.error(`${apath}.Domain`, `domain ${acc.Domain} not configured in Domains`));
      for (const key of Object.keys(acc.Destinations)) {
        const dpath = `${apath}.Destinations.${key}`;
        const at = splitAddress(key);
        if (at && at.localpart === '' && key !== `@${at.domain}`) errors.push(pos.error(dpath, 'invalid address'));
        if (at && at.localpart.includes('@')) errors.push(pos.error(dpath, 'invalid address'));
        const domain = at ? at.domain : acc.Domain;
        if (at && normalizeDomain(domain) !== domain) {
          errors.push(pos.error(dpath, `domain must be written in lower-case Unicode form`));
          continue;
        }
        const canon = index.canonicalKey(key, acc.Domain);
        if (!canon) {
          errors.push(pos.error(dpath, `domain ${domain} not configured in Domains`));
          continue;
        }
        const sep = config.Domains[domain]?.LocalpartCatchallSeparator;
        if (sep && at && at.localpart.includes(sep)) errors.push(pos.error(dpath, `localpart contains the catch-all separator "${sep}"`));
        const other = seen.get(canon);
        if (other) errors.push(pos.error(dpath, `address also configured for account ${other}`));
        seen.set(canon, name);
      }
    }
    const fingerprints = new Map<string, string>();
    for (const [name, acc] of Object.entries(config.Accounts)) {
      acc.TLSPublicKeys.forEach((k, i) => {
        const kpath = `Accounts.${name}.TLSPublicKeys.${i}`;
        if (index.loginAccount(k.LoginAddress) !== name) errors.push(pos.error(`${kpath}.LoginAddress`, `${k.LoginAddress} is not an address of account ${name}`));
        const other = fingerprints.get(k.Fingerprint);
        if (other) errors.push(pos.error(`${kpath}.Fingerprint`, `key already registered for account ${other}`));
        fingerprints.set(k.Fingerprint, name);
      });
    }
    for (const [name, d] of Object.entries(config.Domains)) {
      for (const sel of d.DKIM.Sign) {
        if (!d.DKIM.Selectors[sel]) errors.push(pos.error(`Domains.${name}.DKIM.Sign`, `selector ${sel} not in Selectors`));
      }
      for (const [sel, s] of Object.entries(d.DKIM.Selectors)) {
        const kpath = `Domains.${name}.DKIM.Selectors.${sel}.PrivateKeyFile`;
        try {
          const key = createPrivateKey(fs.readFileSync(path.resolve(path.dirname(file), s.PrivateKeyFile)));
          if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ed25519') errors.push(pos.error(kpath, 'key must be RSA or Ed25519'));
        } catch (e) {
          errors.push(pos.error(kpath, `cannot use key: ${(e as Error).message}`));
        }
      }
    }
    for (const [name, d] of Object.entries(config.Domains)) {
      for (const [field, r] of [['DMARC', d.DMARC], ['TLSRPT', d.TLSRPT]] as const) {
        if (!r) continue;
        const rpath = `Domains.${name}.${field}`;
        if (!config.Accounts[r.Account]) errors.push(pos.error(`${rpath}.Account`, `account ${r.Account} not configured`));
        const canon = index.canonicalKey(`${r.Localpart}@${name}`, name);
        if (!canon || r.Localpart === '' || r.Localpart.includes('@')) errors.push(pos.error(`${rpath}.Localpart`, 'invalid localpart'));
        else if (seen.has(canon)) errors.push(pos.error(`${rpath}.Localpart`, `address also configured for account ${seen.get(canon)}`));
      }
    }
    checkWebConfig(config, index, (p, m) => errors.push(pos.error(p, m)));
    if (postmaster && !config.Accounts[postmaster.Account]) {
      errors.push({ file, line: 1, path: 'Accounts', message: `postmaster account ${postmaster.Account} (postern.conf Postmaster.Account) not configured` });
    }
  }
  return { config: errors.length ? undefined : config, errors };
}

function readText(file: string): string {
  return fs.readFileSync(file, 'utf8');
}

export interface ConfigFiles {
  staticFile: string;
  domainsFile: string;
}

export function configFiles(staticFile: string): ConfigFiles {
  const abs = path.resolve(staticFile);
  return { staticFile: abs, domainsFile: path.join(path.dirname(abs), 'domains.conf') };
}

/** Checks both files, returning every error found. */
export function testConfig(staticFile: string): ConfigError[] {
  const files = configFiles(staticFile);
  const errors: ConfigError[] = [];
  let text: string;
  try {
    text = readText(files.staticFile);
  } catch (e) {
    return [{ file: files.staticFile, line: 0, path: '', message: (e as Error).message }];
  }
  const s = parseStatic(files.staticFile, text);
  errors.push(...s.errors);
  try {
    text = readText(files.domainsFile);
  } catch (e) {
    return [...errors, { file: files.domainsFile, line: 0, path: '', message: (e as Error).message }];
  }
  errors.push(...parseDomains(files.domainsFile, text, s.config?.Postmaster).errors);
  return errors;
}

const log = Log.pkg('config');

/**
 * The loaded configuration. `domains` and `addresses` are replaced when domains.conf
 * changes; read them at each use instead of keeping references.
 */
export class Config extends EventEmitter {
  readonly dir: string;
  readonly dataDir: string;
  domains: DomainsConfig;
  addresses: AddressIndex;
  private watcher?: fs.FSWatcher;
  private lastText: string;
  private timer?: NodeJS.Timeout;

  constructor(
    readonly files: ConfigFiles,
    readonly static_: StaticConfig,
    domains: DomainsConfig,
    domainsText: string,
  ) {
    super();
    this.dir = path.dirname(files.staticFile);
    this.dataDir = path.resolve(this.dir, static_.DataDir);
    this.domains = domains;
    this.addresses = new AddressIndex(domains, static_.Postmaster);
    this.lastText = domainsText;
  }

  static load(staticFile: string): Config {
    const files = configFiles(staticFile);
    const s = parseStatic(files.staticFile, readText(files.staticFile));
    if (!s.config) throw new ConfigInvalid(s.errors);
    const text = readText(files.domainsFile);
    const d = parseDomains(files.domainsFile, text, s.config.Postmaster);
    if (!d.config) throw new ConfigInvalid(d.errors);
    return new Config(files, s.config, d.config, text);
  }

  /** Path relative to the config directory, made absolute. */
  resolve(p: string): string {
    return path.resolve(this.dir, p);
  }

  /** Rereads domains.conf; keeps the current config if the file is invalid. */
  reload(): boolean {
    let text: string;
    try {
      text = readText(this.files.domainsFile);
    } catch (e) {
      log.error('reading domains.conf, keeping current configuration', e as Error);
      return false;
    }
    if (text === this.lastText) return true;
    const d = parseDomains(this.files.domainsFile, text, this.static_.Postmaster);
    if (!d.config) {
      for (const e of d.errors) log.error('invalid domains.conf, keeping current configuration', { file: e.file, line: e.line, field: e.path, error: e.message });
      this.lastText = text;
      return false;
    }
    this.lastText = text;
    this.domains = d.config;
    this.addresses = new AddressIndex(d.config, this.static_.Postmaster);
    log.info('domains.conf reloaded', { domains: Object.keys(d.config.Domains).length, accounts: Object.keys(d.config.Accounts).length });
    this.emit('reload');
    return true;
  }

  /** Watches the config directory: editors and our own edits replace the file by rename. */
  watch(): void {
    const name = path.basename(this.files.domainsFile);
    this.watcher = fs.watch(this.dir, (_event, f) => {
      if (f !== null && f !== name) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), 100);
    });
    this.watcher.on('error', (e) => log.error('watching config directory', e));
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
