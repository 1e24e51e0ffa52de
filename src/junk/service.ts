// Junk handling of a running server: the decision about each incoming message (in mox's order:
// reputation first, the Bayesian filter only for first-time or inconclusive senders, DNS
// blocklists last), training from the accounts' changes, and the Rejects mailboxes.
import crypto from 'node:crypto';
import path from 'node:path';
import { isIPv4 } from 'node:net';
import type { App, IncomingMessage, IncomingVerdict } from '../server/app.js';
import type { Account, MessageMeta } from '../store/account.js';
import { AdjustableClock, reputationPrefixes } from '../limits/limiter.js';
import { fromAddresses } from '../smtpserver/rules.js';
import { asciiDomain } from '../smtp/address.js';
import { organizationalDomain } from '../dmarc/lookup.js';
import { bytesToText, decodeHeaderText } from '../message/header.js';
import { DNSBLs } from '../dnsbl/dnsbl.js';
import { Log } from '../log/log.js';
import { Filter, type Classification } from './filter.js';
import { Trainer } from './train.js';
import { Rejects, rejectKey } from './rejects.js';
import { reputation, type Sender } from './reputation.js';
import { junkSettings, type JunkSettings } from './settings.js';
import { tokenize } from './tokenize.js';
import * as subjectpass from './subjectpass.js';

const log = Log.pkg('junk');

/** The verdict, with what the SMTP session does not act on (yet): the Introbox. */
export interface JunkVerdict extends IncomingVerdict {
  /** Deliver to this mailbox instead (the Introbox for first-time senders). */
  mailbox?: string;
}

interface AccountState {
  acc: Account;
  filter: Filter;
  trainer: Trainer;
  rejects: Rejects;
}

/** How long a network that had a message refused is answered slowly, and how slowly. */
const slowMs = 15 * 60_000;
const slowDelayMs = 3000;
const tidyEveryMs = 10 * 60_000;

export class JunkService {
  private readonly accounts = new Map<string, AccountState>();
  private readonly slow = new Map<string, number>();
  private readonly dnsbls: DNSBLs;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private readonly onAccount = (acc: Account) => void this.attach(acc);

  constructor(private readonly app: App) {
    this.dnsbls = new DNSBLs(app.resolver, app.config.static_.DNSBL?.Zones ?? [], app.clock);
  }

  /** Follows every account's changes from now on, and tidies periodically. */
  start(): void {
    this.app.store.on('account', this.onAccount);
    for (const name of Object.keys(this.app.config.domains.Accounts)) this.attach(this.app.store.account(name));
    this.timer = setInterval(() => this.periodic(), tidyEveryMs);
    this.timer.unref();
    if (this.app.clock instanceof AdjustableClock) this.app.clock.onAdvance(() => this.periodic());
    this.periodic();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.app.store.off('account', this.onAccount);
    for (const a of this.accounts.values()) {
      a.trainer.close();
      a.filter.close();
    }
    this.accounts.clear();
  }

  private settings(account: string): JunkSettings {
    return junkSettings(this.app.config.domains.Accounts[account]);
  }

  private attach(acc: Account): AccountState {
    let a = this.accounts.get(acc.name);
    if (a) return a;
    const filter = new Filter(path.join(acc.dir, 'junkfilter.db'));
    const trainer = new Trainer(acc, filter, () => this.settings(acc.name), this.app.clock, log.with({ account: acc.name }));
    a = { acc, filter, trainer, rejects: new Rejects(acc, filter, this.app.store) };
    this.accounts.set(acc.name, a);
    return a;
  }

  account(name: string): AccountState {
    return this.attach(this.app.store.account(name));
  }

  /** Kept-message training and Rejects tidying for all accounts. */
  periodic(): void {
    if (this.closed) return;
    const now = this.app.clock.now();
    for (const a of this.accounts.values()) {
      void a.trainer.scanKept();
      try {
        const n = a.rejects.tidy(this.settings(a.acc.name), now);
        if (n) log.info('removed old messages from rejects mailbox', { account: a.acc.name, count: n });
      } catch (e) {
        log.error('tidying rejects mailbox', e as Error);
      }
    }
    for (const [ip, until] of this.slow) if (until < now) this.slow.delete(ip);
  }

  /** The hook the SMTP server calls for each account an incoming message is for. */
  async incoming(m: IncomingMessage): Promise<JunkVerdict> {
    const a = this.account(m.account);
    const s = this.settings(m.account);
    const now = this.app.clock.now();
    const t0 = performance.now();
    const snd = sender(m);
    const l = log.with({ account: m.account, from: snd.msgFrom, ip: m.remoteIP });
    const rep = reputation(a.acc, a.filter.db, snd, now);
    const established = a.filter.counts().nham >= s.minHam;
    let cls: Classification | undefined;
    let v: JunkVerdict;
    let reason: string;
    let weak = false;
    let listed: string | undefined;
    const spamDetail = () => (cls ? { prob: Number(cls.prob.toFixed(4)), words: cls.words.map((w) => `${w.word}:${w.p.toFixed(3)}`) } : {});

    if (rep.conclusive) {
      reason = `reputation ${rep.method}`;
      v = rep.junk ? { action: 'reject', reason: 'error processing' } : { action: 'accept' };
    } else {
      // Reputation says nothing decisive: weaker signals, then the content, then DNS blocklists.
      const fromAddrBased = ['msgfromfull', 'msgtofull', 'msgfromdomain', 'msgfromorgdomain', 'msgtodomain', 'msgtoorgdomain'].includes(rep.method);
      const spf = m.analysis.spf.mailFrom?.result;
      const dmarcPass = m.analysis.dmarc.status === 'pass';
      // A new account knows no senders at all: it holds back until it has learned enough.
      const suspicious = established && !fromAddrBased && m.analysis.iprev.result !== 'pass';
      const key = s.subjectPassMs > 0 ? this.subjectPassKey(a) : undefined;
      const subject = decodeHeaderText(m.analysis.header.get('subject')?.value ?? '');
      if (established && !fromAddrBased && (spf === 'fail' || spf === 'softfail') && !dmarcPass) {
        reason = 'spf-policy';
        v = { action: 'reject', reason: 'error processing' };
      } else if (suspicious && rep.junk === true) {
        reason = 'iprev';
        v = { action: 'reject', reason: 'error processing' };
      } else if (key && snd.msgFrom && subjectpass.verify(key, snd.msgFrom, subject, now, s.subjectPassMs)) {
        reason = 'subjectpass';
        v = { action: 'accept' };
      } else {
        cls = a.filter.classify(tokenize(m.msg), s.minHam);
        // Jitter keeps the filter from being an exact oracle for what gets through (as mox).
        const jitter = (t: number) => t + (Math.random() - 0.5) * Math.min(0.1, 2 * (1 - t));
        let junkAt = jitter(s.threshold);
        let rejectAt = jitter(s.rejectThreshold);
        reason = 'junk-content';
        if (suspicious) {
          // Without reputation and without valid reverse DNS, mildly spammy content is enough.
          junkAt = Math.min(junkAt, 0.25);
          rejectAt = Math.min(rejectAt, 0.25);
          reason = 'junk-content-strict';
        }
        if (cls.significant && cls.prob > rejectAt) v = { action: 'reject', reason: 'error processing' };
        else if (cls.prob > junkAt) v = { action: 'junk' };
        else {
          reason = 'no-bad-signals';
          v = { action: 'accept' };
        }
        weak = cls.prob < rejectAt - 0.2;
        if (v.action === 'accept' && this.dnsbls.zones.length && !this.app.localserve) {
          listed = (await this.dnsbls.listed(m.remoteIP))?.zone;
          if (listed) {
            reason = `dns-blocklisted ${listed}`;
            v = { action: 'reject', reason: 'error processing' };
          }
        }
      }
      if (v.action === 'reject' && key && snd.msgFrom && dmarcPass && rep.method === 'none' && (listed || weak)) {
        v.reason = subjectpass.explanation(subjectpass.generate(key, snd.msgFrom, now), s.subjectPassMs);
        // A permanent error: the sender reads the explanation and resends with the token.
        v.code = 550;
        v.ecode = '5.7.1';
        reason += ', subjectpass given';
      }
      if (established && s.firstTimeDelayMs > 0) v.delayMs = s.firstTimeDelayMs;
      if (v.action === 'accept' && s.introbox && m.mailbox.toLowerCase() === 'inbox' && !fromAddrBased) v.mailbox = s.introbox;
    }
    const slowUntil = this.slow.get(m.remoteIP) ?? 0;
    if (slowUntil > now && !(rep.conclusive && !rep.junk)) v.delayMs = Math.max(v.delayMs ?? 0, slowDelayMs);

    l.info('junk verdict', {
      action: v.action,
      reason,
      reputation: rep.method,
      conclusive: rep.conclusive,
      repjunk: rep.junk,
      established,
      delayms: v.delayMs,
      localserve: this.app.localserve || undefined,
      ms: Number((performance.now() - t0).toFixed(2)),
      ...spamDetail(),
    });
    // localserve: everything is logged, nothing is refused, delayed or diverted.
    if (this.app.localserve) return { action: 'accept', reason };
    const key = rejectKey(messageId(m), m.msg);
    if (v.action === 'reject') {
      this.slow.set(m.remoteIP, now + slowMs);
      await a.rejects.add(s, key, m.msg, `X-Postern-Rejected: ${reason}\r\n${m.analysis.headers}`, meta(snd, m), now).catch((e: Error) => l.error('keeping copy of refused message', e));
    } else a.rejects.remove(s, key);
    return v;
  }

  private subjectPassKey(a: AccountState): Buffer {
    let k = a.filter.meta('subjectpass-key') as string | undefined;
    if (!k) {
      k = crypto.randomBytes(32).toString('hex');
      a.filter.setMeta('subjectpass-key', k);
    }
    return Buffer.from(k, 'hex');
  }

  /** Control commands: retrain and statistics, per account. */
  handlers(): [string, (args: Record<string, unknown>, send: (msg: unknown) => void) => Promise<unknown> | unknown][] {
    const acct = (args: Record<string, unknown>) => {
      const name = String(args.account ?? '');
      if (!this.app.config.domains.Accounts[name]) throw new Error(`no account ${JSON.stringify(name)}`);
      return this.account(name);
    };
    return [
      ['junk retrain', async (args, send) => acct(args).trainer.retrain((n) => send({ progress: n }))],
      [
        'junk stats',
        async (args) => {
          const a = acct(args);
          if (args.wait) await a.trainer.idle();
          return { ...a.filter.counts(), backlog: a.trainer.backlog };
        },
      ],
    ];
  }
}

function addrDomain(addr: string): string {
  const i = addr.lastIndexOf('@');
  return i < 0 ? '' : asciiDomain(addr.slice(i + 1).toLowerCase());
}

function messageId(m: IncomingMessage): string {
  return bytesToText(m.analysis.header.get('message-id')?.value ?? '').trim();
}

/** The sender of an incoming message, in the form messages are stored with (session.ts messageMeta). */
export function sender(m: IncomingMessage): Sender {
  const a = m.analysis;
  const from = fromAddresses(a.header)[0] ?? '';
  const fromDomain = addrDomain(from);
  return {
    remoteIP: m.remoteIP,
    remoteIPMasks: reputationPrefixes(m.remoteIP),
    ipv4: isIPv4(m.remoteIP) || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(m.remoteIP),
    ehloDomain: (a.spf.helo?.domain ?? '').toLowerCase(),
    ehloValidated: a.spf.helo?.result === 'pass',
    mailFromDomain: addrDomain(m.mailFrom),
    mailFromValidated: a.spf.mailFrom?.result === 'pass',
    msgFrom: from,
    msgFromDomain: fromDomain,
    msgFromOrgDomain: fromDomain ? organizationalDomain(fromDomain) : '',
    msgFromValidated: a.dmarc.status === 'pass',
    dkimDomains: [...new Set(a.dkim.filter((d) => d.status === 'pass').map((d) => d.domain.toLowerCase()))],
  };
}

function meta(s: Sender, m: IncomingMessage): MessageMeta {
  return {
    remoteIP: s.remoteIP,
    remoteIPMasks: s.remoteIPMasks,
    ehloDomain: s.ehloDomain,
    mailFrom: m.mailFrom.toLowerCase(),
    mailFromDomain: s.mailFromDomain,
    msgFrom: s.msgFrom,
    msgFromDomain: s.msgFromDomain,
    msgFromOrgDomain: s.msgFromOrgDomain,
    ehloValidated: s.ehloValidated,
    mailFromValidated: s.mailFromValidated,
    msgFromValidated: s.msgFromValidated,
    dkimDomains: s.dkimDomains,
    messageId: messageId(m),
    subject: decodeHeaderText(m.analysis.header.get('subject')?.value ?? '').slice(0, 500),
  };
}

