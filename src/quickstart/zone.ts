// The DNS records of a domain as zone text, for quickstart and "postern config dnsrecords": the
// records of src/dnsrecords, with the ACME certificate authority and account for CAA and the
// TLSA records of the ACME host keys.
import type { Config } from '../config/load.js';
import { dnsRecords, zoneText, type DNSRecord, type RecordOptions } from '../dnsrecords/dnsrecords.js';
import { AcmeManager } from '../acme/manager.js';
import { acmeDir } from '../acme/setup.js';
import { hostKeyTLSA } from '../acme/hostkeys.js';

/** CAA details of the first ACME provider a listener uses (RFC 8657 accounturi once the account exists). */
export function acmeRecordOptions(config: Config): RecordOptions {
  const provider = Object.values(config.static_.Listeners).find((l) => l.TLS?.ACME)?.TLS?.ACME;
  const c = provider ? config.static_.ACME[provider] : undefined;
  if (!provider || !c) return {};
  return { acme: { caDomain: c.IssuerDomainName, accountURI: AcmeManager.accountURI(acmeDir(config, provider)) } };
}

export function domainRecords(config: Config, domain: string): DNSRecord[] {
  const records = dnsRecords(config, domain, acmeRecordOptions(config));
  if (!records.some((r) => r.type === 'TLSA')) {
    for (const t of hostKeyTLSA(config)) {
      records.push({
        name: t.name,
        type: 'TLSA',
        value: t.value,
        purpose: 'tlsa',
        comment: `DANE (RFC 7672): SHA-256 of a host key of the SMTP server on port ${t.port}, used for every certificate renewal. Only with DNSSEC.`,
      });
    }
  }
  return records;
}

export async function dnsZone(config: Config, domain: string): Promise<string> {
  return zoneText(domainRecords(config, domain));
}
