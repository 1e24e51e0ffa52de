// Messages composed by the webmail: header encoding, text and attachments, read back with the
// server's own MIME parser and decoders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeMessage, parseAddresses, quotedPrintable, type Composed } from '../../src/webmail/compose.js';
import { parseMessage } from '../../src/message/part.js';
import { parseHeader, decodeHeaderText } from '../../src/message/header.js';
import { displayMailbox, isGroup, parseAddressList } from '../../src/message/address.js';
import { decodedBody, decodedText, decodeTransfer } from '../../src/message/decode.js';
import { partName } from '../../src/webmail/messages.js';

const base: Composed = {
  from: { name: 'Jörg Müller', address: 'jane@example.test' },
  to: parseAddresses('"Bob, the Builder" <bob@example.test>, plain@remote.example'),
  cc: [],
  bcc: parseAddresses('hidden@remote.example'),
  subject: 'Grüße – a subject long enough that its encoded form has to be folded over several lines',
  text: 'Hello Bob,\nline two with ünïcode ✓\n' + 'x'.repeat(120) + '\ntrailing space \n',
  messageId: '<abc@mail.example.test>',
  date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
  inReplyTo: '<parent@remote.example>',
  references: ['<root@remote.example>', '<parent@remote.example>'],
  attachments: [],
};

test('header fields: encoded words decode to the text, addresses parse back, lines stay short', () => {
  const msg = composeMessage(base, { bcc: false });
  const s = msg.toString('latin1');
  assert.ok(s.split('\r\n').every((l) => l.length <= 78), s);
  assert.doesNotMatch(s, /[^\x00-\x7f]/, 'the message is 7-bit');
  const h = parseHeader(msg);
  assert.equal(decodeHeaderText(h.get('subject')!.value), base.subject);
  const from = parseAddressList(h.get('from')!.value)[0]!;
  assert.ok(!isGroup(from));
  assert.deepEqual(displayMailbox(from), { name: 'Jörg Müller', address: 'jane@example.test' });
  const to = parseAddressList(h.get('to')!.value).map((a) => (isGroup(a) ? undefined : displayMailbox(a)));
  assert.deepEqual(to, [
    { name: 'Bob, the Builder', address: 'bob@example.test' },
    { name: '', address: 'plain@remote.example' },
  ]);
  assert.equal(h.get('bcc'), undefined, 'Bcc is not sent');
  assert.equal(h.get('message-id')!.value, '<abc@mail.example.test>');
  assert.equal(h.get('in-reply-to')!.value, '<parent@remote.example>');
  assert.equal(h.get('references')!.value, '<root@remote.example> <parent@remote.example>');
  assert.equal(h.get('date')!.value, 'Fri, 2 Jan 2026 03:04:05 +0000');
  // The copy kept in Sent names the Bcc recipients.
  assert.equal(parseHeader(composeMessage(base, { bcc: true })).get('bcc')!.value, 'hidden@remote.example');
});

test('text is quoted-printable when needed and decodes to what was written, with CRLF', () => {
  const msg = composeMessage(base, { bcc: false });
  const root = parseMessage(msg);
  assert.equal(root.type, 'text');
  assert.equal(root.encoding, 'quoted-printable');
  assert.equal(decodedText(msg, root), base.text.replace(/\n/g, '\r\n') + '\r\n');
  const ascii = composeMessage({ ...base, text: 'plain\nascii' }, { bcc: false });
  assert.equal(parseMessage(ascii).encoding, '7bit');
  // Encoder: "=" and trailing white space are encoded, soft breaks keep lines at 76.
  const q = quotedPrintable('a=b \r\n' + 'é'.repeat(40));
  assert.match(q, /^a=3Db=20\r\n/);
  assert.ok(q.split('\r\n').every((l) => l.length <= 76));
  assert.equal(decodeTransfer(Buffer.from(q), 'quoted-printable').toString('utf8'), 'a=b \r\n' + 'é'.repeat(40));
});

test('attachments: multipart/mixed, base64, file names in RFC 2231 and back', () => {
  const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256));
  const fwd = Buffer.from('From: a@b.example\r\nSubject: inner\r\n\r\nforwarded body\r\n');
  const msg = composeMessage(
    {
      ...base,
      attachments: [
        { name: 'Résumé – très long nom de fichier avec des caractères accentués.pdf', type: 'application/pdf', data },
        { name: 'plain "quoted" name.txt', type: 'text/plain', data: Buffer.from('attached text\n') },
        { name: 'original.eml', type: 'message/rfc822', data: fwd },
      ],
    },
    { bcc: false },
  );
  const root = parseMessage(msg);
  assert.equal(`${root.type}/${root.subtype}`, 'multipart/mixed');
  const [text, pdf, txt, eml] = root.parts!;
  assert.equal(text!.type, 'text');
  assert.equal(pdf!.encoding, 'base64');
  assert.equal(partName(pdf!, '1'), 'Résumé – très long nom de fichier avec des caractères accentués.pdf');
  assert.ok(decodedBody(msg, pdf!).equals(data));
  assert.equal(partName(txt!, '2'), 'plain "quoted" name.txt');
  assert.equal(decodedBody(msg, txt!).toString(), 'attached text\n');
  // A forwarded message stays message/rfc822 with an identity encoding (RFC 2046 5.2.1).
  assert.equal(`${eml!.type}/${eml!.subtype}`, 'message/rfc822');
  assert.equal(eml!.encoding, '7bit');
  assert.equal(decodeHeaderText(eml!.message!.envelope!.subject!), 'inner');
  assert.ok(msg.toString('latin1').split('\r\n').every((l) => l.length <= 78));
});

test('address fields: names, groups and errors', () => {
  assert.deepEqual(parseAddresses('Ann <ann@x.example>, team: b@y.example, c@z.example;'), [
    { name: 'Ann', address: 'ann@x.example' },
    { address: 'b@y.example' },
    { address: 'c@z.example' },
  ]);
  assert.deepEqual(parseAddresses(''), []);
  assert.throws(() => parseAddresses('ann@x.example, bob'), /invalid address "bob"/);
  assert.throws(() => parseAddresses('ann@'), /invalid address/);
});
