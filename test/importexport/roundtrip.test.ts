// Import and export against an account store: Maildirs written by Python's mailbox module
// (an independent implementation of the Maildir conventions), mbox files with mboxrd
// quoting and flag headers, archives in all formats, and memory use with 10,000 messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { tempDir, python } from '../helpers/server.js';
import { Store, type Account } from '../../src/store/store.js';
import { Flag, flagList } from '../../src/store/flags.js';
import { importMaildir, importMbox, importArchive, exportToDir, exportAccount, openAccountReadOnly, readTar, ZipReader, type ArchiveFormat, type MailFormat } from '../../src/importexport/index.js';
import { toCRLF } from '../../src/importexport/stream.js';
import { createGunzip } from 'node:zlib';

function newStore(): Store {
  return new Store(path.join(tempDir(), 'data'));
}

/** A mailbox's messages as comparable values: stored bytes, flags, keywords, received second. */
async function state(acc: Account, mailbox: string): Promise<{ data: string; flags: string[]; received: number }[]> {
  const mb = acc.mailbox(mailbox);
  assert.ok(mb, `mailbox ${mailbox}`);
  return Promise.all(
    acc.messages(mb.id).map(async (m) => ({
      data: (await acc.readMessage(m)).toString('latin1'),
      flags: flagList(m.flags, m.keywords).map((f) => f.toLowerCase()).sort(),
      received: Math.floor(m.received / 1000),
    })),
  );
}

function message(i: number, extra = ''): string {
  return `From: Sender ${i} <s${i}@example.org>\nTo: jane@example.test\nSubject: message ${i}\nMessage-ID: <m${i}@example.org>\n${extra}\nHello ${i}.\nFrom the desk of nobody.\n>From quoted\n\nRegards\n`;
}

test('a Maildir written by Python imports with flags, keywords and dates, and exports back byte for byte', async () => {
  const dir = tempDir();
  const md = path.join(dir, 'Maildir');
  // Letters: a $Junk, b todo, c $NotJunk; Dovecot's file names them.
  const specs: { sub: 'cur' | 'new'; flags: string; expect: string[] }[] = [
    { sub: 'new', flags: '', expect: [] },
    { sub: 'cur', flags: '', expect: [] },
    { sub: 'cur', flags: 'S', expect: ['\\seen'] },
    { sub: 'cur', flags: 'FRS', expect: ['\\answered', '\\flagged', '\\seen'] },
    { sub: 'cur', flags: 'DT', expect: ['\\deleted', '\\draft'] },
    { sub: 'cur', flags: 'PSa', expect: ['$forwarded', '$junk', '\\seen'] },
    { sub: 'cur', flags: 'Sbc', expect: ['$notjunk', '\\seen', 'todo'] },
    { sub: 'new', flags: '', expect: [] },
  ];
  await python(
    `import mailbox, json, os
specs = json.loads(os.environ['SPECS'])
md = mailbox.Maildir(os.environ['MD'], create=True)
for i, s in enumerate(specs):
    m = mailbox.MaildirMessage(os.environ['MSG%d' % i].encode())
    m.set_subdir(s['sub'])
    if s['flags']: m.set_flags(s['flags'])
    m.set_date(1700000000 + i * 3600 + 0.5)
    md.add(m)
open(os.path.join(os.environ['MD'], 'tmp', '1.unfinished'), 'w').write('partial delivery')
`,
    { SPECS: JSON.stringify(specs), MD: md, ...Object.fromEntries(specs.map((_, i) => [`MSG${i}`, message(i)])) },
  );
  fs.writeFileSync(path.join(md, 'dovecot-keywords'), '0 $Junk\n1 todo\n2 $NotJunk\n');
  const originals = new Map<string, { data: Buffer; mtime: number; flags: string }>();
  for (const sub of ['cur', 'new']) {
    for (const f of fs.readdirSync(path.join(md, sub))) {
      const p = path.join(md, sub, f);
      originals.set(fs.readFileSync(p, 'utf8'), { data: fs.readFileSync(p), mtime: fs.statSync(p).mtimeMs, flags: f.split(':2,')[1] ?? '' });
    }
  }

  const store = newStore();
  try {
    const acc = store.account('jane');
    const progress: string[] = [];
    const r = await importMaildir(acc, md, 'Imported/Python', { onProgress: (p) => progress.push(`${p.imported}${p.done ? ' done' : ''}`), progressEvery: 3 });
    assert.equal(r.messages, specs.length);
    // Messages are stored in batches; progress is reported after a batch, and at the end.
    assert.deepEqual(progress, [`${specs.length}`, `${specs.length} done`]);
    const got = await state(acc, 'Imported/Python');
    assert.ok(acc.mailbox('Imported'), 'parent mailbox created');
    // Python names files by delivery time, so import order is the order they were written.
    got.forEach((g, i) => {
      assert.equal(g.data, toCRLF(Buffer.from(message(i))).toString('latin1'), `message ${i}`);
      assert.deepEqual(g.flags, specs[i]!.expect, `flags of message ${i}`);
      assert.equal(g.received, 1700000000 + i * 3600);
    });

    const out = path.join(dir, 'export');
    const e = await exportToDir(acc, { format: 'maildir', mailbox: 'imported/python' }, out);
    assert.deepEqual(e, { mailboxes: 1, messages: specs.length, droppedKeywords: 0 });
    // Python reads the export: the same messages, flags and keyword letters.
    const seen = JSON.parse(
      await python(
        `import mailbox, json, os
md = mailbox.Maildir(os.environ['OUT'], factory=None, create=False)
kw = dict(l.split(' ', 1) for l in open(os.path.join(os.environ['OUT'], 'dovecot-keywords')).read().splitlines())
print(json.dumps([[m.get_payload(), ''.join(sorted(c for c in m.get_flags() if c.isupper())), sorted(kw[str(ord(c) - 97)] for c in m.get_flags() if c.islower()), m.get_date()] for k, m in sorted(md.items(), key=lambda x: x[1].get_date())]))`,
        { OUT: path.join(out, 'Imported/Python') },
      ),
    ) as [string, string, string[], number][];
    assert.equal(seen.length, specs.length);
    seen.forEach(([, upper, kws, date], i) => {
      const expect = specs[i]!.expect;
      assert.equal(upper, ['D', 'F', 'P', 'R', 'S', 'T'].filter((l) => expect.includes({ D: '\\draft', F: '\\flagged', P: '$forwarded', R: '\\answered', S: '\\seen', T: '\\deleted' }[l]!)).join(''));
      assert.deepEqual(kws.map((k) => k.toLowerCase()).sort(), expect.filter((f) => !f.startsWith('\\') && f !== '$forwarded'));
      assert.equal(Math.floor(date), 1700000000 + i * 3600);
    });
    // Every exported file has exactly the bytes of its original.
    for (const f of fs.readdirSync(path.join(out, 'Imported/Python', 'cur'))) {
      const data = fs.readFileSync(path.join(out, 'Imported/Python', 'cur', f));
      const orig = originals.get(data.toString('utf8'));
      assert.ok(orig, `exported file ${f} matches an original`);
      assert.deepEqual(data, orig.data);
      assert.equal(Math.floor(fs.statSync(path.join(out, 'Imported/Python', 'cur', f)).mtimeMs / 1000), Math.floor(orig.mtime / 1000));
    }
  } finally {
    store.close();
  }
});

test('an mbox file round-trips byte for byte; mbox files written by Python keep their flags', async () => {
  const dir = tempDir();
  const text = [
    'From alice@example.org Thu Jan  4 10:00:00 2024',
    'From: alice@example.org',
    'Subject: quoted lines',
    'Status: RO',
    'X-Status: AF',
    'X-Keywords: $Forwarded $Junk project',
    '',
    '>From the start of a line',
    '>>From once quoted',
    '>>>From twice quoted',
    'Fromage',
    '',
    'From MAILER-DAEMON Fri Jan  5 11:30:15 2024',
    'From: bob@example.org',
    'Subject: unread',
    'Status: O',
    '',
    'body',
    '',
    'From carol@example.org Sat Jan  6 12:00:00 2024',
    'From: carol@example.org',
    'Subject: draft deleted',
    'Status: RO',
    'X-Status: TD',
    '',
    'x',
    '',
    '',
  ].join('\n');
  const file = path.join(dir, 'in.mbox');
  fs.writeFileSync(file, text);
  const store = newStore();
  try {
    const acc = store.account('jane');
    const r = await importMbox(acc, file, 'Old Mail');
    assert.equal(r.messages, 3);
    const got = await state(acc, 'Old Mail');
    assert.equal(got[0]!.data, 'From: alice@example.org\r\nSubject: quoted lines\r\n\r\nFrom the start of a line\r\n>From once quoted\r\n>>From twice quoted\r\nFromage\r\n');
    assert.deepEqual(got[0]!.flags, ['$forwarded', '$junk', '\\answered', '\\flagged', '\\seen', 'project']);
    assert.deepEqual(got[1]!.flags, []);
    assert.deepEqual(got[2]!.flags, ['\\deleted', '\\draft', '\\seen']);
    assert.equal(got[2]!.received, Date.UTC(2024, 0, 6, 12) / 1000);
    await exportToDir(acc, { format: 'mbox', mailbox: 'Old Mail' }, path.join(dir, 'out'));
    assert.equal(fs.readFileSync(path.join(dir, 'out', 'Old Mail.mbox'), 'utf8'), text);
  } finally {
    store.close();
  }

  // Python writes the flag headers into the message, and quotes "From " the mboxo way.
  const py = path.join(dir, 'py.mbox');
  await python(
    `import mailbox, email.utils
mb = mailbox.mbox(${JSON.stringify(py)})
for i, flags in enumerate(['RO', 'O', 'ROAF', 'ROD']):
    m = mailbox.mboxMessage('From: p%d@example.org\\nSubject: py %d\\n\\nFrom Python with love\\n' % (i, i))
    m.set_from('p%d@example.org' % i, (2020, 2, 29, 13, 14, 15, 5, 60, 0))
    m.set_flags(flags)
    mb.add(m)
mb.flush()
`,
  );
  const store2 = newStore();
  try {
    const acc = store2.account('jane');
    await importArchive(acc, fs.createReadStream(py), { mailbox: 'FromPython' });
    const got = await state(acc, 'FromPython');
    assert.deepEqual(
      got.map((g) => g.flags),
      [['\\seen'], [], ['\\answered', '\\flagged', '\\seen'], ['\\deleted', '\\seen']],
    );
    assert.ok(got.every((g, i) => g.data === `From: p${i}@example.org\r\nSubject: py ${i}\r\n\r\nFrom Python with love\r\n`));
    assert.ok(got.every((g) => g.received === Date.UTC(2020, 1, 29, 13, 14, 15) / 1000));
  } finally {
    store2.close();
  }
});

/** An account with nested, non-ASCII and empty mailboxes, flags and keywords. */
async function filledAccount(store: Store): Promise<Account> {
  const acc = store.account('src');
  const md = path.join(store.dataDir, '..', 'seed');
  const mailboxes: [string, number][] = [
    ['Inbox', 5],
    ['Lists/work', 4],
    ['Überweisungen', 2],
    ['Archive', 0],
  ];
  let n = 0;
  for (const [name, count] of mailboxes) {
    const dir = path.join(md, name);
    for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
    fs.writeFileSync(path.join(dir, 'dovecot-keywords'), '0 $Junk\n1 Later\n2 $MDNSent\n');
    for (let i = 0; i < count; i++, n++) {
      const info = ['', 'S', 'FRS', 'Sa', 'PSb', 'DTc'][n % 6];
      const f = path.join(dir, 'cur', `${1700000000 + n}.M${n}.seed:2,${info}`);
      fs.writeFileSync(f, message(n, n % 2 ? 'X-Bin: \x80\n' : ''));
      fs.utimesSync(f, 1700000000 + n * 60, 1700000000 + n * 60);
    }
    await importMaildir(acc, dir, name);
  }
  return acc;
}

async function toBuffer(fn: (out: Writable) => Promise<unknown>): Promise<Buffer> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  const ended = new Promise((r) => out.on('end', r));
  await fn(out);
  await ended;
  return Buffer.concat(parts);
}

test('archives: zip, tgz and tar, in Maildir and mbox format, of all mailboxes or one, import back to the same messages', async () => {
  const store = newStore();
  try {
    const src = await filledAccount(store);
    const names = ['Inbox', 'Lists/work', 'Überweisungen', 'Archive', 'Lists'];
    const want = new Map(await Promise.all(names.map(async (n) => [n, await state(src, n)] as const)));
    let i = 0;
    for (const archive of ['zip', 'tgz', 'tar'] as ArchiveFormat[]) {
      for (const format of ['maildir', 'mbox'] as MailFormat[]) {
        const data = await toBuffer((out) => exportAccount(src, { format, archive }, out));
        const dst = store.account(`all-${i++}`);
        const r = await importArchive(dst, (async function* () {
          for (let p = 0; p < data.length; p += 4096) yield data.subarray(p, p + 4096);
        })());
        assert.deepEqual(r.skipped, [], `${archive} ${format}`);
        assert.equal(r.messages, 11, `${archive} ${format}`);
        for (const n of names) assert.deepEqual(await state(dst, n), want.get(n), `${archive} ${format} ${n}`);

        // One mailbox: only its maildir or mbox file is in the archive.
        const one = await toBuffer((out) => exportAccount(src, { format, archive, mailbox: 'lists/WORK' }, out));
        const entries = await archiveNames(one, archive);
        assert.ok(entries.length > 0 && entries.every((e) => e.startsWith('Lists/work')), `${archive} ${format}: ${entries.join(' ')}`);
        const dst1 = store.account(`one-${i}`);
        await importArchive(dst1, [one]);
        assert.deepEqual(await state(dst1, 'Lists/work'), want.get('Lists/work'));
        assert.equal(dst1.messages(dst1.mailbox('Inbox')!.id).length, 0);
      }
    }
  } finally {
    store.close();
  }
});

async function archiveNames(data: Buffer, archive: ArchiveFormat): Promise<string[]> {
  if (archive === 'zip') {
    const f = path.join(tempDir(), 'a.zip');
    fs.writeFileSync(f, data);
    const r = await ZipReader.open(f);
    await r.close();
    return r.entries.map((e) => e.name);
  }
  const names: string[] = [];
  for await (const e of readTar(archive === 'tgz' ? Readable.from([data]).pipe(createGunzip()) : [data])) names.push(e.name);
  return names;
}

test('export reads a read-only index; an unknown mailbox and a missing message file are errors', async () => {
  const store = newStore();
  try {
    const src = await filledAccount(store);
    const ro = openAccountReadOnly(src.dir);
    try {
      const r = await exportToDir(ro, { format: 'mbox' }, path.join(tempDir(), 'ro'));
      assert.equal(r.messages, 11);
      await assert.rejects(exportToDir(ro, { format: 'mbox', mailbox: 'Nope' }, path.join(tempDir(), 'x')), /no mailbox "Nope"/);
      fs.rmSync(src.messagePath(src.messages(src.mailbox('Inbox')!.id)[0]!.id));
      await assert.rejects(exportToDir(ro, { format: 'maildir', mailbox: 'Inbox' }, path.join(tempDir(), 'y')), /message file of message \d+ \(uid 1\)/);
    } finally {
      ro.close();
    }
  } finally {
    store.close();
  }
});

test('10,000 messages import from a Maildir and from an mbox file in bounded memory', async (t) => {
  const dir = tempDir();
  const n = 10_000;
  const filler = ('All work and no play makes a dull message body. '.repeat(20) + '\n').repeat(20);
  const md = path.join(dir, 'big');
  for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(md, sub), { recursive: true });
  const mbox = fs.createWriteStream(path.join(dir, 'big.mbox'));
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const m = message(i) + filler;
    bytes += m.length;
    fs.writeFileSync(path.join(md, 'cur', `${1600000000 + i}.M${i}.big:2,${i % 3 ? 'S' : ''}`), m);
    if (!mbox.write(`From MAILER-DAEMON Thu Jan  4 10:00:00 2024\n${m}\n`)) await new Promise<void>((r) => mbox.once('drain', () => r()));
  }
  await new Promise<void>((r) => mbox.end(r));
  const store = newStore();
  try {
    const acc = store.account('big');
    for (const [what, run] of [
      ['Maildir', () => importMaildir(acc, md, 'FromMaildir')],
      ['mbox', () => importMbox(acc, path.join(dir, 'big.mbox'), 'FromMbox')],
    ] as const) {
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const t0 = Date.now();
      const r = await run().finally(() => clearInterval(sampler));
      peak = Math.max(peak, process.memoryUsage().rss);
      const mb = (x: number) => Math.round(x / (1 << 20));
      const line = `${what}: ${r.messages} messages, ${mb(bytes)} MB, ${Date.now() - t0} ms, RSS ${mb(before)} MB before, peak ${mb(peak)} MB (+${mb(peak - before)} MB)`;
      t.diagnostic(line);
      console.log(line);
      assert.equal(r.messages, n);
      // Holding the messages would take more than their size; streaming takes a few batches' worth.
      assert.ok(peak - before < 120 << 20, line);
    }
    const c = acc.counts(acc.mailbox('FromMbox')!.id);
    assert.equal(c.messages, n);
    assert.equal(acc.counts(acc.mailbox('FromMaildir')!.id).unseen, Math.ceil(n / 3));
  } finally {
    store.close();
  }
});
