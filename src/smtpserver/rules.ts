// Delivery rulesets: the first rule of a destination whose conditions all match chooses the
// mailbox for a message.
import type { Destination, Ruleset } from '../config/domains.js';
import type { Header } from '../message/header.js';
import { bytesToText } from '../message/header.js';
import { parseAddressList, isGroup, displayMailbox, type Mailbox } from '../message/address.js';

export interface RuleInput {
  mailFrom: string;
  header: Header;
  /** Domains with SPF or DKIM pass, lower-case ASCII. */
  verifiedDomains: Set<string>;
}

/** Addresses in the message's From header, lower-cased. */
export function fromAddresses(header: Header): string[] {
  const out: string[] = [];
  for (const f of header.getAll('from')) {
    for (const item of parseAddressList(f.value)) {
      const boxes: Mailbox[] = isGroup(item) ? item.members : [item];
      for (const m of boxes) if (m.mailbox && m.host) out.push(displayMailbox(m).address.toLowerCase());
    }
  }
  return out;
}

function matches(r: Ruleset, i: RuleInput): boolean {
  const re = (s: string) => new RegExp(s, 'iu');
  if (r.SMTPMailFromRegexp !== undefined && !re(r.SMTPMailFromRegexp).test(i.mailFrom)) return false;
  if (r.MsgFromRegexp !== undefined && !fromAddresses(i.header).some((a) => re(r.MsgFromRegexp!).test(a))) return false;
  if (r.VerifiedDomain !== undefined) {
    const d = r.VerifiedDomain.toLowerCase();
    if (![...i.verifiedDomains].some((v) => v === d || v.endsWith('.' + d))) return false;
  }
  for (const [name, rx] of Object.entries(r.HeadersRegexp)) {
    if (!i.header.getAll(name).some((f) => re(rx).test(bytesToText(f.value)))) return false;
  }
  return true;
}

export function chooseMailbox(d: Destination, i: RuleInput): string {
  return d.Rulesets.find((r) => matches(r, i))?.Mailbox ?? d.Mailbox;
}
