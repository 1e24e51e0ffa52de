import { test } from 'node:test';
import assert from 'node:assert/strict';
import { displayMailbox, parseAddressList, type Mailbox } from '../../src/message/address.js';
import { textToBytes } from '../../src/message/header.js';

test('RFC 5322 A.1.2: display names, quoted strings, angle addresses', () => {
  assert.deepEqual(parseAddressList('"Joe Q. Public" <john.q.public@example.com>'), [{ name: 'Joe Q. Public', mailbox: 'john.q.public', host: 'example.com' }]);
  assert.deepEqual(parseAddressList('Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>'), [
    { name: 'Mary Smith', mailbox: 'mary', host: 'x.test' },
    { mailbox: 'jdoe', host: 'example.org' },
    { name: 'Who?', mailbox: 'one', host: 'y.test' },
  ]);
  assert.deepEqual(parseAddressList('<boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>'), [
    { mailbox: 'boss', host: 'nil.test' },
    { name: 'Giant; "Big" Box', mailbox: 'sysservices', host: 'example.net' },
  ]);
});

test('RFC 5322 A.1.3: groups', () => {
  assert.deepEqual(parseAddressList('A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;'), [
    {
      group: 'A Group',
      members: [
        { name: 'Ed Jones', mailbox: 'c', host: 'a.test' },
        { mailbox: 'joe', host: 'where.test' },
        { name: 'John', mailbox: 'jdoe', host: 'one.test' },
      ],
    },
  ]);
  assert.deepEqual(parseAddressList('Undisclosed recipients:;'), [{ group: 'Undisclosed recipients', members: [] }]);
  // a group left open, followed by nothing
  assert.deepEqual(parseAddressList('Team: a@b.test'), [{ group: 'Team', members: [{ mailbox: 'a', host: 'b.test' }] }]);
});

test('RFC 5322 A.5: comments and white space', () => {
  assert.deepEqual(parseAddressList('Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>'), [{ name: 'Pete', mailbox: 'pete', host: 'silly.test' }]);
  assert.deepEqual(parseAddressList("A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)"), [
    {
      group: 'A Group',
      members: [
        { name: 'Chris Jones', mailbox: 'c', host: 'public.example' },
        { mailbox: 'joe', host: 'example.org' },
        { name: 'John', mailbox: 'jdoe', host: 'one.test' },
      ],
    },
  ]);
});

test('RFC 5322 4.4: obsolete routes, spaced local parts and domain literals', () => {
  assert.deepEqual(parseAddressList('Joe <@relay1.example,@relay2.example:joe@example.com>'), [{ name: 'Joe', adl: '@relay1.example,@relay2.example', mailbox: 'joe', host: 'example.com' }]);
  assert.deepEqual(parseAddressList('john . doe @ example . com'), [{ mailbox: 'john.doe', host: 'example.com' }]);
  assert.deepEqual(parseAddressList('<"quoted local"@[192.0.2.7]>'), [{ mailbox: 'quoted local', host: '[192.0.2.7]' }]);
  assert.deepEqual(parseAddressList('mary@example.com (Mary Smith)'), [{ name: 'Mary Smith', mailbox: 'mary', host: 'example.com' }]);
});

test('keeps encoded-words raw and decodes them for display', () => {
  const m = parseAddressList('=?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <joerg@example.de>')[0] as Mailbox;
  assert.deepEqual(m, { name: '=?UTF-8?B?SsO2cmcgTcO8bGxlcg==?=', mailbox: 'joerg', host: 'example.de' });
  assert.deepEqual(displayMailbox(m!), { name: 'Jörg Müller', address: 'joerg@example.de' });
});

test('RFC 6532: UTF-8 names and addresses in a header byte string', () => {
  const m = parseAddressList(textToBytes('Jörg <jörg@bücher.example>'))[0] as Mailbox;
  assert.deepEqual(Buffer.from(m!.mailbox!, 'latin1').toString('utf8'), 'jörg');
  assert.deepEqual(displayMailbox(m!), { name: 'Jörg', address: 'jörg@bücher.example' });
});

test('survives garbage without throwing', () => {
  assert.deepEqual(parseAddressList(''), []);
  assert.deepEqual(parseAddressList(' , ,, '), []);
  // an unterminated quoted string runs to the end
  assert.deepEqual(parseAddressList('"unterminated <a@b.test>'), [{ mailbox: 'unterminated <a@b.test>' }]);
  assert.deepEqual(parseAddressList('Name <a@b.test'), [{ name: 'Name', mailbox: 'a', host: 'b.test' }]);
  assert.deepEqual(parseAddressList('just-a-name'), [{ mailbox: 'just-a-name' }]);
  assert.deepEqual(parseAddressList('<a@b.test> trailing words, c@d.test'), [
    { mailbox: 'a', host: 'b.test' },
    { mailbox: 'c', host: 'd.test' },
  ]);
  assert.deepEqual(parseAddressList('(((((unclosed comment a@b.test'), []);
  const many = parseAddressList('a@b.test, '.repeat(50_000) + '"' + '\\'.repeat(100_000));
  assert.equal(many.length, 50_001);
  assert.equal((many[50_000] as Mailbox).mailbox!.length, 50_000);
});
