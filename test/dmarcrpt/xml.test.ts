// The XML parser used for aggregate reports: well-formed input, refused constructs, limits and
// time on hostile input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeXML, localName, parseXML, XMLError } from '../../src/dmarcrpt/xml.js';

test('elements, attributes, text and self-closing tags', () => {
  const root = parseXML(`<?xml version="1.0" encoding="UTF-8"?>
<!-- a report -->
<r:feedback xmlns:r="urn:example" id='7' note = "a b">
  <a>one</a><b/><c x="1"></c>
  <?pi ignored?>
  <d>two <!-- c --> parts</d>
</r:feedback>
`);
  assert.equal(root.name, 'r:feedback');
  assert.equal(localName(root), 'feedback');
  assert.deepEqual({ ...root.attrs }, { 'xmlns:r': 'urn:example', id: '7', note: 'a b' });
  assert.deepEqual(
    root.children.map((c) => [c.name, c.text]),
    [
      ['a', 'one'],
      ['b', ''],
      ['c', ''],
      ['d', 'two  parts'],
    ],
  );
  assert.equal(root.children[2]!.attrs.x, '1');
});

test('predefined entities, character references and CDATA', () => {
  const root = parseXML('<a t="&quot;&apos;&lt;">&lt;b&gt; &amp; &#65;&#x42;&#x1F600; <![CDATA[<raw> & ]]]]></a>');
  assert.equal(root.attrs.t, `"'<`);
  assert.equal(root.text, '<b> & AB\u{1F600} <raw> & ]]');
});

test('line ends read as LF; attribute white space as spaces', () => {
  const root = parseXML('<a v="x\ty\r\nz&#10;">1\r\n2\r3</a>');
  assert.equal(root.text, '1\n2\n3');
  // XML 1.0 3.3.3: a character reference keeps its character.
  assert.equal(root.attrs.v, 'x y z\n');
});

test('bytes: UTF-8 with and without BOM, declared Latin-1, UTF-16 with BOM', () => {
  assert.equal(parseXML(Buffer.from('\uFEFF<a>é</a>')).text, 'é');
  assert.equal(parseXML(Buffer.from('<a>ü</a>')).text, 'ü');
  assert.equal(parseXML(Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>', 'latin1')).text, 'é');
  assert.equal(parseXML(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<a>ß</a>', 'utf16le')])).text, 'ß');
  assert.throws(() => parseXML(Buffer.from('<?xml version="1.0" encoding="x-unheard-of"?><a/>')), /unsupported encoding/);
});

test('document type declarations are refused, so no entity can be defined', () => {
  const laughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>`;
  assert.throws(() => parseXML(laughs), /document type declarations are not allowed/);
  const external = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>';
  assert.throws(() => parseXML(external), /document type declarations are not allowed/);
  assert.throws(() => parseXML('<r><!ENTITY x "y"></r>'), /declarations are not allowed/);
  assert.throws(() => parseXML('<r>&x;</r>'), /unknown or invalid reference &x;/);
});

test('malformed documents give errors with a position', () => {
  const bad: [string, RegExp][] = [
    ['', /no root element/],
    ['   ', /no root element/],
    ['text', /text before the root element/],
    ['<a>', /not closed/],
    ['<a></b>', /<\/b> closes <a>/],
    ['<a><b></a></b>', /closes/],
    ['<a/><b/>', /content after the root element/],
    ['<a/>trailing', /content after the root element/],
    ['<a x="1" x="2"/>', /duplicate attribute x/],
    ['<a x=1/>', /quoted attribute value/],
    ['<a x="<"/>', /"<" in attribute value/],
    ['<a x="1"y="2"/>', /expected white space/],
    ['<a>&#0;</a>', /invalid reference/],
    ['<a>&#xD800;</a>', /invalid reference/],
    ['<a>&#x110000;</a>', /invalid reference/],
    ['<a>&amp</a>', /malformed reference/],
    ['<a>& b</a>', /malformed reference/],
    ['<a>\x01</a>', /control character/],
    ['<a><!-- never closed</a>', /unterminated comment/],
    ['<a><![CDATA[ never closed</a>', /unterminated CDATA/],
    ['<a x="never closed/>', /unterminated attribute value/],
    ['<1a/>', /expected a name/],
  ];
  for (const [doc, message] of bad) {
    assert.throws(() => parseXML(doc), (e: unknown) => e instanceof XMLError && message.test(e.message) && /line \d+, column \d+/.test(e.message), doc);
  }
  assert.throws(() => parseXML('<a>\n\n  <b></c></a>'), /line 3, column 9/);
});

test('limits: size, depth, element count and attributes', () => {
  assert.throws(() => parseXML(`<a>${'x'.repeat(2000)}</a>`, { maxBytes: 1000 }), /larger than 1000/);
  assert.throws(() => parseXML(Buffer.alloc(1001, 0x20), { maxBytes: 1000 }), /larger than 1000/);
  const deep = (n: number) => '<a>'.repeat(n) + '</a>'.repeat(n);
  assert.equal(localName(parseXML(deep(64))), 'a');
  assert.throws(() => parseXML(deep(65)), /nested deeper than 64/);
  // Very deep input stops at the limit, long before the stack could run out.
  assert.throws(() => parseXML(deep(1_000_000)), /nested deeper than 64/);
  assert.throws(() => parseXML(`<r>${'<e/>'.repeat(100)}</r>`, { maxElements: 100 }), /more than 100 elements/);
  assert.equal(parseXML(`<r>${'<e/>'.repeat(99)}</r>`, { maxElements: 100 }).children.length, 99);
  const attrs = Array.from({ length: 65 }, (_, i) => `a${i}="1"`).join(' ');
  assert.throws(() => parseXML(`<r ${attrs}/>`), /more than 64 attributes/);
});

test('hostile input is handled in linear time', () => {
  const t0 = performance.now();
  const big = 4 * 1024 * 1024;
  parseXML(`<a>${'&amp;'.repeat(big / 5)}</a>`);
  parseXML(`<a v="${'&lt;'.repeat(big / 4)}"/>`);
  parseXML(`<a>${'<b>x</b>'.repeat(big / 8)}</a>`);
  assert.throws(() => parseXML(`<a>${'<!--'.repeat(big / 4)}</a>`), /unterminated comment/);
  assert.throws(() => parseXML(`<a>${'<![CDATA['.repeat(big / 9)}`), /unterminated CDATA/);
  assert.throws(() => parseXML(`<a ${'b'.repeat(big)}`), /expected "="/);
  assert.throws(() => parseXML(`<a>${'&'.repeat(big)}</a>`), /malformed reference/);
  assert.throws(() => parseXML(`${' '.repeat(big)}x`), /text before/);
  assert.throws(() => parseXML(`<a>${'\n'.repeat(big)}<b></c>`), /line 4194305/);
  const ms = performance.now() - t0;
  assert.ok(ms < 10_000, `${ms} ms`);
});

test('escapeXML output parses back to the same text', () => {
  const text = 'a < b && c > "d" \'e\' \r\n f\u0001g \u{1F600}';
  const root = parseXML(`<a v="${escapeXML(text)}">${escapeXML(text)}</a>`);
  assert.equal(root.text, text.replace('\u0001', '\uFFFD'));
  assert.equal(escapeXML('x\u0000y\uFFFEz'), 'x\uFFFDy\uFFFDz');
});
