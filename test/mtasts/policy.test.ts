import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy as mailauthParse, validateMx as mailauthValidate } from 'mailauth/lib/mta-sts.js';
import { deliveryRules, matchesMX, parsePolicy, policyLines, STSPolicyError, MAX_AGE_LIMIT, type Policy } from '../../src/mtasts/policy.js';

const rfcExample = 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n';

test('the example policy of RFC 8461 3.2', () => {
  assert.deepEqual(parsePolicy(rfcExample), {
    version: 'STSv1',
    mode: 'enforce',
    mx: ['mail.example.com', '*.example.net', 'backupmx.example.com'],
    maxAge: 604800,
  });
});

test('CRLF and LF line endings give the same policy, with or without a final newline', () => {
  const want = parsePolicy(rfcExample);
  assert.deepEqual(parsePolicy(rfcExample.replaceAll('\n', '\r\n')), want);
  assert.deepEqual(parsePolicy(rfcExample.trimEnd()), want);
  assert.deepEqual(parsePolicy(rfcExample.replaceAll('\n', '\r\n').trimEnd()), want);
});

test('spacing after the colon and at line ends, blank lines and unknown fields are accepted', () => {
  const p = parsePolicy('version:STSv1\n\nmode:\t testing \nextension_1.x: anything at all\nmx:   MX.Example.ORG.\nmax_age: 0  \n');
  assert.deepEqual(p, { version: 'STSv1', mode: 'testing', mx: ['mx.example.org'], maxAge: 0 });
});

test('mx patterns are normalized to lower-case A-labels, duplicates dropped', () => {
  const p = parsePolicy('version: STSv1\nmode: enforce\nmx: mx.bücher.example\nmx: *.BÜCHER.example\nmx: mx.xn--bcher-kva.example\nmax_age: 60\n');
  assert.deepEqual(p.mx, ['mx.xn--bcher-kva.example', '*.xn--bcher-kva.example']);
});

test('max_age above the limit is capped; more than 10 digits is an error', () => {
  const at = (v: string) => parsePolicy(`version: STSv1\nmode: none\nmax_age: ${v}\n`).maxAge;
  assert.equal(at('31557600'), MAX_AGE_LIMIT);
  assert.equal(at('31557601'), MAX_AGE_LIMIT);
  assert.equal(at('9999999999'), MAX_AGE_LIMIT);
  assert.equal(at('0000000042'), 42);
  assert.throws(() => at('10000000000'), /line 3: max_age must be 1 to 10 digits/);
  assert.throws(() => at('-1'), /max_age must be 1 to 10 digits/);
  assert.throws(() => at('1e6'), /max_age must be 1 to 10 digits/);
});

test('mode none needs no mx', () => {
  assert.deepEqual(parsePolicy('version: STSv1\nmode: none\nmax_age: 86400\n'), { version: 'STSv1', mode: 'none', mx: [], maxAge: 86400 });
});

test('errors name the line and the problem', () => {
  const base = ['version: STSv1', 'mode: enforce', 'mx: mx.example.org', 'max_age: 86400'];
  const cases: [string[], RegExp][] = [
    [base.slice(1), /^missing version field$/],
    [base.filter((l) => !l.startsWith('mode')), /^missing mode field$/],
    [base.slice(0, 3), /^missing max_age field$/],
    [['version: STSv1', 'mode: enforce', 'max_age: 1'], /^mode enforce needs at least one mx field$/],
    [['version: STSv1', 'mode: testing', 'max_age: 1'], /^mode testing needs at least one mx field$/],
    [['version: STSv2', ...base.slice(1)], /^line 1: version must be "STSv1", got "STSv2"$/],
    [['version: stsv1', ...base.slice(1)], /^line 1: version must be "STSv1"/],
    [[base[0]!, 'mode: Enforce', ...base.slice(2)], /^line 2: mode must be enforce, testing or none, got "Enforce"$/],
    [[base[0]!, 'mode: enforcing', ...base.slice(2)], /^line 2: mode must be/],
    [[...base, 'mode: testing'], /^line 5: duplicate mode field$/],
    [[...base, 'version: STSv1'], /^line 5: duplicate version field$/],
    [[...base, 'max_age: 5'], /^line 5: duplicate max_age field$/],
    [[...base.slice(0, 2), 'mx: mx..example.org', base[3]!], /^line 3: mx "mx..example.org": .*empty label/],
    [[...base.slice(0, 2), 'mx: 192.0.2.1', base[3]!], /^line 3: mx "192.0.2.1"/],
    [[...base.slice(0, 2), 'mx: a.*.example.org', base[3]!], /^line 3: mx/],
    [[...base.slice(0, 2), 'mx:', base[3]!], /^line 3: mx "":/],
    [[...base, 'this is not a field'], /^line 5: "this is not a field" is not "name: value"$/],
    [[...base, ' mode: none'], /^line 5: invalid field name " mode"$/],
  ];
  for (const [lines, re] of cases) {
    assert.throws(
      () => parsePolicy(lines.join('\n') + '\n'),
      (err: unknown) => err instanceof STSPolicyError && re.test(err.message),
      lines.join(' | '),
    );
  }
  // Field names are case-sensitive: "Mode" is an unknown field and ignored.
  assert.equal(parsePolicy([...base, 'Mode: none'].join('\n')).mode, 'enforce');
});

test('oversized and hostile policies fail fast with short messages', () => {
  assert.throws(() => parsePolicy('x'.repeat(64 * 1024 + 1)), /larger than 65536 bytes/);
  const start = performance.now();
  for (const text of [' '.repeat(60000) + 'x', 'mx:' + ' '.repeat(60000) + 'x', '\n'.repeat(60000), 'a'.repeat(60000)]) {
    assert.throws(
      () => parsePolicy(text),
      (err: unknown) => err instanceof STSPolicyError && err.message.length < 200,
    );
  }
  assert.ok(performance.now() - start < 1000);
});

test('policyLines gives back the fields of the policy', () => {
  const p = parsePolicy(rfcExample);
  assert.deepEqual(policyLines(p), rfcExample.trimEnd().split('\n').sort((a, b) => order(a) - order(b)));
  assert.deepEqual(parsePolicy(policyLines(p).join('\n')), p);
  function order(l: string) {
    return ['version', 'mode', 'mx', 'max_age'].indexOf(l.split(':')[0]!);
  }
});

const policy: Policy = { version: 'STSv1', mode: 'enforce', mx: ['mail.example.com', '*.example.net', '*.xn--bcher-kva.example'], maxAge: 86400 };

test('MX matching: exact names and one-label wildcards (RFC 8461 4.1)', () => {
  const yes = ['mail.example.com', 'MAIL.Example.COM', 'mail.example.com.', 'mx1.example.net', 'a.example.net', 'mx.bücher.example', 'mx.xn--bcher-kva.example'];
  const no = ['example.com', 'mx.mail.example.com', 'example.net', 'a.b.example.net', 'xexample.net', 'mail.example.co', '.example.net', '', 'mail..example.com', '192.0.2.1'];
  for (const h of yes) assert.equal(matchesMX(policy, h), true, h);
  for (const h of no) assert.equal(matchesMX(policy, h), false, h);
});

test('mailauth parses the same policies to the same fields', () => {
  const policies = [
    rfcExample,
    rfcExample.replaceAll('\n', '\r\n'),
    'version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 31557600\n',
    'version: STSv1\nmode: none\nmax_age: 0\n',
    'version: STSv1\nmode: enforce\nmx: a.example.org\nunknown: value\nmx: *.b.example.org\nmax_age: 300',
  ];
  for (const text of policies) {
    const ours = parsePolicy(text);
    const theirs = mailauthParse(text);
    assert.equal(ours.mode, theirs.mode);
    assert.equal(ours.maxAge, theirs.maxAge);
    assert.deepEqual(ours.mx, theirs.mx ?? []);
  }
});

test('mailauth agrees on MX matching, except that its wildcard also spans several labels', () => {
  const theirs = mailauthParse(policyLines(policy).join('\n'));
  for (const h of ['mail.example.com', 'MAIL.example.com', 'mx1.example.net', 'example.com', 'example.net', 'mx.mail.example.com', 'xexample.net']) {
    assert.equal(matchesMX(policy, h), mailauthValidate(h, theirs).valid, h);
  }
  // RFC 8461 4.1: "*.example.net" matches one label only.
  assert.equal(mailauthValidate('a.b.example.net', theirs).valid, true);
  assert.equal(matchesMX(policy, 'a.b.example.net'), false);
});

test('delivery rules for each mode and for no policy', () => {
  const enforce = deliveryRules(policy);
  assert.equal(enforce.mode, 'enforce');
  assert.equal(enforce.requireVerifiedTLS, true);
  assert.equal(enforce.mxAllowed('mail.example.com'), true);
  assert.equal(enforce.mxAllowed('evil.example.org'), false);
  assert.equal(enforce.policy, policy);

  const testing = deliveryRules({ ...policy, mode: 'testing' });
  assert.equal(testing.requireVerifiedTLS, false);
  assert.equal(testing.mxAllowed('evil.example.org'), true);

  const none = deliveryRules({ version: 'STSv1', mode: 'none', mx: [], maxAge: 60 });
  assert.equal(none.requireVerifiedTLS, false);
  assert.equal(none.mxAllowed('evil.example.org'), true);

  const absent = deliveryRules(undefined);
  assert.equal(absent.mode, 'none');
  assert.equal(absent.policy, undefined);
  assert.equal(absent.requireVerifiedTLS, false);
  assert.equal(absent.mxAllowed('anything.example'), true);
});
