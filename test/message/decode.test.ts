import { test } from 'node:test';
import assert from 'node:assert/strict';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { decodedBody, decodedSize, decodedText, decodeTransfer } from '../../src/message/decode.js';
import { allParts, parseMessage, type Part } from '../../src/message/part.js';
import { getParam } from '../../src/message/params.js';
import { bytesToText, decodeHeaderText } from '../../src/message/header.js';

const b = (s: string) => Buffer.from(s, 'latin1');

test('base64: RFC 4648 vectors, line breaks and garbage ignored', () => {
  for (const [enc, dec] of [
    ['', ''],
    ['Zg==', 'f'],
    ['Zm8=', 'fo'],
    ['Zm9v', 'foo'],
    ['Zm9vYg==', 'foob'],
    ['Zm9vYmE=', 'fooba'],
    ['Zm9vYmFy', 'foobar'],
  ]) {
    assert.equal(decodeTransfer(b(enc!), 'base64').toString('latin1'), dec);
  }
  assert.equal(decodeTransfer(b('Zm9v\r\nYmFy\r\n'), 'base64').toString(), 'foobar');
  assert.equal(decodeTransfer(b('Zm9v!!*YmF\r\ny'), 'base64').toString(), 'foobar');
  assert.equal(decodeTransfer(b('Zm9vYg'), 'base64').toString(), 'foob'); // missing padding
  // "=" ends a quantum: concatenated encodings decode one after the other
  assert.equal(decodeTransfer(b('Zg==Zm8=Zm9v'), 'base64').toString(), 'ffofoo');
});

test('quoted-printable: RFC 2045 6.7 rules, leniently', () => {
  const qp = (s: string) => decodeTransfer(b(s), 'quoted-printable').toString('latin1');
  assert.equal(qp('caf=C3=A9 =c3=a9'), 'caf\xc3\xa9 \xc3\xa9');
  assert.equal(qp('soft=\r\nbreak and soft= \r\nwith space'), 'softbreak and softwith space');
  assert.equal(qp('bare=\nlf'), 'barelf');
  assert.equal(qp('trailing   \r\nspaces\t\r\nend  '), 'trailing\r\nspaces\r\nend');
  assert.equal(qp('keep =ZZ and = alone and =4'), 'keep =ZZ and = alone and =4');
  assert.equal(qp('end ='), 'end ');
});

test('identity and unknown encodings return the bytes unchanged', () => {
  const raw = b('x\r\ny\xff');
  for (const e of [undefined, '7bit', '8bit', 'binary', 'x-uuencode']) assert.deepEqual(decodeTransfer(raw, e), raw);
});

test('decoded size matches the decoded body (RFC 3516 BINARY.SIZE)', () => {
  const msg = b('Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n!!\r\n--x\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db=\r\nc\r\n--x--\r\n');
  const [p1, p2] = parseMessage(msg).parts!;
  assert.deepEqual(decodedBody(msg, p1!), Buffer.from([0, 1, 2, 255]));
  assert.equal(decodedSize(msg, p1!), 4);
  assert.equal(decodedBody(msg, p2!).toString(), 'a=bc');
  assert.equal(decodedSize(msg, p2!), 4);
});

test('text with charset conversion; unknown charsets are guessed', () => {
  const part = (cs: string | null, body: string, cte = '8bit') => {
    const msg = b(`Content-Type: text/plain${cs ? `; charset=${cs}` : ''}\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n${body}`);
    return decodedText(msg, parseMessage(msg));
  };
  assert.equal(part('iso-8859-1', 'caf\xe9'), 'café');
  assert.equal(part('windows-1252', '\x80 5'), '€ 5');
  assert.equal(part('koi8-r', '\xf0\xd2\xc9\xd7\xc5\xd4'), 'Привет');
  assert.equal(part('utf-8', 'caf=C3=A9', 'quoted-printable'), 'café');
  assert.equal(part('x-made-up', '\xc3\xa9t\xc3\xa9'), 'été'); // valid UTF-8
  assert.equal(part('x-made-up', '\xe9t\xe9'), 'été'); // else windows-1252
  assert.equal(part(null, 'caf\xe9'), 'café'); // undeclared 8-bit
  assert.equal(part('utf-7', '+AGEAYgBj-'), '+AGEAYgBj-'); // refused, not interpreted
  assert.equal(part('utf-8', 'bad \xff byte'), 'bad \ufffd byte');
});

test('decodes what nodemailer composes, as an independent oracle', async () => {
  const pdf = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
  const text = 'Grüße, ça va? '.repeat(40) + '\n€ and trailing space ';
  const composer = new MailComposer({
    from: 'Jörg Müller <joerg@example.de>',
    to: 'Zoë <zoe@example.com>',
    subject: 'Grüße aus Köln',
    text,
    html: '<p>Grüße</p>',
    attachments: [
      { filename: 'Überweisung € rate.pdf', content: pdf },
      { filename: 'note.txt', content: 'x'.repeat(300) + '\n', contentType: 'text/plain; charset=utf-8' },
    ],
  });
  const msg: Buffer = await composer.compile().build();
  const root = parseMessage(msg);
  assert.equal(decodeHeaderText(root.envelope!.subject!), 'Grüße aus Köln');
  const leaves = allParts(root).filter((p: Part) => !p.parts);
  assert.deepEqual(
    leaves.map((p) => `${p.type}/${p.subtype}`),
    ['text/plain', 'text/html', 'application/pdf', 'text/plain'],
  );
  assert.equal(decodedText(msg, leaves[0]!), text);
  assert.equal(decodedText(msg, leaves[1]!), '<p>Grüße</p>');
  assert.deepEqual(decodedBody(msg, leaves[2]!), pdf);
  assert.equal(decodedSize(msg, leaves[2]!), pdf.length);
  assert.equal(bytesToText(getParam(leaves[2]!.dispositionParams, 'filename')!), 'Überweisung € rate.pdf');
  assert.equal(decodeHeaderText(getParam(leaves[2]!.params, 'name')!), 'Überweisung € rate.pdf');
  assert.equal(decodedText(msg, leaves[3]!), 'x'.repeat(300) + '\n');
});
