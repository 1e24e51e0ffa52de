// Authentication of incoming messages: iprev, SPF (RFC 7208), DKIM (RFC 6376) and DMARC
// (RFC 7489), the header fields recording the results, and the delivery decision they lead to.
import type { Resolver } from '../dns/types.js';
import { verify as spfVerify, type VerifyResult as SPFVerify } from '../spf/evaluate.js';
import { receivedSPF } from '../spf/header.js';
import { verify as dkimVerify, type DKIMResult } from '../dkim/verify.js';
import { verify as dmarcVerify, delivery as dmarcDelivery, type DMARCResult } from '../dmarc/verify.js';
import { authenticationResults, type IprevResult } from '../dmarc/authres.js';
import { parseHeader, type Header } from '../message/header.js';
import { Log } from '../log/log.js';

const log = Log.pkg('smtpserver');

/** Reverse DNS of the client, confirmed by a forward lookup (RFC 8601 3, "iprev"). */
export async function iprev(resolver: Resolver, ip: string): Promise<IprevResult> {
  try {
    const names = (await resolver.lookupPTR(ip)).records;
    for (const name of names.slice(0, 10)) {
      try {
        if ((await resolver.lookupIP(name)).records.includes(ip)) return { result: 'pass', ip, name };
      } catch {
        // Try the next name.
      }
    }
    return { result: 'fail', ip, name: names[0] };
  } catch (e) {
    const temp = (e as { temporary?: boolean }).temporary;
    return { result: temp ? 'temperror' : 'permerror', ip };
  }
}

export function spfCheck(resolver: Resolver, ip: string, mailFrom: string, helo: string, receivingHost: string): Promise<SPFVerify> {
  return spfVerify({ ip, mailFrom, helo, receivingHost }, resolver);
}

export interface Analysis {
  header: Header;
  spf: SPFVerify;
  dkim: DKIMResult[];
  dmarc: DMARCResult;
  iprev: IprevResult;
  /** Header fields to prepend: Authentication-Results and Received-SPF. */
  headers: string;
  /** Domains verified by SPF pass or DKIM pass, for rulesets and reputation. */
  verifiedDomains: Set<string>;
  /** What DMARC asks: accept, junk (quarantine when configured so), reject, or tempfail. */
  dmarcAction: 'accept' | 'junk' | 'reject' | 'tempfail';
}

export interface AnalyzeInput {
  resolver: Resolver;
  hostname: string;
  remoteIP: string;
  helo: string;
  mailFrom: string;
  msg: Buffer;
  spf: Promise<SPFVerify>;
  iprev: Promise<IprevResult>;
  now: Date;
}

export async function analyze(i: AnalyzeInput): Promise<Analysis> {
  const header = parseHeader(i.msg);
  const [spf, ip, dkim] = await Promise.all([i.spf, i.iprev, dkimVerify(i.msg, i.resolver, { now: i.now }).catch((e: Error): DKIMResult[] => {
    log.error('dkim verification failed', e);
    return [];
  })]);
  // RFC 7489 4.1: SPF counts with the MAIL FROM domain, or the HELO domain for the null sender.
  const spfForDMARC = spf.identity === 'mailfrom' || i.mailFrom === '' ? spf.result : undefined;
  const dmarc = await dmarcVerify({ from: header, spf: spfForDMARC, dkim }, i.resolver);
  const verifiedDomains = new Set<string>();
  if (spf.result.result === 'pass') verifiedDomains.add(spf.result.domain);
  for (const d of dkim) if (d.status === 'pass') verifiedDomains.add(d.domain);
  const headers =
    authenticationResults({ authservID: i.hostname, spf: { result: spf.result, identity: spf.identity }, dkim, dmarc, iprev: ip }) +
    receivedSPF({ result: spf.result, identity: spf.identity, sender: spf.sender, clientIP: i.remoteIP, helo: i.helo, receiver: i.hostname }) +
    '\r\n';
  return { header, spf, dkim, dmarc, iprev: ip, headers, verifiedDomains, dmarcAction: dmarcDelivery(dmarc) };
}
