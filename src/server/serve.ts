// Starting and stopping a complete server from its configuration.
import type net from 'node:net';
import { Config } from '../config/load.js';
import { Store } from '../store/store.js';
import { Auth } from './auth.js';
import { CertStore } from '../tls/certs.js';
import { acmeManager, startACME, stopACME } from '../acme/setup.js';
import '../acme/http.js';
import { DMARCReporter } from '../reports/send.js';
import { closeReportStore } from '../reports/incoming.js';
import { startUpdateChecks } from '../quickstart/updates.js';
import { listenSMTP } from '../smtpserver/server.js';
import { listenIMAP } from '../imapserver/server.js';
import { CtlServer, ctlPath, type CtlHandler } from '../ctl/ctl.js';
import { systemClock, AdjustableClock, ConnectionLimiter, Limiter, type Clock } from '../limits/limiter.js';
import { QueueStore } from '../queue/store.js';
import { Delivery } from '../queue/deliver.js';
import { queueHandlers } from '../queue/ctl.js';
import { resolverFor } from './resolver.js';
import { JunkService } from '../junk/service.js';
import { Log, setLevels, setLevel, getLevels, isLevel, type Level } from '../log/log.js';
import type { App } from './app.js';
import { registry, observeQueue } from '../metrics/metrics.js';
import { opsHandlers } from '../backup/ctl.js';
import { dropPrivileges } from './privdrop.js';
import { preloadDKIMKeys } from '../smtpserver/submit.js';
import { startWeb } from '../http/server.js';
import { webState } from '../http/services.js';
import type { Listener } from '../config/static.js';
import { Webhooks } from '../webhook/hooks.js';
import { webhookHandlers } from '../webhook/ctl.js';

const log = Log.pkg('serve');

export interface ServeOptions {
  localserve?: boolean;
  clock?: Clock;
}

export interface Running {
  app: App;
  /** Addresses listened on, e.g. "smtp 127.0.0.1:1025". */
  listening: { service: string; ip: string; port: number }[];
  /** Resolves when the server has stopped, e.g. after "postern stop". */
  stopped: Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

const connLimits = (n: number): [number, number, number] => [n, n * 3, n * 9];

export async function serve(staticFile: string, opts: ServeOptions = {}): Promise<Running> {
  const config = Config.load(staticFile);
  setLevels(config.static_.LogLevel as Level, config.static_.PackageLogLevels as Record<string, Level>);
  const store = new Store(config.dataDir);
  const handlers = new Map<string, CtlHandler>();
  const ctl = new CtlServer(ctlPath(config.dataDir), handlers);
  await ctl.listen();
  store.cleanTmp();
  const clock = opts.clock ?? (process.env.POSTERN_TEST_CLOCK === '1' ? new AdjustableClock() : systemClock);
  const queue = new QueueStore(config.dataDir);
  const minute = 60_000;
  const app: App = {
    config,
    store,
    queue,
    auth: new Auth(config, store, clock),
    resolver: resolverFor(config.static_, { localserve: opts.localserve, now: () => clock.now() }),
    clock,
    hooks: {},
    limits: {
      connections: {
        smtp: new ConnectionLimiter(connLimits(config.static_.MaxConnectionsPerIP)),
        imap: new ConnectionLimiter(connLimits(config.static_.MaxConnectionsPerIP)),
      },
      connectionRate: new Limiter([{ periodMs: minute, limits: [300, 900, 2700] }], clock),
      deliveries: new Limiter([{ periodMs: minute, limits: [500, 1500, 4500] }], clock),
    },
    localserve: !!opts.localserve,
    sessions: new Set(),
  };
  const junk = new JunkService(app);
  app.hooks.incoming = (m) => junk.incoming(m);
  let delivery: Delivery;
  try {
    delivery = new Delivery(app);
  } catch (e) {
    await ctl.close();
    store.close();
    queue.close();
    throw e;
  }
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const listening: Running['listening'] = [];

  const webhooks = new Webhooks(app);
  const dmarcReporter = new DMARCReporter(app);
  let stopUpdates = () => {};
  let stopResolve!: () => void;
  const stopped = new Promise<void>((r) => (stopResolve = r));
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5000): Promise<void> => {
    stopping ??= (async () => {
      log.info('shutting down');
      config.close();
      stopACME(app);
      dmarcReporter.stop();
      stopUpdates();
      clearInterval(cleanup);
      for (const s of servers) s.close();
      for (const s of app.sessions) s.shutdown();
      const deadline = Date.now() + graceMs;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const s of sockets) s.destroy();
      await ctl.close();
      await delivery.close();
      await webhooks.close();
      junk.close();
      closeReportStore(app);
      store.close();
      queue.close();
      log.info('stopped');
      stopResolve();
    })();
    return stopping;
  };

  const queueCtl = queueHandlers(app, delivery);
  webState(app).queue = queueCtl;
  try {
    for (const [name, l] of Object.entries(config.static_.Listeners)) {
      await startListener(app, name, l, servers, sockets, listening);
    }
  } catch (e) {
    for (const s of servers) s.close();
    await ctl.close();
    await delivery.close();
    store.close();
    throw e;
  }

  handlers.set('ping', () => 'pong');
  handlers.set('metrics', () => registry.metrics());
  for (const [name, h] of queueCtl) handlers.set(name, h);
  for (const [name, h] of webhookHandlers(app)) handlers.set(name, h);
  for (const [name, h] of opsHandlers(app)) handlers.set(name, h);
  observeQueue(app.queue);
  for (const [name, h] of junk.handlers()) handlers.set(name, h);
  if (clock instanceof AdjustableClock) {
    handlers.set('clock advance', (args) => {
      clock.advance(Number(args.ms));
      return clock.now();
    });
  }
  handlers.set('stop', () => {
    setImmediate(() => void stop());
    return 'stopping';
  });
  handlers.set('reports dmarc send', () => dmarcReporter.run());
  handlers.set('loglevels', (args) => {
    if (typeof args.level === 'string') {
      if (!isLevel(args.level)) throw new Error(`unknown level ${args.level}`);
      setLevel(args.level, typeof args.pkg === 'string' ? args.pkg : '');
    }
    return getLevels();
  });

  config.watch();
  // Message files of expunged messages are removed once no session can still read them.
  const cleanup = setInterval(() => {
    for (const a of store.openAccounts()) a.removeFiles(clock.now() - 3600_000);
  }, 600_000);
  cleanup.unref();
  for (const a of Object.keys(config.domains.Accounts)) store.account(a).removeFiles(Number.MAX_SAFE_INTEGER);

  try {
    preloadDKIMKeys(config);
    dropPrivileges(config);
  } catch (e) {
    await stop(0);
    throw e;
  }
  junk.start();
  // localserve delivers every recipient locally: nothing is queued there.
  if (!app.localserve) delivery.start();
  webhooks.start();
  dmarcReporter.start();
  startACME(app);
  stopUpdates = startUpdateChecks(app);
  log.info('postern started', { hostname: config.static_.Hostname, localserve: app.localserve });
  return { app, listening, stopped, stop };
}

async function startListener(app: App, name: string, l: Listener, servers: net.Server[], sockets: Set<net.Socket>, listening: Running['listening']): Promise<void> {
  const config = app.config;
  const acme = l.TLS?.ACME ? acmeManager(app, l.TLS.ACME) : undefined;
  const certs = l.TLS?.KeyCerts.length || acme ? new CertStore(l.TLS!.KeyCerts, (p) => config.resolve(p), l.TLS!.MinVersion as 'TLSv1.2' | 'TLSv1.3', acme) : undefined;
  const hostname = l.Hostname ?? config.static_.Hostname;
  const addAt = async (service: string, ip: string, port: number, start: () => Promise<net.Server>) => {
    try {
      const server = await start();
      certs?.attach(server);
      servers.push(server);
      listening.push({ service, ip, port });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // In localserve a missing IPv6 loopback is no reason to fail.
      if (app.localserve && code === 'EADDRNOTAVAIL') {
        log.warn('cannot listen, skipping', { listener: name, ip, port, err: e as Error });
        return;
      }
      throw new Error(`listener ${name}: ${service} on ${ip} port ${port}: ${(e as Error).message}`);
    }
  };
  for (const ip of l.IPs) {
    const add = (service: string, port: number, start: () => Promise<net.Server>) => addAt(service, ip, port, start);
    if (l.SMTP.Enabled) {
      await add('smtp', l.SMTP.Port, () =>
        listenSMTP(
          app,
          ip,
          l.SMTP.Port,
          { kind: 'smtp', hostname, certs, maxMessageSize: l.SMTP.MaxMessageSize, noSTARTTLS: l.SMTP.NoSTARTTLS, requireSTARTTLS: l.SMTP.RequireSTARTTLS },
          sockets,
        ),
      );
    }
    if (l.Submission.Enabled) {
      await add('submission', l.Submission.Port, () =>
        listenSMTP(app, ip, l.Submission.Port, { kind: 'submission', hostname, certs, maxMessageSize: l.SMTP.MaxMessageSize, noRequireTLS: l.Submission.NoRequireSTARTTLS }, sockets),
      );
    }
    if (l.Submissions.Enabled) {
      await add('submissions', l.Submissions.Port, () => listenSMTP(app, ip, l.Submissions.Port, { kind: 'submissions', hostname, certs, maxMessageSize: l.SMTP.MaxMessageSize }, sockets));
    }
    if (l.IMAP.Enabled) {
      await add('imap', l.IMAP.Port, () => listenIMAP(app, ip, l.IMAP.Port, { certs, implicitTLS: false, noRequireTLS: l.IMAP.NoRequireSTARTTLS }, sockets));
    }
    if (l.IMAPS.Enabled) {
      await add('imaps', l.IMAPS.Port, () => listenIMAP(app, ip, l.IMAPS.Port, { certs, implicitTLS: true }, sockets));
    }
  }
  await startWeb(app, name, l, certs, addAt, sockets);
}
