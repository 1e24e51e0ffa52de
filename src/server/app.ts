// What the protocol servers share in one running Postern.
import type { Config } from '../config/load.js';
import type { Store } from '../store/store.js';
import type { Auth } from './auth.js';
import type { Clock } from '../limits/limiter.js';

export interface App {
  config: Config;
  store: Store;
  auth: Auth;
  clock: Clock;
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
