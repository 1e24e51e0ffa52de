// localserve: a local instance for developing software that sends email. On first start
// it writes its configuration, a self-signed certificate and an account to a directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { selfSigned } from '../tls/selfsigned.js';
import { writeFileAtomic } from '../config/edit.js';
import { deriveCredentials } from '../sasl/credentials.js';
import { Store } from '../store/store.js';

export const localserveAccount = 'postern';
export const localserveAddress = 'postern@localhost';
export const localservePassword = 'posternpostern';
export const localserveAdminPassword = 'posternadmin';

/** Standard ports plus 1000. */
export const localservePorts = { SMTP: 1025, Submission: 1587, Submissions: 1465, IMAP: 1143, IMAPS: 1993, HTTP: 1080, HTTPS: 1443 };

export function defaultLocalserveDir(): string {
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'postern-localserve');
}

export function localserveConfigFile(dir: string): string {
  return path.join(dir, 'config', 'postern.conf');
}

/** Web services: all applications on one plain HTTP and one HTTPS port; metrics on the plain one. */
function webConfig(http: number, https: number): string {
  const svc = (name: string, port: number, extra = '') => `    ${name}:\n      Enabled: true\n      Port: ${port}\n${extra}`;
  return [
    ...['Account', 'Admin', 'Webmail', 'WebAPI'].flatMap((k) => [svc(`${k}HTTP`, http), svc(`${k}HTTPS`, https)]),
    svc('MetricsHTTP', http),
    svc('AutoconfigHTTPS', https),
    svc('MTASTSHTTPS', https),
  ].join('');
}

function staticConfig(ips: string[]): string {
  const p = localservePorts;
  return `# Configuration of a Postern localserve instance, written at its first start.
# See "postern config describe-static" for all fields.
Hostname: localhost
DataDir: ../data
LogLevel: info
AdminPasswordFile: adminpasswd
Postmaster:
  Account: ${localserveAccount}
  Mailbox: Inbox
Listeners:
  local:
    IPs:
${ips.map((ip) => `      - "${ip}"`).join('\n')}
    TLS:
      KeyCerts:
        - CertFile: localhost.crt
          KeyFile: localhost.key
    SMTP:
      Enabled: true
      Port: ${p.SMTP}
    Submission:
      Enabled: true
      Port: ${p.Submission}
    Submissions:
      Enabled: true
      Port: ${p.Submissions}
    IMAP:
      Enabled: true
      Port: ${p.IMAP}
    IMAPS:
      Enabled: true
      Port: ${p.IMAPS}
${webConfig(p.HTTP, p.HTTPS)}`;
}

const domainsConfig = `# Domains and accounts of a Postern localserve instance.
# In localserve, mail to any address is accepted and delivered to the first account.
Domains:
  localhost:
    LocalpartCatchallSeparator: "+"
Accounts:
  ${localserveAccount}:
    Domain: localhost
    Destinations:
      ${localserveAddress}: {}
`;

/** Creates the localserve directory if it does not exist yet. Returns whether it did. */
export async function initLocalserve(dir: string, ips: string[]): Promise<boolean> {
  const configFile = localserveConfigFile(dir);
  if (fs.existsSync(configFile)) return false;
  const configDir = path.dirname(configFile);
  fs.mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const { keyPEM, certPEM } = selfSigned(['localhost'], ['127.0.0.1', '::1', ...ips.filter((ip) => ip !== '127.0.0.1' && ip !== '::1')]);
  writeFileAtomic(path.join(configDir, 'localhost.key'), keyPEM, 0o600);
  writeFileAtomic(path.join(configDir, 'localhost.crt'), certPEM);
  writeFileAtomic(path.join(configDir, 'adminpasswd'), bcrypt.hashSync(localserveAdminPassword, 10) + '\n', 0o600);
  writeFileAtomic(path.join(configDir, 'domains.conf'), domainsConfig);
  const store = new Store(path.join(dir, 'data'));
  try {
    store.account(localserveAccount).setCredentials(await deriveCredentials(localservePassword));
  } finally {
    store.close();
  }
  // Written last: its presence marks a complete initialization.
  writeFileAtomic(configFile, staticConfig(ips));
  return true;
}
