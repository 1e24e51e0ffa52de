// Commands for the outbound queue of a running server.
import type { Command, Ctx } from './cli.js';
import { Config } from '../config/load.js';
import { ctlCall, ctlPath } from '../ctl/ctl.js';
import type { QueueMsg } from '../queue/store.js';

function ctl(ctx: Ctx, cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
  return ctlCall(ctlPath(Config.load(ctx.configFile).dataDir), cmd, args);
}

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z'));

export const queueCommands: Command[] = [
  {
    name: 'queue list',
    args: '',
    nargs: [0, 0],
    help: `Lists the messages in the outbound queue of the running server.

One line per recipient: queue id, account, sender, recipient, size, attempts made, time
of the next attempt, whether it is held, and the last error.`,
    async run(ctx) {
      const msgs = (await ctl(ctx, 'queue list')) as QueueMsg[];
      if (msgs.length === 0) {
        process.stdout.write('(queue empty)\n');
        return;
      }
      for (const m of msgs) {
        const hold = m.hold ? ' held' : '';
        const err = m.lasterror ? ` last error: ${m.lasterror}` : '';
        process.stdout.write(`${m.id} ${m.account} <${m.sender}> -> <${m.recipient}> ${m.size} bytes, ${m.attempts} attempts, next ${iso(m.nextattempt)}${hold}${err}\n`);
      }
    },
  },
];
