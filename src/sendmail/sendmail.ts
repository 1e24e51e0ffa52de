// "postern sendmail": a sendmail-compatible command for cron jobs and scripts. It reads a
// message from standard input and submits it over SMTP submission (RFC 6409) with the
// credentials of a small configuration file, so no mail server runs where it is used.
import fs from 'node:fs';
import os from 'node:os';
import tls from 'node:tls';
import { LineCounter, parseDocument } from 'yaml';
import type { Command } from '../cli/cli.js';
import { UsageError } from '../cli/cli.js';
import { bool, describe, formatError, int, Positions, str, struct, validate, type ConfigError, type StructSpec } from '../config/schema.js';
import { parseHeader } from '../message/header.js';
import { isGroup, parseAddressList, type Mailbox } from '../message/address.js';
import { SMTPClient } from '../smtpclient/client.js';
import { dialTCP } from '../queue/dial.js';

export interface SubmitConfig {
  LocalHostname?: string;
  Host: string;
  Port?: number;
  TLS: boolean;
  CAFile?: string;
  Username: string;
  Password: string;
  From: string;
  DefaultDestination?: string;
}

export const submitSpec: StructSpec = struct('Configuration of "postern sendmail".', {
  LocalHostname: str('Host name for EHLO. Default: the name of this machine.', 'cron.example.com', { optional: true }),
  Host: str('Submission server.', 'mail.example.com'),
  Port: int('Port. Default 465 with TLS, else 587.', 465, { optional: true, min: 1, max: 65535 }),
  TLS: bool('Implicit TLS (submissions, RFC 8314); otherwise STARTTLS, which is required.', { example: true }),
  CAFile: str('PEM file with CA certificates trusted for the server certificate besides the system roots.', 'ca.pem', { optional: true }),
  Username: str('Account login, an email address.', 'cron@example.com'),
  Password: str('Password of the account.', 'secret'),
  From: str('Sender address (MAIL FROM), and From address of messages without one.', 'cron@example.com'),
  DefaultDestination: str('Recipient for addresses without domain, such as "root".', 'admin@example.com', { optional: true }),
});

export function parseSubmitConfig(file: string, text: string): { config?: SubmitConfig; errors: ConfigError[] } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const errors: ConfigError[] = [];
  const config = validate(doc, submitSpec, new Positions(file, lc), errors) as SubmitConfig | undefined;
  return { config: errors.length ? undefined : config, errors };
}

export interface SendmailArgs {
  /** -t: recipients from To, Cc and Bcc. */
  fromHeaders: boolean;
  /** -i, -oi: a line with a single dot does not end the message. */
  ignoreDots: boolean;
  fullName?: string;
  configFile?: string;
  recipients: string[];
}

/** sendmail(8) options, including glued values as in "-FCron Daemon". Unknown "-o" and "-B" options are ignored. */
export function parseSendmailArgs(argv: string[]): SendmailArgs {
  const a: SendmailArgs = { fromHeaders: false, ignoreDots: false, recipients: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      a.recipients.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      a.recipients.push(arg);
      continue;
    }
    const opt = arg[1]!;
    const value = () => {
      if (arg.length > 2) return arg.slice(2);
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`option -${opt} needs a value`);
      return v;
    };
    switch (opt) {
      case 't':
        a.fromHeaders = true;
        break;
      case 'i':
        a.ignoreDots = true;
        break;
      case 'o':
        if (arg === '-oi') a.ignoreDots = true;
        break;
      case 'F':
        a.fullName = value();
        break;
      case 'f':
      case 'r':
        // The sender is that of the configured account; the submission server would refuse others.
        value();
        break;
      case 'C':
        a.configFile = value();
        break;
      case 'B':
      case 'N':
      case 'R':
      case 'V':
        value();
        break;
      default:
        // -v, -m and other flags without value do not change the outcome.
        break;
    }
  }
  return a;
}

function addresses(value: string): string[] {
  return parseAddressList(value)
    .flatMap((item) => (isGroup(item) ? item.members : [item as Mailbox]))
    .filter((m) => m.mailbox !== undefined)
    .map((m) => (m.host ? `${m.mailbox}@${m.host}` : m.mailbox!));
}

/**
 * The message to submit and its recipients: line endings made CRLF, a From field added when
 * missing, and with -t the recipients taken from the header and Bcc removed (RFC 5322 3.6.3).
 */
export function prepareMessage(input: Buffer, a: SendmailArgs, c: SubmitConfig): { msg: Buffer; recipients: string[] } {
  let text = input.toString('latin1').replace(/\r?\n/g, '\r\n');
  if (!a.ignoreDots) {
    // Traditional sendmail: a line with only a dot ends the message.
    const m = /(^|\r\n)\.\r\n/.exec(text + '\r\n');
    if (m) text = text.slice(0, m.index + m[1]!.length);
  }
  if (!text.endsWith('\r\n')) text += '\r\n';
  let msg = Buffer.from(text, 'latin1');
  const header = parseHeader(msg);
  let recipients = [...a.recipients];
  if (a.fromHeaders) {
    for (const name of ['to', 'cc', 'bcc']) for (const f of header.getAll(name)) recipients.push(...addresses(f.value));
    const bcc = header.getAll('bcc');
    if (bcc.length) msg = Buffer.concat([msg.subarray(0, bcc[0]!.start), ...bcc.slice(1).map((f, i) => msg.subarray(bcc[i]!.end, f.start)), msg.subarray(bcc[bcc.length - 1]!.end)]);
  }
  if (!header.get('from')) {
    const name = a.fullName?.replace(/["\\\r\n]/g, '');
    msg = Buffer.concat([Buffer.from(`From: ${name ? `"${name}" ` : ''}<${c.From}>\r\n`, 'utf8'), msg]);
  }
  recipients = recipients.map((r) => (r.includes('@') ? r : c.DefaultDestination ?? r));
  return { msg, recipients: [...new Set(recipients)] };
}

/** Submits the message; throws with the server's reply on failure. */
export async function submit(c: SubmitConfig, msg: Buffer, recipients: string[]): Promise<void> {
  const port = c.Port ?? (c.TLS ? 465 : 587);
  const ca = [...tls.rootCertificates, ...(c.CAFile ? [fs.readFileSync(c.CAFile, 'utf8')] : [])];
  let socket = await dialTCP(c.Host, port, 30_000);
  if (c.TLS) {
    socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const ts = tls.connect({ socket, servername: c.Host, ca }, () => resolve(ts));
      ts.once('error', reject);
    });
  }
  const client = await SMTPClient.open(socket, {
    hostname: c.LocalHostname ?? os.hostname(),
    tls: c.TLS ? undefined : { mode: 'verified', name: c.Host, ca },
    auth: { username: c.Username, password: c.Password },
  });
  try {
    const results = await client.deliver({ from: c.From, recipients: recipients.map((address) => ({ address })), data: msg });
    const failed = results.filter((r) => r.error);
    if (failed.length) throw new Error(failed.map((r) => `${r.recipient.address}: ${r.error!.message}`).join('; '));
  } finally {
    await client.quit();
  }
}

export const sendmailCommand: Command = {
  name: 'sendmail',
  args: '[-t] [-i] [-Fname] [-C file] [recipient ...]',
  // Options follow sendmail(8) and are parsed from the raw arguments: "-Fname" glues its value.
  flags: new Proxy({} as Record<string, { type: 'bool'; help: string }>, { get: () => ({ type: 'bool', help: '' }) }),
  help: `Submits a message from standard input, as sendmail(8) does, for cron jobs and scripts.

The message goes over SMTP submission to the server and account in the configuration file
/etc/posternsubmit.conf, or $POSTERNSUBMITCONF, or the file given with -C. Recipients are
the arguments, and with -t also the addresses in the To, Cc and Bcc fields (Bcc is
removed). A message without From gets one with the configured address and the name of -F.
Addresses without domain, such as "root", go to DefaultDestination. Options -i and -oi make a
line with a single dot part of the message. Other sendmail options are accepted and ignored.

The configuration file, in YAML:

${describe(submitSpec, '')
  .split('\n')
  .filter((l) => l !== '#' && l !== '')
  .map((l) => `  ${l}`)
  .join('\n')
  .trimEnd()}`,
  async run() {
    const i = process.argv.indexOf('sendmail');
    const a = parseSendmailArgs(process.argv.slice(i + 1));
    const file = a.configFile ?? process.env.POSTERNSUBMITCONF ?? '/etc/posternsubmit.conf';
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`reading configuration: ${(e as Error).message}`);
    }
    const { config, errors } = parseSubmitConfig(file, text);
    if (!config) throw new Error(`invalid configuration:\n${errors.map(formatError).join('\n')}`);
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const { msg, recipients } = prepareMessage(Buffer.concat(chunks), a, config);
    if (recipients.length === 0) throw new UsageError('no recipients');
    try {
      await submit(config, msg, recipients);
    } catch (e) {
      process.stderr.write(`postern sendmail: ${(e as Error).message}\n`);
      // sysexits.h EX_TEMPFAIL: cron and scripts may try again.
      return 75;
    }
  },
};
