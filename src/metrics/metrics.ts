// Prometheus metrics of the running server, exposed on the internal HTTP listener.
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

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
