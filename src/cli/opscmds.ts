// Operations commands: backup and verification of the data directory, import and export
// of mail, repairs of account indexes, and decoding Received header ids.
import fs from 'node:fs';
import path from 'node:path';
import type { Command, Ctx } from './cli.js';
import { UsageError } from './cli.js';
import { Config } from '../config/load.js';
import { ctlCall, ctlPath, isRunning } from '../ctl/ctl.js';
import { Store } from '../store/store.js';
import { backupDataDir, type BackupResult } from '../backup/backup.js';
import { verifyDataDir } from '../backup/verify.js';
import { repairs, type RepairName } from '../backup/repair.js';
import { exportAccount, exportToDir, openAccountReadOnly, type ArchiveFormat, type ImportResult, type MailFormat } from '../importexport/index.js';

const out = (s: string) => process.stdout.write(s + '\n');

/** The control socket of the running server, or undefined when none runs. */
async function runningServer(config: Config): Promise<string | undefined> {
  const sock = ctlPath(config.dataDir);
  return (await isRunning(sock)) ? sock : undefined;
}

/**
 * A repair runs in the server when it is running, on its open account, so open IMAP
 * sessions are told; otherwise on the index directly.
 */
function repairCommand(op: RepairName, args: string, help: string): Command {
  const withMailbox = args.includes('mailbox');
  const accountOptional = args.startsWith('[');
  return {
    name: op,
    args,
    nargs: [accountOptional ? 0 : 1, withMailbox ? 2 : 1],
    help,
    async run(ctx) {
      const config = Config.load(ctx.configFile);
      const [account, mailbox] = ctx.args;
      const names = account ? [account] : Object.keys(config.domains.Accounts).sort();
      for (const n of names) if (!config.domains.Accounts[n]) throw new UsageError(`account ${n} not configured`);
      const sock = await runningServer(config);
      const store = sock ? undefined : new Store(config.dataDir);
      try {
        for (const n of names) {
          const lines = sock ? ((await ctlCall(sock, 'repair', { op, account: n, mailbox })) as string[]) : await repairs[op](store!.account(n), mailbox);
          for (const l of lines) out(names.length > 1 ? `${n}: ${l}` : l);
        }
      } finally {
        store?.close();
      }
    },
  };
}

function importCommand(format: MailFormat): Command {
  return {
    name: `import ${format}`,
    args: `account mailbox ${format === 'maildir' ? 'maildir' : 'mbox-file'}`,
    nargs: [3, 3],
    help: `Imports ${format === 'maildir' ? 'a maildir' : 'an mbox file'} into a mailbox of an account, through the running server.

The server reads the ${format === 'maildir' ? 'maildir' : 'file'}, so it must be accessible to the user the server runs
as (e.g. below the data directory). The mailbox is created if needed. Progress is printed
every 1000 messages. Memory use does not grow with the number of messages.

${
  format === 'maildir'
    ? `Messages are read from cur/ and new/ (tmp/ holds unfinished deliveries), oldest first by
their names. Flags come from the ":2," info of the file names: D draft, F flagged,
P forwarded, R answered, S seen, T deleted; lowercase letters are keywords named in the
maildir's dovecot-keywords file. The file modification time is the received date.`
    : `Messages start at "From " lines; lines quoted as ">From " (mboxrd) are unquoted. Flags come
from the Status (R: seen), X-Status (A answered, F flagged, T draft, D deleted) and
X-Keywords headers, which are removed from the stored message. The date of the "From "
line is the received date.`
}

Keywords $Junk and $NotJunk (also Thunderbird's Junk and NonJunk) train the account's junk
filter as the messages are stored. Line endings are converted to CRLF.`,
    async run(ctx) {
      const config = Config.load(ctx.configFile);
      const [account, mailbox, source] = ctx.args as [string, string, string];
      if (!config.domains.Accounts[account]) throw new UsageError(`account ${account} not configured`);
      const r = (await ctlCall(ctlPath(config.dataDir), 'import', { format, account, mailbox, source: path.resolve(source) }, (m) => {
        const p = (m as { progress?: number }).progress;
        if (p) out(`imported ${p} messages`);
      })) as ImportResult;
      out(`imported ${r.messages} messages into ${Object.keys(r.mailboxes).join(', ')}`);
    },
  };
}

const archiveOf = (dest: string): ArchiveFormat | undefined => (/\.zip$/i.test(dest) ? 'zip' : /\.(tgz|tar\.gz)$/i.test(dest) ? 'tgz' : /\.tar$/i.test(dest) ? 'tar' : undefined);

function exportCommand(format: MailFormat): Command {
  return {
    name: `export ${format}`,
    args: 'dest account-path [mailbox]',
    nargs: [2, 3],
    flags: format === 'maildir' ? { crlf: { type: 'bool', help: 'Keep the stored CRLF line endings instead of writing LF.' } } : undefined,
    help: `Exports one or all mailboxes of an account in ${format} format.

account-path is the account's directory in the data directory, e.g. data/accounts/jane.
The account's index is opened read-only, so this works with the server running or not.
dest is a directory, created if needed, or an archive file if it ends in .zip, .tgz,
.tar.gz or .tar. ${
      format === 'maildir'
        ? `Each mailbox becomes a maildir named like it (Lists/work/cur/...), flags in the
file names and keywords in a dovecot-keywords file (at most 26 per mailbox), the received
date as file modification time. Files get LF line endings unless -crlf is given.`
        : `Each mailbox becomes a file named like it plus ".mbox" (Lists/work.mbox). Lines
starting with "From ", also after any number of ">", get another ">" (mboxrd), so the
original is recovered exactly. Flags are written as Status, X-Status and X-Keywords headers,
the received date on the "From " line. Line endings are LF.`
    }`,
    async run(ctx) {
      const [dest, accountPath, mailbox] = ctx.args as [string, string, string | undefined];
      const src = openAccountReadOnly(path.resolve(accountPath));
      try {
        const archive = archiveOf(dest);
        const o = { format, mailbox, crlf: ctx.flags.crlf === true };
        const r = archive ? await exportAccount(src, { ...o, archive }, fs.createWriteStream(dest, { flags: 'wx', mode: 0o600 })) : await exportToDir(src, o, dest);
        out(`exported ${r.messages} messages from ${r.mailboxes} mailboxes`);
        if (r.droppedKeywords) out(`${r.droppedKeywords} keywords not written: maildirs have letters for 26 keywords`);
      } finally {
        src.close();
      }
    },
  };
}

function printBackup(r: BackupResult): void {
  out(`${r.databases} databases, ${r.linked} message files linked, ${r.copied} copied, ${r.otherFiles} other files, ${r.dropped} removed during backup, ${r.ms} ms`);
}

export const opsCommands: Command[] = [
  {
    name: 'backup',
    args: 'dest-dir',
    nargs: [1, 1],
    flags: { verbose: { type: 'bool', help: 'Print what is backed up, and timing.' } },
    help: `Makes a backup of the data directory in dest-dir, which must not exist or be empty.

Databases are copied with SQLite's online backup, a consistent snapshot even while the
server writes to them; copying the files of a running server instead can give unusable
databases. Message files (account messages and the outgoing queue) never change, so
they are hard-linked, taking no extra space; where that is not possible (another file
system) they are copied. A destination inside the data directory, like data/tmp/backup,
makes hard links more likely to work. Other files are copied; temporary files are not.

When the server runs, it makes the backup (so dest-dir must be writable for its user),
else this command does. A successful backup prints nothing without -verbose.

To restore: stop the server, move the data directory away, put the backup in its place,
run "postern verifydata" (with -fix if it reports files not in an index), and start the
server. Run "postern bumpuidvalidity" for accounts whose mailboxes changed since the
backup, so IMAP clients synchronize again.`,
    async run(ctx) {
      const config = Config.load(ctx.configFile);
      const dest = path.resolve(ctx.args[0]!);
      const verbose = ctx.flags.verbose === true;
      const sock = await runningServer(config);
      const r = sock
        ? ((await ctlCall(sock, 'backup', { dest, verbose }, (m) => verbose && out((m as { log: string }).log))) as BackupResult)
        : await backupDataDir(config.dataDir, dest, { log: verbose ? out : undefined });
      if (verbose && sock) printBackup(r);
    },
  },
  {
    name: 'verifydata',
    args: 'data-dir',
    nargs: [1, 1],
    flags: { fix: { type: 'bool', help: 'Move message files that no index refers to into data-dir/moved/.' } },
    help: `Checks a data directory, typically a backup, before it is used.

Checks that each database is intact, that every message in an account index has its
file with the recorded size, that no message file is unknown to its index (also for the
outgoing queue), and that UIDs, UIDNEXT, UIDVALIDITY and mod-sequences are consistent.
Problems are printed with the repair command that fixes them; the exit status is 1 when
problems remain.

With -fix, message files not in an index are moved to data-dir/moved/: a message stored
later could get their number. This is typical after restoring a backup.

Opening the databases upgrades them to the schema of this version, as the server does.
Run it with a new version on a copy made with "postern backup" to see whether an upgrade
will work, and make a fresh backup before upgrading. Do not run it on the data directory
of a running server.`,
    async run(ctx) {
      const dir = path.resolve(ctx.args[0]!);
      if (await isRunning(ctlPath(dir))) throw new Error(`a server is running on ${dir}; verify a backup instead`);
      const r = verifyDataDir(dir, { fix: ctx.flags.fix === true });
      for (const m of r.moved) out(`moved ${m}`);
      for (const p of r.problems) out(p);
      out(`${r.databases} databases, ${r.messages} messages checked, ${r.problems.length} problems${r.moved.length ? `, ${r.moved.length} files moved` : ''}`);
      return r.problems.length ? 1 : 0;
    },
  },
  importCommand('maildir'),
  importCommand('mbox'),
  exportCommand('maildir'),
  exportCommand('mbox'),
  {
    name: 'cid',
    args: 'id',
    nargs: [1, 1],
    help: `Turns the id of a Received header into the connection id (cid) of the logs.

Received headers added by Postern carry "id <cid>-<time>", both base 36: the connection
counter that every log line of the connection has as "cid", and the time the message was
received. Prints the cid and the time.`,
    run(ctx) {
      const m = /^([0-9a-z]+)-([0-9a-z]+)$/i.exec(ctx.args[0]!.trim().replace(/;$/, ''));
      if (!m) throw new UsageError('id must look like "<cid>-<time>", as in Received headers');
      const cid = parseInt(m[1]!, 36);
      const time = parseInt(m[2]!, 36);
      if (!Number.isSafeInteger(cid) || !Number.isSafeInteger(time)) throw new UsageError('id out of range');
      out(`cid ${cid}`);
      out(`received ${new Date(time).toISOString()}`);
    },
  },
  repairCommand(
    'bumpuidvalidity',
    'account [mailbox]',
    `Gives one or all mailboxes of an account a new UIDVALIDITY.

IMAP clients then discard what they cached of the mailbox and fetch it again. Useful after
restoring a backup or repairing an index. Runs in the server if it is running (open IMAP
sessions of the account are ended, so their clients reconnect), else on the index.`,
  ),
  repairCommand(
    'reassignuids',
    'account [mailbox]',
    `Numbers the messages of one or all mailboxes 1, 2, 3, ... again, with a new UIDVALIDITY.

The mailbox may be given by name or by its numeric id. IMAP clients fetch the mailbox again.
Runs in the server if it is running (open IMAP sessions of the account are ended), else
on the index.`,
  ),
  repairCommand(
    'fixuidmeta',
    'account',
    `Fixes UIDNEXT and UIDVALIDITY bookkeeping of an account.

Each mailbox's UIDNEXT must be above every UID used in it, including expunged ones, and the
account's UIDVALIDITY counter must be at or above every mailbox's UIDVALIDITY, or new
messages and mailboxes could reuse numbers. Prints what was changed.`,
  ),
  repairCommand(
    'fixmsgsize',
    '[account]',
    `Makes recorded message sizes equal to the delivery header plus the message file's size.

Messages whose size was wrong are parsed again. If any was changed, run "postern
bumpuidvalidity" so IMAP clients fetch the messages again. Without account, for all accounts.`,
  ),
  repairCommand(
    'reparse',
    '[account]',
    `Parses all messages again and stores their MIME structure, for all accounts or one.

Useful after an upgrade that improved message parsing. Messages are parsed in batches, so
the running server keeps serving meanwhile.`,
  ),
  repairCommand(
    'recalculatemailboxcounts',
    'account',
    `Recomputes what is kept per mailbox and prints each mailbox's counts.

Message counts and sizes are always computed from the index, so they cannot drift; the
list of keywords in use (the IMAP FLAGS response) and HIGHESTMODSEQ are kept, and fixed
here if wrong. Prints messages, unseen, deleted and bytes per mailbox, and the account's
total size, which the quota is checked against.`,
  ),
  repairCommand(
    'reassignthreads',
    '[account]',
    `Sets the Message-ID and Subject kept for each message again, from its header.

THREAD responses (RFC 5256) are computed from these and the References and In-Reply-To
headers when a client asks, so nothing else is stored per thread. Useful after importing
mail with an older version. Without account, for all accounts.`,
  ),
];
