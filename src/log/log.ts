// Structured logging on pino. Levels are kept per package and checked at each call, so
// `postern loglevels` changes take effect at once, also for connections already open.
import { pino, type Logger as Pino, type DestinationStream } from 'pino';

export const levels = ['error', 'warn', 'info', 'debug', 'trace'] as const;
export type Level = (typeof levels)[number];
const rank: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

export function isLevel(s: string): s is Level {
  return (levels as readonly string[]).includes(s);
}

interface State {
  root: Level;
  packages: Map<string, Level>;
  sink: Pino;
}

const state: State = {
  root: 'info',
  packages: new Map(),
  // Written at once, so logs are current for whoever follows them and survive a crash.
  sink: pino(
    { level: 'trace', base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    pino.destination({ dest: 1, sync: true }),
  ),
};

/** Replace the output, e.g. with a file destination for `serve`. */
export function setDestination(dest: DestinationStream): void {
  state.sink = pino(
    { level: 'trace', base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    dest,
  );
}

export function setLevels(root: Level, packages: Record<string, Level> = {}): void {
  state.root = root;
  state.packages = new Map(Object.entries(packages));
}

/** Set one level: for the root when pkg is empty, else for that package. */
export function setLevel(level: Level, pkg = ''): void {
  if (pkg === '') state.root = level;
  else state.packages.set(pkg, level);
}

export function getLevels(): { root: Level; packages: Record<string, Level> } {
  return { root: state.root, packages: Object.fromEntries(state.packages) };
}

type Fields = Record<string, unknown>;

export class Log {
  private constructor(
    readonly pkg: string,
    private readonly fields: Fields,
  ) {}

  static pkg(pkg: string): Log {
    return new Log(pkg, { pkg });
  }

  with(fields: Fields): Log {
    return new Log(this.pkg, { ...this.fields, ...fields });
  }

  enabled(level: Level): boolean {
    return rank[level] <= rank[state.packages.get(this.pkg) ?? state.root];
  }

  private emit(level: Level, msg: string, fields?: Fields | Error): void {
    if (!this.enabled(level)) return;
    let extra: Fields | undefined;
    if (fields instanceof Error) extra = { err: fields.message };
    else if (fields) {
      extra = {};
      for (const [k, v] of Object.entries(fields)) extra[k] = v instanceof Error ? v.message : v;
    }
    state.sink[level]({ ...this.fields, ...extra }, msg);
  }

  error(msg: string, fields?: Fields | Error): void {
    this.emit('error', msg, fields);
  }
  warn(msg: string, fields?: Fields | Error): void {
    this.emit('warn', msg, fields);
  }
  info(msg: string, fields?: Fields | Error): void {
    this.emit('info', msg, fields);
  }
  debug(msg: string, fields?: Fields | Error): void {
    this.emit('debug', msg, fields);
  }
  trace(msg: string, fields?: Fields | Error): void {
    this.emit('trace', msg, fields);
  }
}

/** Flush buffered output, before exit. */
export function flush(): void {
  state.sink.flush();
}
