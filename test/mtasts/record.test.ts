import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseSTSRecord, lookupSTSRecord, STSRecordError } from '../../src/mtasts/record.js';
import { StubResolver } from '../../src/dns/stub.js';
import { startDNSServer } from '../helpers/dnsserver.js';

test('records in the forms RFC 8461 3.1 allows', () => {
  assert.deepEqual(parseSTSRecord('v=STSv1; id=20160831085700Z;'), { version: 'STSv1', id: '20160831085700Z', extensions: {} });
  assert.equal(parseSTSRecord('v=STSv1;id=abc').id, 'abc');
  assert.equal(parseSTSRecord('v=STSv1 ;\tid=abc ; ').id, 'abc');
  assert.equal(parseSTSRecord('v=STSv1; id=' + 'a'.repeat(32)).id, 'a'.repeat(32));
});

test('extension fields are kept aside and do not change the record', () => {
  const r = parseSTSRecord('v=STSv1; ext.x-1=some_value; id=42');
  assert.equal(r.id, '42');
  assert.deepEqual(r.extensions, { 'ext.x-1': 'some_value' });
});

test('malformed records are rejected with the reason', () => {
  const cases: [string, RegExp][] = [
    ['v=STSv1', /missing id/],
    ['v=STSv1;', /missing id/],
    ['id=1; v=STSv1', /must start with "v=STSv1"/],
    ['v=STSv2; id=1', /must start with "v=STSv1"/],
    ['v=STSv1 id=1', /must start with/],
    ['v=STSv1; id=' + 'a'.repeat(33), /1 to 32 letters and digits/],
    ['v=STSv1; id=2016-08-31', /1 to 32 letters and digits/],
    ['v=STSv1; id=', /1 to 32 letters and digits/],
    ['v=STSv1; id=1; id=2', /duplicate id/],
    ['v=STSv1; v=STSv1; id=1', /duplicate v/],
    ['v=STSv1;; id=1', /not name=value/],
    ['v=STSv1; id=1; _x=1', /invalid field name/],
    ['v=STSv1; id=1; x=a=b', /invalid value/],
    ['v=STSv1; id=1; x=', /invalid value/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseSTSRecord(text), (err: unknown) => err instanceof STSRecordError && re.test(err.message), text);
  }
});

test('hostile records are rejected quickly and the message stays short', () => {
  const start = performance.now();
  for (const text of ['v=STSv1;' + ' '.repeat(60000) + 'x', 'v=STSv1' + ' ;'.repeat(30000), 'v=STSv1; id=' + 'a'.repeat(60000)]) {
    assert.throws(
      () => parseSTSRecord(text),
      (err: unknown) => err instanceof STSRecordError && err.message.length < 200,
    );
  }
  assert.ok(performance.now() - start < 500);
});

const dns = await startDNSServer({
  records: {
    '_mta-sts.one.example': { TXT: ['v=spf1 -all', 'v=STSv1; id=one'] },
    '_mta-sts.two.example': { TXT: ['v=STSv1; id=a', 'v=STSv1; id=b'] },
    '_mta-sts.prefix.example': { TXT: ['v=STSv10; id=x', 'v=STSv1; id=y'] },
    '_mta-sts.split.example': { TXT: [['v=STSv1; ', 'id=joined']] },
    '_mta-sts.bad.example': { TXT: ['v=STSv1; id=not-valid'] },
    '_mta-sts.other.example': { TXT: ['hello'] },
    'nodata.example': { A: ['192.0.2.1'] },
  },
});
after(() => dns.close());
const resolver = new StubResolver({ servers: [dns.address], cacheSize: 0, timeout: 500, attempts: 1 });

test('lookup: one record among other TXT records is found', async () => {
  assert.deepEqual(await lookupSTSRecord(resolver, 'one.example'), { status: 'found', record: { version: 'STSv1', id: 'one', extensions: {} } });
  const split = await lookupSTSRecord(resolver, 'split.example');
  assert.equal(split.status === 'found' && split.record.id, 'joined');
  const prefix = await lookupSTSRecord(resolver, 'prefix.example');
  assert.equal(prefix.status === 'found' && prefix.record.id, 'y');
});

test('lookup: several records, a bad record or none mean no policy', async () => {
  const two = await lookupSTSRecord(resolver, 'two.example');
  assert.equal(two.status, 'none');
  assert.match(two.status === 'none' ? two.reason : '', /2 MTA-STS records/);
  const bad = await lookupSTSRecord(resolver, 'bad.example');
  assert.equal(bad.status, 'none');
  assert.match(bad.status === 'none' ? bad.reason : '', /invalid MTA-STS record/);
  assert.equal((await lookupSTSRecord(resolver, 'other.example')).status, 'none');
  assert.equal((await lookupSTSRecord(resolver, 'missing.example')).status, 'none');
  assert.equal((await lookupSTSRecord(resolver, 'nodata.example')).status, 'none');
});

test('lookup: a DNS failure is temporary', async () => {
  dns.behave('_mta-sts.one.example', 'servfail', 1);
  const r = await lookupSTSRecord(resolver, 'one.example');
  assert.equal(r.status, 'temporary-failure');
  dns.behave('_mta-sts.one.example', 'timeout', 1);
  assert.equal((await lookupSTSRecord(resolver, 'one.example')).status, 'temporary-failure');
});
