import { test } from 'node:test';
import assert from 'node:assert/strict';
import { format, isSPFRecord, parse, parseMacroString, SPFSyntaxError, type Directive } from '../../src/spf/parse.js';

test('recognizes SPF records by their version section (RFC 7208 4.5)', () => {
  assert.equal(isSPFRecord('v=spf1'), true);
  assert.equal(isSPFRecord('v=spf1 -all'), true);
  assert.equal(isSPFRecord('V=SPF1 -all'), true);
  assert.equal(isSPFRecord('v=spf10 -all'), false);
  assert.equal(isSPFRecord(' v=spf1 -all'), false);
  assert.equal(isSPFRecord('v=spf1\t-all'), false);
  assert.equal(isSPFRecord('spf2.0/pra -all'), false);
});

test('parses every mechanism with qualifiers and CIDR lengths', () => {
  const r = parse('v=spf1 +all -include:_spf.example.com ~a ?a:h.example.com/24//64 mx/30 mx:m.example.com//126 ptr ptr:example.org ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}.e.example.com');
  const d = r.terms as Directive[];
  assert.deepEqual(
    d.map((t) => [t.qualifier, t.mechanism, t.ip, t.cidr4, t.cidr6]),
    [
      ['+', 'all', undefined, undefined, undefined],
      ['-', 'include', undefined, undefined, undefined],
      ['~', 'a', undefined, undefined, undefined],
      ['?', 'a', undefined, 24, 64],
      ['+', 'mx', undefined, 30, undefined],
      ['+', 'mx', undefined, undefined, 126],
      ['+', 'ptr', undefined, undefined, undefined],
      ['+', 'ptr', undefined, undefined, undefined],
      ['+', 'ip4', '192.0.2.0', 24, undefined],
      ['+', 'ip6', '2001:db8::', undefined, 32],
      ['+', 'exists', undefined, undefined, undefined],
    ],
  );
  assert.deepEqual(d[1]!.domain, [{ type: 'literal', text: '_spf.example.com' }]);
  assert.equal(d[2]!.domain, undefined);
  assert.deepEqual(d[10]!.domain, [
    { type: 'macro', letter: 'i', urlEscape: false, reverse: false, delimiters: '' },
    { type: 'literal', text: '.e.example.com' },
  ]);
});

test('parses redirect, exp and unknown modifiers', () => {
  const r = parse('v=spf1 redirect=_spf.example.com exp=explain._spf.%{d} moo.cow-far_out=man:dog/cat x-foo=');
  assert.deepEqual(r.redirect, [{ type: 'literal', text: '_spf.example.com' }]);
  assert.deepEqual(r.exp, [{ type: 'literal', text: 'explain._spf.' }, { type: 'macro', letter: 'd', urlEscape: false, reverse: false, delimiters: '' }]);
  assert.deepEqual(
    r.terms.map((t) => (t.type === 'modifier' ? t.name : '')),
    ['redirect', 'exp', 'moo.cow-far_out', 'x-foo'],
  );
});

test('names are case-insensitive and come out in lower case', () => {
  const r = parse('v=spf1 IP4:192.0.2.1 Include:Example.COM REDIRECT=Other.Example');
  assert.equal(format(r), 'v=spf1 ip4:192.0.2.1 include:Example.COM redirect=Other.Example');
  assert.ok(r.redirect);
});

test('parses macro transformers and delimiters (RFC 7208 7.1)', () => {
  assert.deepEqual(parseMacroString('%{l1r-}%{D2R}%{ir.}%{s=,/_+}', 'domain'), [
    { type: 'macro', letter: 'l', urlEscape: false, keep: 1, reverse: true, delimiters: '-' },
    { type: 'macro', letter: 'd', urlEscape: true, keep: 2, reverse: true, delimiters: '' },
    { type: 'macro', letter: 'i', urlEscape: false, reverse: true, delimiters: '.' },
    { type: 'macro', letter: 's', urlEscape: false, reverse: false, delimiters: '=,/_+' },
  ]);
  assert.deepEqual(parseMacroString('a%%b%_c%-d', 'domain'), [
    { type: 'literal', text: 'a' },
    { type: 'escape', text: '%%' },
    { type: 'literal', text: 'b' },
    { type: 'escape', text: '%_' },
    { type: 'literal', text: 'c' },
    { type: 'escape', text: '%-' },
    { type: 'literal', text: 'd' },
  ]);
});

test('explain-strings may contain spaces and the letters c, r and t; domain-specs may not', () => {
  assert.equal(parseMacroString('%{c} at %{r} on %{t}', 'explain').length, 5);
  for (const letter of ['c', 'r', 't', 'C']) {
    assert.throws(() => parseMacroString(`%{${letter}}.example.com`, 'domain'), /only allowed in explanation/);
  }
  assert.throws(() => parseMacroString('a b', 'domain'), SPFSyntaxError);
  assert.throws(() => parse('v=spf1 exists:%{c}.example.com'), SPFSyntaxError);
});

test('format gives back an equivalent record', () => {
  const records = [
    'v=spf1 -all',
    'v=spf1 a mx ptr ~all',
    'v=spf1 ?a:h.example.com/24//64 mx:m.example.com//126 ip4:192.0.2.0/24 ip6:2001:db8::/32 ip6:::1 -all',
    'v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}.%{D2}.%%%_%-.example.com redirect=%{d}.example.net exp=e.%{o}',
    'v=spf1 unknown=%{c}%{R}x -ptr:example.org',
  ];
  for (const text of records) {
    assert.equal(format(parse(text)), text);
    assert.deepEqual(parse(format(parse(text))), parse(text));
  }
  assert.equal(format(parse('V=SPF1   +all  ')), 'v=spf1 all');
});

test('syntax errors are reported with the term and the reason', () => {
  const cases: [string, RegExp][] = [
    ['v=spf1 foo', /unknown mechanism "foo" in term "foo"/],
    ['v=spf1 -', /unknown mechanism ""/],
    ['v=spf1 all:x', /"all" takes no argument/],
    ['v=spf1 all/24', /"all" takes no argument/],
    ['v=spf1 include', /"include" needs ":"/],
    ['v=spf1 include:', /missing domain-spec/],
    ['v=spf1 exists', /"exists" needs ":"/],
    ['v=spf1 exists:', /missing domain-spec/],
    ['v=spf1 a:', /missing domain-spec/],
    ['v=spf1 a/', /invalid dual-cidr-length/],
    ['v=spf1 a//', /invalid dual-cidr-length/],
    ['v=spf1 a/33', /invalid CIDR length "\/33"/],
    ['v=spf1 a//129', /invalid CIDR length "\/129"/],
    ['v=spf1 a/024', /invalid CIDR length/],
    ['v=spf1 mx/24/64', /invalid dual-cidr-length/],
    ['v=spf1 ptr/24', /"ptr" takes only/],
    ['v=spf1 ip4', /"ip4" needs ":"/],
    ['v=spf1 ip4:', /invalid IPv4 network ""/],
    ['v=spf1 ip4:192.0.2', /invalid IPv4 network/],
    ['v=spf1 ip4:192.0.2.256', /invalid IPv4 network/],
    ['v=spf1 ip4:192.0.02.1', /invalid IPv4 network/],
    ['v=spf1 ip4:2001:db8::1', /invalid IPv4 network/],
    ['v=spf1 ip4:192.0.2.1/33', /invalid CIDR length/],
    ['v=spf1 ip4:192.0.2.1/', /invalid CIDR length/],
    ['v=spf1 ip4:192.0.2.1//32', /invalid CIDR length/],
    ['v=spf1 ip6:192.0.2.1', /invalid IPv6 network/],
    ['v=spf1 ip6:2001:db8::1/129', /invalid CIDR length/],
    ['v=spf1 ip6:2001:db8::1//64', /invalid CIDR length/],
    ['v=spf1 ip6:fe80::1%eth0', /invalid IPv6 network/],
    ['v=spf1 a:1.2.3.4', /must end with a macro or a dot and a top-level label/],
    ['v=spf1 a:example', /must end with/],
    ['v=spf1 include:example.com-', /must end with/],
    ['v=spf1 include:example.-com', /must end with/],
    ['v=spf1 include:example.com..', /must end with/],
    ['v=spf1 include:%{d}.', /must end with/],
    ['v=spf1 exists:%(ir).sbl.example.org', /"%" at offset 0 is not followed by/],
    ['v=spf1 exists:%{ir.sbl.example.org', /no closing "}"/],
    ['v=spf1 exists:%{x}.example.org', /unknown macro letter "x"/],
    ['v=spf1 exists:%{d0}.example.org', /keeps zero parts/],
    ['v=spf1 exists:%{dr2}.example.org', /invalid macro "%\{dr2\}"/],
    ['v=spf1 exists:%{}.example.org', /invalid macro/],
    ['v=spf1 exists:a%.example.org', /is not followed by/],
    ['v=spf1 exists:caf\u00e9.example.org', /invalid character/],
    ['v=spf1 redirect=', /missing domain-spec/],
    ['v=spf1 exp=', /missing domain-spec/],
    ['v=spf1 redirect=a.example redirect=b.example', /more than one redirect modifier/],
    ['v=spf1 exp=a.example exp=b.example', /more than one exp modifier/],
    ['v=spf1 foo=%{x}', /unknown macro letter/],
    ['v=spf1 +redirect=a.example', /unknown mechanism "redirect=a.example"/],
    ['v=spf1 -all\t', /invalid|unknown/],
    ['spf1 -all', /does not start with "v=spf1"/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parse(text), (err: unknown) => err instanceof SPFSyntaxError && message.test(err.message), text);
  }
});

test('domain-specs may end in a macro, a macro escape or a top-level label with a hyphen', () => {
  for (const spec of ['%{d}', 'x.%-', 'a.b-c', 'a.xn--p1ai.', 'a.1-2', '_spf.example.com', 'foo/bar.example.com']) {
    assert.doesNotThrow(() => parse(`v=spf1 include:${spec}`), spec);
  }
});

test('error messages shorten long terms', () => {
  const err = (() => {
    try {
      parse(`v=spf1 ${'x'.repeat(10000)}`);
    } catch (e) {
      return e as Error;
    }
  })();
  assert.ok(err && err.message.length < 300);
});

test('arbitrary input either parses, round-trips through format, or fails with SPFSyntaxError', () => {
  // Deterministic generator over the characters that matter to the grammar.
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pieces = ['a', 'mx', 'ptr', 'ip4', 'ip6', 'all', 'include', 'exists', 'redirect', 'exp', ':', '/', '//', '=', '.', '%', '{', '}', '%{d}', '%{ir}', '-', '+', '~', '?', ' ', '1', '24', '192.0.2.1', '::1', 'x.com', 'é', '\t'];
  let parsed = 0;
  for (let i = 0; i < 3000; i++) {
    let text = 'v=spf1 ';
    for (let j = rand(12); j >= 0; j--) text += pieces[rand(pieces.length)];
    try {
      const r = parse(text);
      parsed++;
      assert.deepEqual(parse(format(r)), r, text);
    } catch (err) {
      assert.ok(err instanceof SPFSyntaxError, `${text}: ${String(err)}`);
    }
  }
  assert.ok(parsed > 100);
});

test('pathological records parse in bounded time', () => {
  const started = Date.now();
  for (const text of [`v=spf1 a:${'/1'.repeat(30000)}`, `v=spf1 a:/${'1'.repeat(60000)}x`, `v=spf1 exists:${'%{d}'.repeat(15000)}`, `v=spf1 include:${'a.'.repeat(30000)}1`]) {
    try {
      parse(text);
    } catch (err) {
      assert.ok(err instanceof SPFSyntaxError);
    }
  }
  assert.ok(Date.now() - started < 2000);
});
