// Shared fixtures for SPF tests: the client and sender of RFC 7208 7.4, and a zone builder.

import { checkHost, type CheckHostOptions, type CheckHostParams } from '../../src/spf/evaluate.js';
import { FakeResolver, type Zone } from './fakeresolver.js';

export const IP4 = '192.0.2.3';
export const IP6 = '2001:db8::cb01';

export const base: CheckHostParams = {
  ip: IP4,
  domain: 'email.example.com',
  sender: 'strong-bad@email.example.com',
  helo: 'mx.example.org',
  receivingHost: 'mx.postern.example',
};

/** A zone where email.example.com publishes `record`, plus other names. */
export function spf(record: string, extra: Zone = {}): Zone {
  return { 'email.example.com': { TXT: [record] }, ...extra };
}

export function check(zone: Zone, params: Partial<CheckHostParams> = {}, opts?: CheckHostOptions) {
  return checkHost({ ...base, ...params }, new FakeResolver(zone), opts);
}
