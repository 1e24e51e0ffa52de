// Tokenizer and subject pass tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenize, htmlText, words } from '../../src/junk/tokenize.js';
import * as subjectpass from '../../src/junk/subjectpass.js';

test('words: lower-cased, no numbers, no random-looking strings', () => {
  assert.deepEqual(words("Hello WORLD, it's 2026: Grüße an die Zwölf! x1 ab qwrtzpsdf abc123def4567"), ['hello', 'world', "it's", 'grüße', 'die', 'zwölf']);
});

test('html: visible text, alt texts and link hosts; no scripts or styles', () => {
  const h = htmlText('<html><head><title>t</title><style>.a{color:red}</style></head><body><p>Cheap&nbsp;pills &amp; more</p><script>var hidden=1</script><a href="https://track.spam.example/x">click</a><img alt="big savings" src="x"></body></html>');
  assert.deepEqual(words(h.text), ['cheap', 'pills', 'more', 'click', 'big', 'savings']);
  assert.deepEqual(h.hosts, ['track.spam.example']);
});

test('tokens: From domain, Subject words, text and html parts with word pairs, decoded', () => {
  const msg = Buffer.from(
    [
      'From: "Shop" <offers@mail.shop.example>',
      'Subject: =?utf-8?q?Gro=C3=9Fe_Rabatte?=',
      'MIME-Version: 1.0',
      'Content-Type: multipart/alternative; boundary=b',
      '',
      '--b',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Sch=C3=B6ne Angebote heute, see https://www.shop.example/deal',
      '--b',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('<p>Limited <b>offer</b></p>').toString('base64'),
      '--b--',
      '',
    ].join('\r\n'),
  );
  const t = tokenize(msg);
  for (const want of ['from:mail.shop.example', 'from:shop.example', 'subject:große', 'subject:rabatte', 'schöne', 'angebote', 'schöne angebote', 'url:shop.example', 'limited', 'limited offer']) {
    assert.ok(t.has(want), `${want} in ${[...t].join('|')}`);
  }
  assert.ok(!t.has('offer schöne'), 'no pairs across parts');
});

test('subject pass tokens: valid for the From address and period only', () => {
  const key = Buffer.alloc(32, 7);
  const now = Date.UTC(2026, 0, 1);
  const tok = subjectpass.generate(key, 'Alice@Example.org', now);
  assert.match(tok, /^[A-Za-z0-9_-]{27}$/);
  const h = 3600_000;
  assert.ok(subjectpass.verify(key, 'alice@example.org', `Re: hello (pass ${tok})`, now + h, 12 * h));
  assert.ok(!subjectpass.verify(key, 'bob@example.org', `hello (pass ${tok})`, now + h, 12 * h), 'other sender');
  assert.ok(!subjectpass.verify(key, 'alice@example.org', `hello (pass ${tok})`, now + 13 * h, 12 * h), 'expired');
  assert.ok(!subjectpass.verify(Buffer.alloc(32, 8), 'alice@example.org', `hello (pass ${tok})`, now + h, 12 * h), 'other key');
  const tampered = tok.slice(0, 26) + (tok[26] === 'A' ? 'B' : 'A');
  assert.ok(!subjectpass.verify(key, 'alice@example.org', `hello (pass ${tampered})`, now + h, 12 * h), 'tampered');
  assert.match(subjectpass.explanation(tok, 12 * h), new RegExp(`"\\(pass ${tok}\\)".*12 hours`));
});
