// Entry point of the postern command.
import { commands } from './commands.js';
import { queueCommands } from './queuecmds.js';
import { authCommands } from './authcmds.js';
import { webCommands } from './webcmds.js';
import { junkCommands } from './junkcmds.js';
import { opsCommands } from './opscmds.js';
import { setupCommands } from './setupcmds.js';
import { webapiCommands } from './webapicmds.js';
import { parseFlags, helpText, usageLine, UsageError, type Command } from './cli.js';
import { ConfigInvalid } from '../config/load.js';
import { flush } from '../log/log.js';

const helpCommand: Command = {
  name: 'help',
  args: '[command ...]',
  help: `Prints help about commands.

Without arguments, lists all commands. With words of a command, prints its usage and
full help; if several commands start with those words, lists them.`,
  run(ctx) {
    const words = ctx.args.join(' ');
    const matches = all().filter((c) => c.name === words || c.name.startsWith(words + ' ') || words === '');
    if (matches.length === 1) process.stdout.write(helpText(matches[0]!));
    else if (matches.length === 0) throw new UsageError(`no command "${words}"`);
    else {
      process.stdout.write(`${words ? '' : 'Postern, a mail server for self-hosted email.\n\n'}usage: postern [--config FILE] COMMAND ...\n\ncommands:\n`);
      for (const c of matches) process.stdout.write(`  ${usageLine(c).slice('postern '.length)}\n        ${c.help.split('\n')[0]}\n`);
      if (!words) process.stdout.write('\nThe static config file is found with --config, else $POSTERNCONF, else config/postern.conf.\n');
    }
  },
};

function all(): Command[] {
  return [...commands, ...authCommands, ...queueCommands, ...junkCommands, ...webCommands, ...setupCommands, ...opsCommands, ...webapiCommands, helpCommand];
}

/** The command whose name matches the most leading words of argv. */
function findCommand(argv: string[]): { cmd?: Command; rest: string[] } {
  let best: Command | undefined;
  let n = 0;
  for (const c of all()) {
    const words = c.name.split(' ');
    if (words.length > n && words.every((w, i) => argv[i] === w)) {
      best = c;
      n = words.length;
    }
  }
  return { cmd: best, rest: argv.slice(n) };
}

export async function main(argv: string[]): Promise<number> {
  // Global flags come before the command.
  let configFile = process.env.POSTERNCONF || 'config/postern.conf';
  let i = 0;
  for (; i < argv.length; i++) {
    const m = /^--?config(?:=(.*))?$/.exec(argv[i]!);
    if (!m) break;
    const v = m[1] ?? argv[++i];
    if (v === undefined) return usage('flag --config needs a value');
    configFile = v;
  }
  const words = argv.slice(i);
  if (words.length === 0 || ['-h', '--help', '-help'].includes(words[0]!)) {
    await helpCommand.run({ args: [], flags: {}, configFile });
    return words.length === 0 ? 2 : 0;
  }
  const { cmd, rest } = findCommand(words);
  if (!cmd) {
    const prefix = all().some((c) => c.name.startsWith(words[0]! + ' '));
    return usage(prefix ? `incomplete command, see "postern help ${words[0]}"` : `unknown command "${words[0]}", see "postern help"`);
  }
  try {
    if (rest.some((a) => ['-h', '--help', '-help'].includes(a))) {
      process.stdout.write(helpText(cmd));
      return 0;
    }
    const { flags, args } = parseFlags(rest, cmd.flags ?? {});
    if (cmd.nargs && (args.length < cmd.nargs[0] || (cmd.nargs[1] >= 0 && args.length > cmd.nargs[1]))) {
      throw new UsageError(`usage: ${usageLine(cmd)}`);
    }
    const code = await cmd.run({ args, flags, configFile });
    return code ?? 0;
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message);
    if (e instanceof ConfigInvalid) {
      process.stderr.write(`postern: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`postern: ${(e as Error).message}\n`);
    return 1;
  }
}

function usage(msg: string): number {
  process.stderr.write(`postern: ${msg}\n`);
  return 2;
}

const code = await main(process.argv.slice(2));
flush();
process.exitCode = code;
