// Long-lived private keys for the host name's ACME certificates. A DANE TLSA record of type
// 3 1 1 (RFC 7672 3.1.1) pins the public key of the SMTP server's certificate; keeping the key
// across renewals keeps the record valid.
import fs from 'node:fs';
import path from 'node:path';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { domainToASCII } from 'node:url';
import type { Config } from '../config/load.js';
import type { StaticConfig } from '../config/static.js';
import { writeFileAtomic } from '../config/edit.js';
import { generateKey, keyType, parseCertFile, type KeyType } from './manager.js';

export const hostKeyTypes: KeyType[] = ['ecdsap256', 'rsa2048'];

export interface EnsuredKey {
  listener: string;
  hostname: string;
  type: KeyType;
  /** Relative to the config directory. */
  file: string;
  source: 'configured' | 'existing file' | 'acme certificate' | 'generated';
}

/**
 * Makes sure each listener with ACME has an RSA 2048 and an ECDSA P-256 host key, written to
 * hostkeys/ in the config directory when missing: the key of a certificate already obtained when
 * there is one, so its TLSA records stay valid, else a new key. Returns every key and where it
 * came from; keys not yet in HostPrivateKeyFiles must be added there by the caller.
 */
export function ensureHostKeys(configDir: string, dataDir: string, config: StaticConfig): EnsuredKey[] {
  const out: EnsuredKey[] = [];
  for (const [name, l] of Object.entries(config.Listeners)) {
    if (!l.TLS?.ACME) continue;
    const hostname = (domainToASCII(l.Hostname ?? config.Hostname) || config.Hostname).toLowerCase();
    const have = new Map<KeyType, string>();
    for (const f of l.TLS.HostPrivateKeyFiles) {
      // A configured file that does not exist yet is made below, when it has the usual name.
      if (!fs.existsSync(path.resolve(configDir, f))) continue;
      const t = keyType(createPrivateKey(fs.readFileSync(path.resolve(configDir, f))));
      if (t) have.set(t, f);
    }
    for (const type of hostKeyTypes) {
      const configured = have.get(type);
      if (configured) {
        out.push({ listener: name, hostname, type, file: configured, source: 'configured' });
        continue;
      }
      const file = path.join('hostkeys', `${hostname}.${type}.pem`);
      const abs = path.join(configDir, file);
      let source: EnsuredKey['source'] = 'existing file';
      if (!fs.existsSync(abs)) {
        let pem: string | undefined;
        try {
          pem = parseCertFile(fs.readFileSync(path.join(dataDir, 'acme', l.TLS.ACME, 'certs', `${hostname}.${type}.pem`), 'utf8')).key;
          source = 'acme certificate';
        } catch {
          pem = generateKey(type);
          source = 'generated';
        }
        fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o700 });
        writeFileAtomic(abs, pem, 0o600);
      }
      out.push({ listener: name, hostname, type, file, source });
    }
  }
  return out;
}

/** TLSA records (3 1 1) for the host keys of the listeners serving SMTP with ACME. */
export function hostKeyTLSA(config: Config): { name: string; value: string; port: number }[] {
  const out: { name: string; value: string; port: number }[] = [];
  for (const l of Object.values(config.static_.Listeners)) {
    if (!l.TLS?.ACME || !l.SMTP.Enabled) continue;
    const host = (domainToASCII(l.Hostname ?? config.static_.Hostname) || config.static_.Hostname).toLowerCase();
    for (const f of l.TLS.HostPrivateKeyFiles) {
      const key = createPrivateKey(fs.readFileSync(config.resolve(f)));
      // Selector 1 (SPKI), matching type 1 (SHA-256): the key alone, whatever certificate carries it.
      const value = `3 1 1 ${createHash('sha256').update(createPublicKey(key).export({ type: 'spki', format: 'der' })).digest('hex')}`;
      const name = `_${l.SMTP.Port}._tcp.${host}.`;
      if (!out.some((r) => r.name === name && r.value === value)) out.push({ name, value, port: l.SMTP.Port });
    }
  }
  return out;
}
