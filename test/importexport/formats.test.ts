// The file formats on their own: mboxrd quoting and flag headers, Maildir info and Dovecot
// keywords, and the tar and zip codecs checked against independent tools (GNU tar, Info-ZIP
// unzip and zip, Python's tarfile and zipfile).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { tempDir, python } from '../helpers/server.js';
import { readMbox, formatMbox, asctime, parseAsctime, infoFlags, maildirInfo, formatInfo, parseDovecotKeywords, KeywordLetters, TarWriter, readTar, ZipWriter, ZipReader } from '../../src/importexport/index.js';
import { toCRLF, toLF } from '../../src/importexport/stream.js';
import { Flag } from '../../src/store/flags.js';

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

/** Feeds a buffer in small chunks, so parsers see lines and headers split anywhere. */
function chunked(b: Buffer, size = 7): AsyncIterable<Buffer> {
  return Readable.from((function* () {
    for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
  })());
}

test('mbox: From lines split messages only after a blank line; mboxrd quotes are removed once', async () => {
  const mbox = Buffer.from(
    [
      'From alice@example.org Thu Jan  4 10:00:00 2024',
      'Subject: one',
      'Status: RO',
      'X-Status: AF',
      'X-Keywords: $Forwarded project-x,',
      '  later NonJunk',
      '',
      'body',
      '>From the start',
      '>>From quoted twice',
      '>From',
      'From inside a paragraph is not a separator',
      '',
      'From MAILER-DAEMON Fri Jan  5 11:30:15 +0100 2024',
      'Subject: two',
      '',
      'second',
      '',
      'From bob@example.org Sat Jan  6 12:00:00 2024',
      'Subject: three',
      'X-Status: TD',
      '',
      '',
      '',
    ].join('\n'),
  );
  const msgs = [];
  for await (const m of readMbox(chunked(mbox))) msgs.push(m);
  assert.equal(msgs.length, 3);
  const [a, b, c] = msgs as [(typeof msgs)[0], (typeof msgs)[0], (typeof msgs)[0]];
  assert.equal(
    a.data.toString(),
    'Subject: one\n\nbody\nFrom the start\n>From quoted twice\n>From\nFrom inside a paragraph is not a separator\n',
  );
  assert.equal(a.flags, Flag.Seen | Flag.Answered | Flag.Flagged | Flag.Forwarded | Flag.NotJunk);
  assert.deepEqual(a.keywords, ['project-x', 'later']);
  assert.equal(a.mailFrom, 'alice@example.org');
  assert.equal(a.received, Date.UTC(2024, 0, 4, 10, 0, 0));
  assert.equal(b.data.toString(), 'Subject: two\n\nsecond\n');
  assert.equal(b.flags, 0);
  assert.equal(b.mailFrom, undefined);
  assert.equal(b.received, Date.UTC(2024, 0, 5, 10, 30, 15));
  // Header and empty body; the final blank line is the separator.
  assert.equal(c.data.toString(), 'Subject: three\n\n');
  assert.equal(c.flags, Flag.Draft | Flag.Deleted);

  await assert.rejects(async () => {
    for await (const _ of readMbox(chunked(Buffer.from('Subject: no From line\n\nbody\n'))));
  }, /not an mbox file/);
});

test('mbox: writing quotes every >*From line and puts flag headers last; reading gives back the stored message', async () => {
  const stored = toCRLF(Buffer.from('From: a@example.org\nSubject: hi\n\nFrom here\n>From there\n>>>From far\nFromage\nend'));
  const out = formatMbox({ data: stored, flags: Flag.Seen | Flag.Flagged | Flag.Junk, keywords: ['todo'], received: Date.UTC(2024, 1, 29, 23, 59, 58), mailFrom: 'a@example.org' });
  assert.equal(
    out.toString(),
    'From a@example.org Thu Feb 29 23:59:58 2024\nFrom: a@example.org\nSubject: hi\nStatus: RO\nX-Status: F\nX-Keywords: $Junk todo\n\n>From here\n>>From there\n>>>>From far\nFromage\nend\n\n',
  );
  const back = [];
  for await (const m of readMbox(chunked(Buffer.concat([out, out])))) back.push(m);
  assert.equal(back.length, 2);
  // The writer added the final line break the stored message lacked; everything else returns.
  assert.deepEqual(toCRLF(back[0]!.data), Buffer.concat([stored, Buffer.from('\r\n')]));
  assert.equal(back[0]!.flags, Flag.Seen | Flag.Flagged | Flag.Junk);
  assert.deepEqual(back[0]!.keywords, ['todo']);
  assert.equal(back[0]!.received, Date.UTC(2024, 1, 29, 23, 59, 58));
});

test('asctime dates and line ending conversion', () => {
  for (const t of [0, Date.UTC(1999, 11, 31, 23, 59, 59), Date.UTC(2024, 6, 4, 1, 2, 3)]) assert.equal(parseAsctime(asctime(t)), t);
  assert.equal(asctime(Date.UTC(2024, 0, 4, 10, 0, 0)), 'Thu Jan  4 10:00:00 2024');
  assert.equal(parseAsctime('Mon Jul  1 08:00 2024 -0200'), Date.UTC(2024, 6, 1, 10, 0, 0));
  assert.equal(parseAsctime('garbage'), undefined);
  const mixed = Buffer.from('a\nb\r\nc\rd\n');
  assert.equal(toCRLF(mixed).toString(), 'a\r\nb\r\nc\rd\r\n');
  assert.equal(toLF(toCRLF(mixed)).toString(), 'a\nb\nc\rd\n');
  const crlf = Buffer.from('x\r\n');
  assert.equal(toCRLF(crlf), crlf, 'already CRLF: the same buffer');
});

test('maildir: info flags, Dovecot keyword letters, and letters assigned on export', () => {
  assert.equal(maildirInfo('1700000000.M1P2.host:2,FRSa'), 'FRSa');
  assert.equal(maildirInfo('1700000000.M1P2.host!2,S'), 'S');
  assert.equal(maildirInfo('1700000000.M1P2.host'), '');
  const names = parseDovecotKeywords('0 $Junk\n1 todo\n2 Work Stuff\n30 toolarge\nnonsense\n');
  assert.deepEqual([...names], [
    [0, '$Junk'],
    [1, 'todo'],
    [2, 'Work Stuff'],
  ]);
  // "Work Stuff" is not an IMAP atom and is dropped; "d" has no name.
  assert.deepEqual(infoFlags('DFPRSTabcd', names), {
    flags: Flag.Draft | Flag.Flagged | Flag.Forwarded | Flag.Answered | Flag.Seen | Flag.Deleted | Flag.Junk,
    keywords: ['todo'],
    unknownLetters: 'd',
  });
  const kl = new KeywordLetters();
  assert.equal(formatInfo(Flag.Seen | Flag.Answered | Flag.Forwarded | Flag.NotJunk, ['zeta', 'alpha'], kl), ':2,PRSabc');
  assert.equal(formatInfo(Flag.Draft, ['alpha'], kl), ':2,Dc');
  assert.equal(kl.file(), '0 $NotJunk\n1 zeta\n2 alpha\n');
  const many = new KeywordLetters();
  formatInfo(0, Array.from({ length: 30 }, (_, i) => `k${i}`), many);
  assert.equal(many.names.length, 26);
  assert.equal(many.dropped, 4);
});

const longName = `${'deep/'.repeat(30)}${'x'.repeat(90)}/message-with-a-long-name`;
const unicodeName = 'Postvak IN/Überweisungen/größe.mbox';

test('tar: our archive extracts with GNU tar, long and non-ASCII names included', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'out.tar.gz');
  const gz = createGzip();
  const done = pipeline(gz, fs.createWriteStream(file));
  const w = new TarWriter(gz);
  const files: [string, Buffer][] = [
    ['short.txt', Buffer.from('hello\n')],
    [longName, Buffer.alloc(1000, 'a')],
    [unicodeName, Buffer.from('From x\n')],
    [`${'p'.repeat(150)}/${'n'.repeat(99)}`, Buffer.from('prefix and name fields')],
    ['empty', Buffer.alloc(0)],
  ];
  await w.dir('adir', { mtime: Date.UTC(2020, 0, 1) });
  for (const [n, d] of files) await w.file(n, d.length, n === 'short.txt' ? Readable.from([d.subarray(0, 2), d.subarray(2)]) : d, { mtime: Date.UTC(2021, 5, 6, 7, 8, 9) });
  await w.finish();
  gz.end();
  await done;
  const x = path.join(dir, 'x');
  fs.mkdirSync(x);
  execFileSync('tar', ['-xzf', file, '-C', x]);
  for (const [n, d] of files) {
    assert.deepEqual(fs.readFileSync(path.join(x, n)), d, n);
    if (n === 'short.txt') assert.equal(fs.statSync(path.join(x, n)).mtimeMs, Date.UTC(2021, 5, 6, 7, 8, 9));
  }
  assert.ok(fs.statSync(path.join(x, 'adir')).isDirectory());
  // And back through our reader.
  const seen = new Map<string, Buffer>();
  for await (const e of readTar(fs.createReadStream(file).pipe(createGunzip()))) if (e.type === 'file') seen.set(e.name, await collect(e.body));
  assert.deepEqual([...seen.keys()].sort(), files.map(([n]) => n).sort());
  for (const [n, d] of files) assert.deepEqual(seen.get(n), d);
});

test('tar: archives made by GNU tar (gnu and posix formats) and Python read back, skipping unread data', async () => {
  const dir = tempDir();
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, path.dirname(longName)), { recursive: true });
  fs.writeFileSync(path.join(src, longName), 'long');
  fs.mkdirSync(path.join(src, path.dirname(unicodeName)), { recursive: true });
  fs.writeFileSync(path.join(src, unicodeName), Buffer.alloc(70_000, 'u'));
  fs.writeFileSync(path.join(src, 'b.txt'), 'bee');
  for (const format of ['gnu', 'posix', 'ustar']) {
    const file = path.join(dir, `${format}.tar`);
    try {
      execFileSync('tar', [`--format=${format}`, '-cf', file, '-C', src, '.'], { stdio: 'pipe' });
    } catch (e) {
      // ustar cannot hold the long name; that is tar's refusal, not ours.
      assert.equal(format, 'ustar', String(e));
      continue;
    }
    const got = new Map<string, string>();
    for await (const e of readTar(fs.createReadStream(file, { highWaterMark: 1000 }))) {
      // Bodies of the larger file are left unread: the reader must skip them.
      if (e.type === 'file' && e.size < 1000) got.set(e.name.replace(/^\.\//, ''), (await collect(e.body)).toString());
      else if (e.type === 'file') got.set(e.name.replace(/^\.\//, ''), `skipped ${e.size}`);
    }
    assert.equal(got.get(longName), 'long', format);
    assert.equal(got.get('b.txt'), 'bee', format);
    assert.equal(got.get(unicodeName), 'skipped 70000', format);
  }
  const py = path.join(dir, 'py.tar');
  await python(`import tarfile, io
with tarfile.open(${JSON.stringify(py)}, 'w', format=tarfile.PAX_FORMAT) as t:
    for n, d in [('a/' * 60 + 'f', b'pax path'), ('café.txt', b'utf-8 name')]:
        i = tarfile.TarInfo(n); i.size = len(d); t.addfile(i, io.BytesIO(d))
`);
  const got: string[] = [];
  for await (const e of readTar(fs.createReadStream(py))) got.push(`${e.name}=${(await collect(e.body)).toString()}`);
  assert.deepEqual(got, [`${'a/'.repeat(60)}f=pax path`, 'café.txt=utf-8 name']);
});

test('zip: our archive passes unzip -t and reads in Python; Zip64 with more than 65535 entries', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'out.zip');
  const out = fs.createWriteStream(file);
  const w = new ZipWriter(out);
  const big = Buffer.from(Array.from({ length: 20000 }, (_, i) => `line ${i}\n`).join(''));
  await w.dir('mail/cur');
  await w.file('mail/cur/1700000000.M1.host,S=5:2,S', Buffer.from('hello'), { mtime: Date.UTC(2023, 10, 14, 22, 13, 20) });
  await w.file(unicodeName, Readable.from([big.subarray(0, 100), big.subarray(100)]));
  await w.file('stored.bin', Buffer.from([0, 1, 2, 255]), { store: true });
  await w.finish();
  await new Promise<void>((r) => out.end(r));
  execFileSync('unzip', ['-tq', file]);
  const listing = await python(`import zipfile, json, sys
z = zipfile.ZipFile(${JSON.stringify(file)})
print(json.dumps({i.filename: [len(z.read(i)), i.date_time[0]] for i in z.infolist() if not i.is_dir()}))`);
  assert.deepEqual(JSON.parse(listing), { 'mail/cur/1700000000.M1.host,S=5:2,S': [5, 2023], [unicodeName]: [big.length, new Date().getFullYear()], 'stored.bin': [4, new Date().getFullYear()] });
  const r = await ZipReader.open(file);
  try {
    const e = r.entries.find((x) => x.name === unicodeName)!;
    assert.deepEqual(await collect(r.read(e)), big);
    assert.equal(r.entries[1]!.mtime, Date.UTC(2023, 10, 14, 22, 13, 20));
    assert.ok(r.entries[0]!.dir);
  } finally {
    await r.close();
  }

  // Zip64: the entry count does not fit the classic end record.
  const many = path.join(dir, 'many.zip');
  const mout = fs.createWriteStream(many);
  const mw = new ZipWriter(mout);
  const n = 70_000;
  for (let i = 0; i < n; i++) await mw.file(`m/${i}`, Buffer.from(String(i)), { store: true });
  await mw.finish();
  await new Promise<void>((res) => mout.end(res));
  assert.equal((await python(`import zipfile; z = zipfile.ZipFile(${JSON.stringify(many)}); print(len(z.namelist()), z.read('m/69999').decode())`)).trim(), `${n} 69999`);
  const mr = await ZipReader.open(many);
  try {
    assert.equal(mr.entries.length, n);
    assert.equal((await collect(mr.read(mr.entries[n - 1]!))).toString(), String(n - 1));
  } finally {
    await mr.close();
  }
});

test('zip: archives from Info-ZIP zip and Python (forced Zip64) read back; damage is detected', async () => {
  const dir = tempDir();
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'Inbox', 'cur'), { recursive: true });
  fs.writeFileSync(path.join(src, 'Inbox', 'cur', '1.host:2,S'), 'Subject: x\n\nbody\n'.repeat(100));
  fs.writeFileSync(path.join(src, 'Sent.mbox'), 'From a@b Thu Jan  4 10:00:00 2024\nSubject: y\n\nz\n\n');
  const infozip = path.join(dir, 'infozip.zip');
  execFileSync('zip', ['-qr', infozip, '.'], { cwd: src });
  const py = path.join(dir, 'py.zip');
  await python(`import zipfile
with zipfile.ZipFile(${JSON.stringify(py)}, 'w', zipfile.ZIP_DEFLATED) as z:
    with z.open('Inbox/cur/1.host:2,S', 'w', force_zip64=True) as f: f.write(b'Subject: x\\n\\nbody\\n' * 100)
    z.writestr('Sent.mbox', b'From a@b Thu Jan  4 10:00:00 2024\\nSubject: y\\n\\nz\\n\\n')
`);
  for (const f of [infozip, py]) {
    const r = await ZipReader.open(f);
    try {
      const files = r.entries.filter((e) => !e.dir);
      const got = Object.fromEntries(await Promise.all(files.map(async (e) => [e.name, (await collect(r.read(e))).length])));
      assert.deepEqual(got, { 'Inbox/cur/1.host:2,S': 1700, 'Sent.mbox': 49 }, f);
    } finally {
      await r.close();
    }
  }

  // A flipped byte in compressed data: the CRC check (or inflate) catches it.
  const bad = path.join(dir, 'bad.zip');
  const data = fs.readFileSync(py);
  const r0 = await ZipReader.open(py);
  const entry = r0.entries.find((e) => e.name === 'Inbox/cur/1.host:2,S')!;
  await r0.close();
  const at = entry.offset + 30 + 'Inbox/cur/1.host:2,S'.length + 20 + 5;
  data[at] = data[at]! ^ 0xff;
  fs.writeFileSync(bad, data);
  const rb = await ZipReader.open(bad);
  try {
    await assert.rejects(collect(rb.read(rb.entries.find((e) => e.name === entry.name)!)), /CRC-32|invalid|incorrect|unpacks|declared/);
  } finally {
    await rb.close();
  }

  // A declared size smaller than what the data unpacks to is refused while unpacking.
  const bomb = path.join(dir, 'bomb.zip');
  const b = fs.readFileSync(infozip);
  const rr = await ZipReader.open(infozip);
  const e = rr.entries.find((x) => x.name === 'Inbox/cur/1.host:2,S')!;
  await rr.close();
  // The central directory entry's uncompressed size field.
  const cd = b.indexOf(Buffer.concat([Buffer.from([0x50, 0x4b, 1, 2])]), e.offset + 30);
  let p = cd;
  while (b.toString('latin1', p + 46, p + 46 + b.readUInt16LE(p + 28)) !== e.name) p += 46 + b.readUInt16LE(p + 28) + b.readUInt16LE(p + 30) + b.readUInt16LE(p + 32);
  b.writeUInt32LE(100, p + 24);
  fs.writeFileSync(bomb, b);
  const rz = await ZipReader.open(bomb);
  try {
    await assert.rejects(collect(rz.read(rz.entries.find((x) => x.name === e.name)!)), /more than the 100 bytes declared/);
  } finally {
    await rz.close();
  }
});
