// Non-ASCII mailbox names with Python's imaplib, an IMAP4rev1 client: modified UTF-7 on the
// wire (RFC 3501 5.1.3) until the client enables UTF8=ACCEPT (RFC 6855), then UTF-8.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, python, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

let srv: TestServer;
before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.close();
});

// Modified UTF-7 written out in the script, independent of the server's implementation.
const script = String.raw`
import base64, imaplib, json, os, re, ssl

def enc(s):
    out, run = [], []
    def flush():
        if run:
            b = ''.join(run).encode('utf-16-be')
            out.append('&' + base64.b64encode(b).decode().rstrip('=').replace('/', ',') + '-')
            run.clear()
    for ch in s:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append('&-' if ch == '&' else ch)
        else:
            run.append(ch)
    flush()
    return ''.join(out)

def dec(s):
    def one(m):
        t = m.group(1)
        if t == '':
            return '&'
        t = t.replace(',', '/')
        return base64.b64decode(t + '=' * (-len(t) % 4)).decode('utf-16-be')
    return re.sub(r'&([^-]*)-', one, s)

def names(data, utf8):
    out = []
    for line in data:
        m = re.match(rb'^\(([^)]*)\) "/" "?(.*?)"?$', line)
        raw = m.group(2)
        out.append({'attrs': m.group(1).decode(), 'raw': raw.decode('utf-8' if utf8 else 'ascii'), 'name': raw.decode('utf-8') if utf8 else dec(raw.decode('ascii'))})
    return out

ctx = ssl.create_default_context(cadata=os.environ['CA'])
res = {}
m = imaplib.IMAP4_SSL('localhost', int(os.environ['PORT']), ssl_context=ctx)
m.login('jane@example.test', 'secret-pass')
for n in ['Entwürfe', '日本語/子', 'R&D', 'Ünïcödé/Ordner/€uro']:
    typ, _ = m.create(enc(n))
    res.setdefault('create', []).append(typ)
typ, data = m.list('""', '*')
res['list7'] = names(data, False)
typ, data = m.list('""', enc('日本語') + '/%')
res['pct7'] = names(data, False)
typ, data = m.select(enc('日本語/子'))
res['select7'] = typ
m.unselect()
typ, data = m.status(enc('Entwürfe'), '(MESSAGES UIDNEXT)')
res['status7'] = data[0].decode('ascii')
typ, data = m.lsub('""', '*')
res['lsub7'] = typ
m.subscribe(enc('Entwürfe'))
typ, data = m.lsub('""', enc('Entw') + '*')
res['lsub7'] = names(data, False)
typ, data = m.rename(enc('R&D'), '"' + enc('Forschung & Entwicklung') + '"')
res['rename7'] = typ
typ, data = m.enable('UTF8=ACCEPT')
res['enable'] = typ
typ, data = m.list('""', '*')
res['list8'] = names(data, True)
typ, _ = m.create('"Überblick"')
res['create8'] = typ
typ, data = m.status('"Entwürfe"', '(MESSAGES)')
res['status8'] = data[0].decode('utf-8')
m.logout()

m = imaplib.IMAP4_SSL('localhost', int(os.environ['PORT']), ssl_context=ctx)
m.login('jane@example.test', 'secret-pass')
typ, data = m.list('""', '*berblick')
res['after8'] = names(data, False)
typ, data = m.delete(enc('Ünïcödé/Ordner/€uro'))
res['delete7'] = typ
m.logout()
print(json.dumps(res))
`;

interface Listed {
  attrs: string;
  raw: string;
  name: string;
}

test('imaplib creates, lists, selects and renames non-ASCII mailboxes in modified UTF-7, then UTF-8', async () => {
  const out = JSON.parse(await python(script, { PORT: srv.ports.imaps, CA: srv.certPEM })) as Record<string, unknown>;
  assert.deepEqual(out.create, ['OK', 'OK', 'OK', 'OK']);
  const list7 = out.list7 as Listed[];
  const by7 = new Map(list7.map((l) => [l.name, l]));
  // Raw names on the wire are modified UTF-7, ASCII only.
  assert.equal(by7.get('Entwürfe')?.raw, 'Entw&APw-rfe');
  assert.equal(by7.get('日本語')?.raw, '&ZeVnLIqe-');
  assert.equal(by7.get('日本語/子')?.raw, '&ZeVnLIqe-/&W1A-');
  assert.equal(by7.get('R&D')?.raw, 'R&-D');
  assert.equal(by7.get('Ünïcödé/Ordner/€uro')?.raw, '&ANw-n&AO8-c&APY-d&AOk-/Ordner/&IKw-uro');
  assert.ok(list7.every((l) => /^[\x20-\x7e]*$/.test(l.raw)));
  // Parents were created, and children attributes are right.
  assert.match(by7.get('日本語')!.attrs, /\\HasChildren/);
  assert.match(by7.get('日本語/子')!.attrs, /\\HasNoChildren/);
  assert.match(by7.get('Ünïcödé/Ordner')!.attrs, /\\HasChildren/);
  assert.deepEqual(
    (out.pct7 as Listed[]).map((l) => l.name),
    ['日本語/子'],
  );
  assert.equal(out.select7, 'OK');
  assert.equal(out.status7, '"Entw&APw-rfe" (MESSAGES 0 UIDNEXT 1)');
  assert.deepEqual(
    (out.lsub7 as Listed[]).map((l) => l.raw),
    ['Entw&APw-rfe'],
  );
  assert.equal(out.rename7, 'OK');
  assert.equal(out.enable, 'OK');
  // After ENABLE UTF8=ACCEPT, names are UTF-8 on the wire.
  const by8 = new Map((out.list8 as Listed[]).map((l) => [l.raw, l]));
  for (const n of ['Entwürfe', '日本語', '日本語/子', 'Forschung & Entwicklung', 'Ünïcödé/Ordner/€uro']) assert.ok(by8.has(n), `${n} in ${[...by8.keys()].join(', ')}`);
  assert.ok(!by8.has('R&D'));
  assert.equal(out.create8, 'OK');
  assert.equal(out.status8, '"Entwürfe" (MESSAGES 0)');
  // The mailbox created with a UTF-8 name reads back in modified UTF-7 without UTF8=ACCEPT.
  assert.deepEqual(
    (out.after8 as Listed[]).map((l) => [l.raw, l.name]),
    [['&ANw-berblick', 'Überblick']],
  );
  assert.equal(out.delete7, 'OK');
});

test('raw wire: modified UTF-7 for IMAP4rev1, UTF-8 after ENABLE UTF8=ACCEPT or IMAP4rev2', async () => {
  const c = await Raw.connectTLS(srv.ports.imaps, srv.certPEM);
  await c.line();
  assert.match((await c.imap('1', 'LOGIN jane@example.test secret-pass')).status, /^OK/);
  assert.deepEqual((await c.imap('2', 'LIST "" "&ZeVnLIqe-/*"')).untagged, ['* LIST (\\HasNoChildren) "/" "&ZeVnLIqe-/&W1A-"']);
  // A name that is not valid modified UTF-7 is taken literally and shown encoded.
  assert.match((await c.imap('3', 'CREATE "50&"')).status, /^OK/);
  assert.deepEqual((await c.imap('4', 'LIST "" "50*"')).untagged, ['* LIST (\\HasNoChildren) "/" "50&-"']);
  assert.match((await c.imap('5', 'ENABLE UTF8=ACCEPT')).status, /^OK/);
  assert.deepEqual((await c.imap('6', 'LIST "" "日本語/*"')).untagged, ['* LIST (\\HasNoChildren) "/" "日本語/子"']);
  // With UTF-8 enabled, "&" is an ordinary character.
  assert.deepEqual((await c.imap('7', 'LIST "" "50*"')).untagged, ['* LIST (\\HasNoChildren) "/" "50&"']);
  assert.deepEqual((await c.imap('8', 'STATUS "Entwürfe" (UIDNEXT)')).untagged, ['* STATUS "Entwürfe" (UIDNEXT 1)']);
  c.close();
  const r = await Raw.connectTLS(srv.ports.imaps, srv.certPEM);
  await r.line();
  assert.match((await r.imap('1', 'LOGIN jane@example.test secret-pass')).status, /^OK/);
  assert.match((await r.imap('2', 'ENABLE IMAP4rev2')).status, /^OK/);
  assert.deepEqual((await r.imap('3', 'LIST "" "Entw*"')).untagged, ['* LIST (\\HasNoChildren) "/" "Entwürfe"']);
  r.close();
});
