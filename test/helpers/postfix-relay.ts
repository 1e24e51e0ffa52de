// A private Postfix instance that relays all mail it accepts from loopback to one given SMTP
// server (host:port), for testing a server as Postfix's next hop. Like test/helpers/postfix.ts it
// has its own config, queue and log in a temp directory and never touches the system instance:
// there is no local delivery, no DNS (the next hop is an IP literal) and no other destination.
// Needs the Debian package postfix and root (Postfix starts as root).
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { retryWhenPortTaken } from './ports.js';

export { postfixUnavailable } from './postfix.js';

const run = promisify(execFile);

export interface RelayOptions {
  /** Next hop: every message goes to [host]:port. */
  host: string;
  port: number;
  /** Name in Postfix's EHLO. Default mx.relay.test. */
  hostname?: string;
  /** TLS to the next hop: "encrypt" requires it (without checking the certificate), "may" uses it when offered. Default "may". */
  tls?: 'none' | 'may' | 'encrypt';
}

export interface PostfixRelay {
  /** Postfix's own SMTP port on 127.0.0.1, accepting mail from loopback for any domain. */
  port: number;
  dir: string;
  /** Waits until the log shows the message with this Message-ID was relayed, and returns the log lines about it. */
  relayed(messageId: string, timeoutMs?: number): Promise<string>;
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

/** Starts the relay; again on another port when the chosen one was taken before Postfix bound it. */
export function startPostfixRelay(o: RelayOptions): Promise<PostfixRelay> {
  return retryWhenPortTaken(() => startPostfixRelayOnce(o));
}

async function startPostfixRelayOnce(o: RelayOptions): Promise<PostfixRelay> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-postfix-relay-'));
  await chmod(dir, 0o755);
  const conf = join(dir, 'conf');
  for (const d of [conf, join(dir, 'spool'), join(dir, 'data'), join(dir, 'log')]) await mkdir(d, { mode: 0o755 });
  const id = async (flag: string) => Number((await run('id', [flag, 'postfix'])).stdout.trim());
  await chown(join(dir, 'data'), await id('-u'), await id('-g'));
  const port = await freePort();
  const nextHop = `[${o.host}]:${o.port}`;

  const main = [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/spool`,
    `data_directory = ${dir}/data`,
    `maillog_file = ${dir}/log/postfix.log`,
    `maillog_file_prefixes = ${dir}/log`,
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    `myhostname = ${o.hostname ?? 'mx.relay.test'}`,
    'mydomain = relay.test',
    'myorigin = $mydomain',
    'mydestination =',
    'local_recipient_maps =',
    'alias_maps =',
    'alias_database =',
    'biff = no',
    'smtpd_peername_lookup = no',
    // Everything goes to the one next hop, found without DNS.
    `relayhost = ${nextHop}`,
    'default_transport = smtp',
    'relay_transport = smtp',
    'smtp_dns_support_level = disabled',
    'smtp_host_lookup = native',
    `smtp_tls_security_level = ${o.tls ?? 'may'}`,
    'smtp_tls_loglevel = 1',
    'smtpd_relay_restrictions = permit_mynetworks, reject',
    'local_header_rewrite_clients =',
    'smtputf8_enable = yes',
    // Retry soon if the next hop is briefly unavailable; tests wait only seconds.
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
  ];
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
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ];
  await writeFile(join(conf, 'main.cf'), main.join('\n') + '\n');
  await writeFile(join(conf, 'master.cf'), master.join('\n') + '\n');

  const log = () => readFile(join(dir, 'log', 'postfix.log'), 'utf8').catch(() => '');
  const stop = async () => {
    const pid = Number((await readFile(join(dir, 'spool', 'pid', 'master.pid'), 'utf8').catch(() => '')).trim());
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
    async relayed(messageId, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = await log();
        // cleanup logs "QUEUEID: message-id=<...>"; smtp logs "QUEUEID: to=<...>, relay=..., status=sent".
        const qid = new RegExp(`\\s([0-9A-F]{6,}): message-id=<?${messageId.replace(/[<>]/g, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>?`).exec(text)?.[1];
        if (qid) {
          const lines = text.split('\n').filter((l) => l.includes(`${qid}:`));
          if (lines.some((l) => /status=sent/.test(l))) return lines.join('\n');
          const bounced = lines.find((l) => /status=bounced/.test(l));
          if (bounced) throw new Error(`postfix bounced the message: ${bounced}\n${text}`);
        }
        if (Date.now() > deadline) throw new Error(`message ${messageId} not relayed after ${timeoutMs} ms\n${text}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
  };
}
