// Starts Postern as a separate process for tests: localserve or serve, on free loopback
// ports, in a temporary directory. The process is the real command line program.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initLocalserve, localserveConfigFile } from '../../src/server/localserve.js';
import { selfSigned } from '../../src/tls/selfsigned.js';
import { deriveCredentials } from '../../src/sasl/credentials.js';
import { Store } from '../../src/store/store.js';
import { genEd25519, genRSA, txtRecord } from '../../src/dkim/keys.js';
import { startDNSServer, type DNSServer } from './dnsserver.js';
import { ctlCall, ctlPath } from '../../src/ctl/ctl.js';
import { retryWhenPortTaken } from './ports.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const mainTS = path.join(root, 'src/cli/main.ts');

export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
    ports.push((s.address() as net.AddressInfo).port);
  }
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export function tempDir(prefix = 'postern-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface Ports {
  smtp: number;
  submission: number;
  submissions: number;
  imap: number;
  imaps: number;
  /** Plain HTTP and HTTPS ports of the web services, when enabled. */
  http: number;
  https: number;
}

/** Runs the postern command line (from source) and returns its output. */
export function postern(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', mainTS, ...args], { cwd: root, env: { ...process.env, ...opts.env }, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end(opts.input ?? '');
  });
}

export class TestServer {
  proc?: ChildProcess;
  output = '';
  /** The DNS server the Postern process resolves with; tests add records to it. */
  dns!: DNSServer;
  /** DKIM TXT records of example.test's selectors, when started with dkim. */
  dkim: Record<string, string> = {};

  constructor(
    readonly dir: string,
    readonly configFile: string,
    readonly ports: Ports,
    readonly certPEM: string,
    private readonly args: string[],
  ) {}

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  async start(): Promise<void> {
    this.output = '';
    // POSTERN_CPUPROF=<dir>: V8 CPU profiles of each server run, for finding where benchmarks spend time.
    const proc = spawn(process.execPath, [...(process.env.POSTERN_CPUPROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.POSTERN_CPUPROF] : []), '--import', 'tsx', mainTS, ...this.args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, POSTERN_TEST_CLOCK: '1' } });
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        this.output += d.toString();
        if (this.output.includes('"postern started"')) resolve();
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
      proc.once('exit', (code) => reject(new Error(`server exited with ${code} before starting:\n${this.output}`)));
      setTimeout(() => reject(new Error(`server did not start:\n${this.output}`)), 30_000).unref();
    });
  }

  /** Stops with SIGTERM and waits for the exit. */
  async stop(): Promise<number | null> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return p?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    p.kill('SIGTERM');
    return exited;
  }

  /** Stops the server and its DNS server. */
  async close(): Promise<void> {
    await this.stop();
    await this.dns?.close();
  }

  /** Kills without any chance to clean up. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Sends a request to the running server's control socket. */
  ctl(cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
    return ctlCall(ctlPath(this.dataDir), cmd, args);
  }

  /** Moves the server's clock forward; returns its new time. */
  async advanceClock(ms: number): Promise<number> {
    return (await this.ctl('clock advance', { ms })) as number;
  }

  /** Value of a Prometheus metric with the given labels (0 when absent). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = (await this.ctl('metrics')) as string;
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
    }
    return 0;
  }

  /** Runs a postern command against this server's config. */
  cli(args: string[], input?: string) {
    return postern(['--config', this.configFile, ...args], { input });
  }
}

async function setPorts(configFile: string, ports: Ports): Promise<void> {
  let text = fs.readFileSync(configFile, 'utf8');
  const map: [string, number][] = [
    ['SMTP', ports.smtp],
    ['Submission', ports.submission],
    ['Submissions', ports.submissions],
    ['IMAP', ports.imap],
    ['IMAPS', ports.imaps],
    ...['Account', 'Admin', 'Webmail', 'WebAPI'].flatMap((k): [string, number][] => [
      [`${k}HTTP`, ports.http],
      [`${k}HTTPS`, ports.https],
    ]),
    ['MetricsHTTP', ports.http],
    ['AutoconfigHTTPS', ports.https],
    ['MTASTSHTTPS', ports.https],
  ];
  for (const [svc, port] of map) text = text.replace(new RegExp(`(\\n    ${svc}:\\n      Enabled: true\\n      Port: )\\d+`), `$1${port}`);
  fs.writeFileSync(configFile, text);
}

/**
 * Starts a server whose ports were free when chosen; when another test took one before the
 * server bound it, the server starts again on fresh ports.
 */
async function startOnFreePorts(s: TestServer, configFile: string): Promise<void> {
  await retryWhenPortTaken(
    () => s.start(),
    async () => {
      const fresh = await allocPorts();
      // In one pass: a fresh port may be an old one of another service.
      const map = new Map((Object.keys(fresh) as (keyof Ports)[]).map((k) => [s.ports[k], fresh[k]]));
      const text = fs.readFileSync(configFile, 'utf8').replace(/^(\s+Port: )(\d+)$/gm, (all, p: string, n: string) => (map.has(Number(n)) ? `${p}${map.get(Number(n))}` : all));
      fs.writeFileSync(configFile, text);
      Object.assign(s.ports, fresh);
    },
  );
}

async function allocPorts(): Promise<Ports> {
  const [smtp, submission, submissions, imap, imaps, http, https] = await freePorts(7);
  return { smtp: smtp!, submission: submission!, submissions: submissions!, imap: imap!, imaps: imaps!, http: http!, https: https! };
}

/** A localserve instance on free ports on 127.0.0.1, resolving with an empty test DNS server. */
export async function startLocalserve(): Promise<TestServer> {
  const dir = tempDir();
  await initLocalserve(dir, ['127.0.0.1']);
  const ports = await allocPorts();
  const configFile = localserveConfigFile(dir);
  await setPorts(configFile, ports);
  const dns = await startDNSServer();
  fs.appendFileSync(configFile, `Resolver: "${dns.address}"\n`);
  const s = new TestServer(dir, configFile, ports, fs.readFileSync(path.join(dir, 'config', 'localhost.crt'), 'utf8'), ['localserve', '--dir', dir]);
  s.dns = dns;
  await startOnFreePorts(s, configFile);
  return s;
}

export interface ServeOptions {
  /** DKIM signing for example.test with an Ed25519 selector "ed" and an RSA selector "rsa". */
  dkim?: boolean;
  /** Extra YAML for domains.conf, appended under Domains (indented by 2). */
  domains?: string;
  /** Extra YAML appended to postern.conf. */
  staticExtra?: string;
  /**
   * Outbound delivery: without this the queue is paused (Queue.Paused), so queued messages stay
   * as submitted. With it, the YAML lines (indented by 2) go under Queue and delivery runs.
   */
  queue?: string;
  /** Extra YAML for domains.conf, appended under Accounts (indented by 2). */
  accounts?: string;
  /** Passwords of the accounts added with `accounts`. */
  passwords?: Record<string, string>;
  /** Hostname in postern.conf instead of mail.example.test. */
  hostname?: string;
  /** TLS certificate and key (PEM) instead of the self-signed one for localhost. */
  tls?: { certPEM: string; keyPEM: string };
  /**
   * Web services: account at / and admin at /admin/ on ports.http and ports.https, metrics on
   * ports.http, autoconfig and MTA-STS on ports.https; adminIPs replaces the default AdminIPs.
   */
  web?: { adminIPs?: string[] };
}

function webServices(ports: Ports, adminIPs?: string[]): string {
  const svc = (name: string, port: number) => `    ${name}:\n      Enabled: true\n      Port: ${port}\n`;
  return (
    svc('AccountHTTP', ports.http) +
    svc('AccountHTTPS', ports.https) +
    svc('AdminHTTP', ports.http) +
    svc('AdminHTTPS', ports.https) +
    svc('MetricsHTTP', ports.http) +
    svc('AutoconfigHTTPS', ports.https) +
    svc('MTASTSHTTPS', ports.https) +
    (adminIPs ? `    AdminIPs: ${JSON.stringify(adminIPs)}\n` : '')
  );
}

/**
 * A regular server ("serve") for domain example.test with account "jane" (jane@example.test,
 * password "secret-pass"), TLS with a self-signed certificate for localhost.
 */
export async function startServe(opts: ServeOptions = {}): Promise<TestServer> {
  const dir = tempDir();
  const dns = await startDNSServer();
  const ports = await allocPorts();
  const cdir = path.join(dir, 'config');
  fs.mkdirSync(cdir);
  const { keyPEM, certPEM } = opts.tls ?? selfSigned(['localhost', 'mail.example.test'], ['127.0.0.1']);
  fs.writeFileSync(path.join(cdir, 'tls.key'), keyPEM);
  fs.writeFileSync(path.join(cdir, 'tls.crt'), certPEM);
  const svc = (name: string, port: number) => `    ${name}:\n      Enabled: true\n      Port: ${port}\n`;
  fs.writeFileSync(
    path.join(cdir, 'postern.conf'),
    `Hostname: ${opts.hostname ?? 'mail.example.test'}
DataDir: ../data
Postmaster:
  Account: jane
Listeners:
  test:
    IPs: ["127.0.0.1"]
    TLS:
      KeyCerts:
        - CertFile: tls.crt
          KeyFile: tls.key
${svc('SMTP', ports.smtp)}${svc('Submission', ports.submission)}${svc('Submissions', ports.submissions)}${svc('IMAP', ports.imap)}${svc('IMAPS', ports.imaps)}${opts.web ? webServices(ports, opts.web.adminIPs) : ''}Resolver: "${dns.address}"
${opts.queue === undefined ? 'Queue:\n  Paused: true\n' : `Queue:\n${opts.queue.replace(/^(?=.)/gm, '  ')}\n`}${opts.staticExtra ?? ''}`,
  );
  const dkimTXT: Record<string, string> = {};
  let dkimConf = '';
  if (opts.dkim) {
    fs.mkdirSync(path.join(cdir, 'dkim'));
    const keys = { ed: await genEd25519(), rsa: await genRSA(2048) };
    for (const [sel, pem] of Object.entries(keys)) {
      fs.writeFileSync(path.join(cdir, 'dkim', `${sel}.pem`), pem);
      dkimTXT[sel] = txtRecord(pem);
    }
    dkimConf = `    DKIM:\n      Selectors:\n        ed:\n          PrivateKeyFile: dkim/ed.pem\n        rsa:\n          PrivateKeyFile: dkim/rsa.pem\n      Sign: [ed, rsa]\n`;
  }
  fs.writeFileSync(
    path.join(cdir, 'domains.conf'),
    `# Test domains.
Domains:
  example.test:
    LocalpartCatchallSeparator: "+"
${dkimConf}${opts.domains ?? ''}
Accounts:
  jane:
    Domain: example.test
    Destinations:
      jane@example.test: {}
      jane.archive@example.test:
        Mailbox: Archive
${opts.accounts ?? ''}`,
  );
  const store = new Store(path.join(dir, 'data'));
  store.account('jane').setCredentials(await deriveCredentials('secret-pass'));
  for (const [account, password] of Object.entries(opts.passwords ?? {})) store.account(account).setCredentials(await deriveCredentials(password));
  store.close();
  const configFile = path.join(cdir, 'postern.conf');
  const s = new TestServer(dir, configFile, ports, certPEM, ['--config', configFile, 'serve']);
  s.dns = dns;
  s.dkim = dkimTXT;
  await startOnFreePorts(s, configFile);
  return s;
}

/** Runs a Python 3 script with the given environment and returns its stdout. */
export function python(script: string, env: Record<string, string | number> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('python3', ['-c', script], { env: { ...process.env, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    child.stdin!.end();
  });
}
