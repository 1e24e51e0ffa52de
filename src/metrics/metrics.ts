// Prometheus metrics of the running server, exposed on the internal HTTP listener.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'postern_' });

export const smtpConnections = new Counter({
  name: 'postern_smtpserver_connections_total',
  help: 'SMTP connections accepted, by listener kind (smtp, submission, submissions).',
  labelNames: ['kind'] as const,
  registers: [registry],
});

export const smtpDelivered = new Counter({
  name: 'postern_smtpserver_messages_total',
  help: 'Messages accepted by the SMTP server, by listener kind and result (delivered locally, queued for remote recipients).',
  labelNames: ['kind', 'result'] as const,
  registers: [registry],
});

export const smtpRejected = new Counter({
  name: 'postern_smtpserver_rejects_total',
  help: 'Messages and recipients refused by the SMTP server, by listener kind and reason.',
  labelNames: ['kind', 'reason'] as const,
  registers: [registry],
});

export const authAttempts = new Counter({
  name: 'postern_authentications_total',
  help: 'Authentication attempts, by protocol, mechanism and result.',
  labelNames: ['protocol', 'mechanism', 'result'] as const,
  registers: [registry],
});

export const imapConnections = new Counter({
  name: 'postern_imapserver_connections_total',
  help: 'IMAP connections accepted, by whether TLS was implicit.',
  labelNames: ['tls'] as const,
  registers: [registry],
});

// Command latency: from reading a command to its reply, including storing a message for
// DATA/BDAT/APPEND. Buckets from half a millisecond to a minute.
const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export const smtpCommandDuration = new Histogram({
  name: 'postern_smtpserver_command_duration_seconds',
  help: 'Time to handle an SMTP command, by listener kind and command (DATA and BDAT include storing the message).',
  labelNames: ['kind', 'command'] as const,
  buckets: latencyBuckets,
  registers: [registry],
});

export const imapCommandDuration = new Histogram({
  name: 'postern_imapserver_command_duration_seconds',
  help: 'Time to handle an IMAP command, by command.',
  labelNames: ['command'] as const,
  buckets: latencyBuckets,
  registers: [registry],
});

// Labels are limited to known commands: anything a client sends would otherwise become a time series.
const smtpVerbs = new Set(['EHLO', 'HELO', 'STARTTLS', 'AUTH', 'MAIL', 'RCPT', 'DATA', 'BDAT', 'RSET', 'NOOP', 'VRFY', 'EXPN', 'HELP', 'QUIT']);
const imapNames = new Set(
  (
    'CAPABILITY NOOP CHECK LOGOUT ID STARTTLS LOGIN AUTHENTICATE UNAUTHENTICATE ENABLE SELECT EXAMINE CREATE DELETE RENAME ' +
    'SUBSCRIBE UNSUBSCRIBE LIST LSUB NAMESPACE STATUS APPEND CLOSE UNSELECT EXPUNGE SEARCH ESEARCH FETCH STORE COPY MOVE ' +
    'SORT THREAD IDLE REPLACE NOTIFY COMPRESS GETMETADATA SETMETADATA GETQUOTA GETQUOTAROOT SETQUOTA'
  ).split(' '),
);
for (const n of ['FETCH', 'STORE', 'SEARCH', 'COPY', 'MOVE', 'EXPUNGE', 'SORT', 'THREAD', 'REPLACE']) imapNames.add(`UID ${n}`);

/** Records the time since start (from performance.now()) for an SMTP command verb. */
export function observeSMTPCommand(kind: string, verb: string, start: number): void {
  smtpCommandDuration.observe({ kind, command: smtpVerbs.has(verb) ? verb : 'other' }, (performance.now() - start) / 1000);
}

/** Records the time since start (from performance.now()) for an IMAP command name. */
export function observeIMAPCommand(name: string, start: number): void {
  imapCommandDuration.observe({ command: imapNames.has(name) ? name : 'other' }, (performance.now() - start) / 1000);
}

/** What the queue gauges read at each scrape. */
export interface QueueSource {
  readonly db: { prepare(sql: string): { get(): unknown } };
}

let queueSource: QueueSource | undefined;

/** Reports the queue's size at each scrape, from its index. */
export function observeQueue(q: QueueSource): void {
  queueSource = q;
}

function queueStats(): { held: number; waiting: number; bytes: number } | undefined {
  return queueSource?.db.prepare('SELECT coalesce(sum(hold != 0), 0) AS held, coalesce(sum(hold = 0), 0) AS waiting, coalesce(sum(size), 0) AS bytes FROM msg').get() as
    | { held: number; waiting: number; bytes: number }
    | undefined;
}

export const queueRecipients = new Gauge({
  name: 'postern_queue_recipients',
  help: 'Recipients in the outbound queue, by whether they are held.',
  labelNames: ['held'] as const,
  registers: [registry],
  collect() {
    const s = queueStats();
    if (!s) return;
    this.set({ held: 'true' }, s.held);
    this.set({ held: 'false' }, s.waiting);
  },
});

export const queueBytes = new Gauge({
  name: 'postern_queue_size_bytes',
  help: 'Size of the messages in the outbound queue, counted once per recipient.',
  registers: [registry],
  collect() {
    const s = queueStats();
    if (s) this.set(s.bytes);
  },
});

export const queueDeliveries = new Counter({
  name: 'postern_queue_deliveries_total',
  help: 'Outgoing delivery attempts per recipient, by result: delivered, temporary (will be retried), permanent and expired (gave up).',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const queueTLS = new Counter({
  name: 'postern_queue_tls_sessions_total',
  help: 'Outgoing SMTP sessions by transport security policy (sts for MTA-STS, tlsa for DANE, no-policy-found) and result (success, or the RFC 8460 failure type).',
  labelNames: ['policy', 'result'] as const,
  registers: [registry],
});
