// What the protocol servers share in one running Postern.
import type { Config } from '../config/load.js';
import type { Store } from '../store/store.js';
import type { QueueStore } from '../queue/store.js';
import type { Resolver } from '../dns/types.js';
import type { Auth } from './auth.js';
import type { Clock, ConnectionLimiter, Limiter } from '../limits/limiter.js';
import type { Analysis } from '../smtpserver/analyze.js';

/** An incoming message for one account, as the anti-spam checks see it. */
export interface IncomingMessage {
  account: string;
  mailbox: string;
  remoteIP: string;
  mailFrom: string;
  msg: Buffer;
  analysis: Analysis;
}

export interface IncomingVerdict {
  action: 'accept' | 'junk' | 'reject';
  /** Shown in logs and, for rejects, in the SMTP reply. */
  reason?: string;
  /** Milliseconds to wait before answering, to slow down suspicious senders. */
  delayMs?: number;
  /** Accepted messages go to this mailbox instead, e.g. an Introbox for first-time senders. */
  mailbox?: string;
  /** For rejects: the SMTP reply code and enhanced code, when not the default 451 4.3.0. */
  code?: number;
  ecode?: string;
}

/** Extension points for checks that decide about incoming messages. */
export interface Hooks {
  incoming?(m: IncomingMessage): Promise<IncomingVerdict>;
}

export interface App {
  config: Config;
  store: Store;
  queue: QueueStore;
  auth: Auth;
  resolver: Resolver;
  clock: Clock;
  hooks: Hooks;
  limits: {
    /** Concurrent connections per network, per protocol. */
    connections: { smtp: ConnectionLimiter; imap: ConnectionLimiter };
    /** New connections per network per minute. */
    connectionRate: Limiter;
    /** Incoming messages per network per minute. */
    deliveries: Limiter;
  };
  /** Local development mode: accept mail for any address, allow plain-text login from loopback. */
  localserve: boolean;
  /** Open protocol sessions, told to finish at shutdown. */
  sessions: Set<{ shutdown(): void }>;
}

/** Ends a session that waits for its next command, at shutdown. */
export class ShuttingDown extends Error {
  constructor() {
    super('shutting down');
  }
}

let cidCounter = Date.now() * 16;

/** Connection id for logs and Received headers; unique across restarts in practice. */
export function newCid(): number {
  return ++cidCounter;
}

/** Loopback addresses, including IPv4-mapped ones. */
export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
}
