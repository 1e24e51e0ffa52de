// A private Postfix instance for tests: its own config, queue, log and mail directories in a temp
// directory, listening on a free loopback port, delivering to Maildirs for one virtual domain.
// It never touches the system instance, and never sends mail anywhere: everything for other
// domains fails at once. Needs the Debian package postfix and root (Postfix starts as root).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { retryWhenPortTaken } from './ports.js';

const run = promisify(execFile);

/** Why Postfix cannot run here, or undefined when it can. */
export function postfixUnavailable(): string | undefined {
  if (!existsSync('/usr/sbin/postfix') || !existsSync('/usr/lib/postfix/sbin/master')) return 'postfix is not installed';
  if (process.getuid?.() !== 0) return 'postfix needs root';
  return undefined;
}

export interface PostfixOptions {
  /** The virtual domain delivered to Maildirs. */
  domain: string;
  /** Localparts with a mailbox; other recipients in the domain are refused at RCPT. */
  users: string[];
  tls?: { certPEM: string; keyPEM: string };
}

export interface Postfix {
  port: number;
  dir: string;
  /** Waits until a user's Maildir holds at least count messages and returns them all, in no order. */
  messages(user: string, count: number, timeoutMs?: number): Promise<Buffer[]>;
  /** The instance's log, for diagnosing failures. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => s.once('listening', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

// The nobody user owns the Maildirs; Postfix's virtual agent refuses to deliver as root.
const MAIL_UID = 65534;
const MAIL_GID = 65534;

/**
 * Starts a Postfix instance. The port is free when chosen but may be taken by another test before
 * Postfix binds it: then it starts again on another port.
 */
export function startPostfix(o: PostfixOptions): Promise<Postfix> {
  return retryWhenPortTaken(() => startPostfixOnce(o));
}

async function startPostfixOnce(o: PostfixOptions): Promise<Postfix> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-postfix-'));
  // Postfix wants its directories owned by root and not writable by others; nobody must reach the Maildirs.
  await chmod(dir, 0o755);
  const conf = join(dir, 'conf');
  const mail = join(dir, 'mail');
  for (const d of [conf, join(dir, 'spool'), join(dir, 'data'), join(dir, 'log'), mail]) await mkdir(d, { mode: 0o755 });
  await chown(mail, MAIL_UID, MAIL_GID);
  const id = async (flag: string) => Number((await run('id', [flag, 'postfix'])).stdout.trim());
  await chown(join(dir, 'data'), await id('-u'), await id('-g'));
  const port = await freePort();

  const main = [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/spool`,
    `data_directory = ${dir}/data`,
    `maillog_file = ${dir}/log/postfix.log`,
    `maillog_file_prefixes = ${dir}/log`,
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'myhostname = mx.postern.test',
    'mydomain = postern.test',
    'myorigin = $mydomain',
    'mydestination =',
    'local_recipient_maps =',
    'alias_maps =',
    'alias_database =',
    'relayhost =',
    'biff = no',
    // No DNS: peer names are not looked up and nothing is relayed.
    'smtpd_peername_lookup = no',
    'default_transport = error:no outbound delivery from this test instance',
    'relay_transport = error:no outbound delivery from this test instance',
    // Headers from loopback clients are not rewritten, so delivered messages can be compared.
    'local_header_rewrite_clients =',
    `virtual_mailbox_domains = ${o.domain}`,
    `virtual_mailbox_base = ${mail}`,
    `virtual_mailbox_maps = texthash:${conf}/vmailbox`,
    `virtual_uid_maps = static:${MAIL_UID}`,
    `virtual_gid_maps = static:${MAIL_GID}`,
    'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
    'smtputf8_enable = yes',
  ];
  if (o.tls) {
    await writeFile(join(conf, 'cert.pem'), o.tls.certPEM);
    await writeFile(join(conf, 'key.pem'), o.tls.keyPEM, { mode: 0o600 });
    main.push(`smtpd_tls_cert_file = ${conf}/cert.pem`, `smtpd_tls_key_file = ${conf}/key.pem`, 'smtpd_tls_security_level = may');
  }
  // Services as in Debian's master.cf, without chroot, and smtpd on our port only.
  const master = [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'tlsmgr unix - - n 1000? 1 tlsmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'proxywrite unix - - n - 1 proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'virtual unix - n n - - virtual',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ];
  await writeFile(join(conf, 'main.cf'), main.join('\n') + '\n');
  await writeFile(join(conf, 'master.cf'), master.join('\n') + '\n');
  await writeFile(join(conf, 'vmailbox'), o.users.map((u) => `${u}@${o.domain} ${o.domain}/${u}/\n`).join(''));

  const log = () => readFile(join(dir, 'log', 'postfix.log'), 'utf8').catch(() => '');
  const stop = async () => {
    const pidFile = join(dir, 'spool', 'pid', 'master.pid');
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    await run('postfix', ['-c', conf, 'stop']).catch(() => undefined);
    // Wait for this instance's master (found by its own pid file) to exit before removing its files.
    for (let i = 0; pid > 0 && i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await run('postfix', ['-c', conf, 'start'], { timeout: 30_000 });
  } catch (e) {
    const text = await log();
    await stop();
    throw new Error(`postfix did not start: ${(e as Error).message}\n${text}`);
  }
  // Wait until the master listens on the port.
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (i === 100) {
      await stop();
      throw new Error('postfix does not listen');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    port,
    dir,
    log,
    stop,
    async messages(user, count, timeoutMs = 15_000) {
      const newDir = join(mail, o.domain, user, 'new');
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const files = await readdir(newDir).catch(() => [] as string[]);
        if (files.length >= count) return Promise.all(files.map((f) => readFile(join(newDir, f))));
        if (Date.now() > deadline) throw new Error(`${files.length} of ${count} messages for ${user} after ${timeoutMs} ms\n${await log()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
  };
}
