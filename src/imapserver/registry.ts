// Commands of the IMAP server, registered by the modules that implement them. Each module
// (mailboxes.ts, messages.ts, ...) adds its commands and the capabilities they bring.
import type { Parser } from './parse.js';
import type { Session } from './session.js';

export type State = 'notauth' | 'auth' | 'selected';

/** Returned by commands that wrote their own tagged response. */
export const silent = Symbol('silent');

export type Result = string | typeof silent | undefined;

export interface CommandContext {
  tag: string;
  /** Command name as dispatched, e.g. "FETCH" or "UID FETCH". */
  name: string;
  uid: boolean;
}

export interface CommandSpec {
  /** States in which the command is allowed. */
  states: State[];
  run(s: Session, p: Parser, c: CommandContext): Promise<Result> | Result;
}

export const commands = new Map<string, CommandSpec>();

/** Largest message APPEND accepts (RFC 7889). */
export const appendLimit = 100 * 1024 * 1024;

/** Capabilities announced once authenticated, contributed by command modules. */
export const capabilities: string[] = [];

export function register(names: string[], spec: CommandSpec, caps: string[] = []): void {
  for (const n of names) commands.set(n, spec);
  for (const c of caps) if (!capabilities.includes(c)) capabilities.push(c);
}

/** NO response with an optional response code (RFC 9051 7.1). */
export class No extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** BAD response: the command was not understood or not allowed now. */
export class Bad extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}
