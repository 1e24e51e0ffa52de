// Command-line framework: commands with usage, help text and flags. Flags are written
// "--name value", "--name=value", or, as mox users are used to, "-name value".

export interface FlagSpec {
  type: 'string' | 'bool';
  help: string;
  default?: string | boolean;
}

export interface Ctx {
  args: string[];
  flags: Record<string, string | boolean | undefined>;
  /** Static config file: --config, $POSTERNCONF, or config/postern.conf. */
  configFile: string;
}

export interface Command {
  /** Words of the command, e.g. "config domain add". */
  name: string;
  /** Arguments after the name, e.g. "domain [account [localpart]]". */
  args: string;
  /** First line: summary; rest: details. */
  help: string;
  flags?: Record<string, FlagSpec>;
  /** Whether argument count is checked: [min, max]; max -1 for any. */
  nargs?: [number, number];
  run(ctx: Ctx): Promise<number | void> | number | void;
}

export class UsageError extends Error {}

export function parseFlags(argv: string[], specs: Record<string, FlagSpec>): { flags: Ctx['flags']; args: string[] } {
  const flags: Ctx['flags'] = {};
  for (const [k, s] of Object.entries(specs)) flags[k] = s.default;
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--?([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?$/.exec(a);
    if (!m) {
      args.push(a);
      continue;
    }
    const spec = specs[m[1]!];
    if (!spec) throw new UsageError(`unknown flag ${a}`);
    if (spec.type === 'bool') {
      flags[m[1]!] = m[2] === undefined ? true : !['false', '0', 'no'].includes(m[2]);
    } else if (m[2] !== undefined) flags[m[1]!] = m[2];
    else {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`flag ${a} needs a value`);
      flags[m[1]!] = v;
    }
  }
  return { flags, args };
}

export function usageLine(c: Command): string {
  const flags = Object.entries(c.flags ?? {})
    .map(([k, s]) => (s.type === 'bool' ? `[--${k}]` : `[--${k} ${k.toUpperCase()}]`))
    .join(' ');
  return `postern ${c.name}${flags ? ' ' + flags : ''}${c.args ? ' ' + c.args : ''}`;
}

export function helpText(c: Command): string {
  const lines = [`usage: ${usageLine(c)}`, '', c.help.trim()];
  const flags = Object.entries(c.flags ?? {});
  if (flags.length) {
    lines.push('', 'flags:');
    for (const [k, s] of flags) lines.push(`  --${k}${s.type === 'string' ? ' ' + k.toUpperCase() : ''}`, `        ${s.help}${s.default !== undefined && s.default !== false ? ` (default ${s.default})` : ''}`);
  }
  return lines.join('\n') + '\n';
}
