// Two IMAP sessions racing on one mailbox, over raw sockets. Session A flags and expunges
// messages while session B fetches, stores and searches on the same messages with pipelined
// commands. B keeps its own view of the mailbox (UIDs in sequence order) from the responses it
// gets and checks each response against it:
//
// - EXPUNGE (and VANISHED, which renumbers in the same way, RFC 7162 3.2.10) never comes while
//   the server responds to FETCH, STORE or SEARCH, and never when no command is in progress
//   (RFC 9051 7.5.1, RFC 3501 7.4.1); UID FETCH, UID STORE, UID SEARCH and NOOP may carry them.
// - A FETCH response with a UID names the message B's view has at that sequence number.
// - A message expunged by A before B was told is either fetched (its data) or left out of the
//   FETCH response (RFC 9051 7.5.1 allows both); the command is never BAD.
// - After NOOP, B's view equals the mailbox (UID SEARCH ALL), and A's view.
//
// An IDLE session hears EXISTS, FETCH (flags) and EXPUNGE caused by another session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

let srv: TestServer;
before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.close();
});

interface Result {
  command: string;
  /** Untagged responses sent while the command was in progress, literals inline. */
  untagged: string[];
  status: string;
}

/** Expands a sequence set of numbers ("1:3,7") without "*". */
function numbers(set: string): number[] {
  const out: number[] = [];
  for (const r of set.split(',')) {
    const [a, b] = r.split(':').map(Number) as [number, number | undefined];
    const [lo, hi] = b === undefined ? [a, a] : [Math.min(a, b), Math.max(a, b)];
    for (let n = lo; n <= hi; n++) out.push(n);
  }
  return out;
}

/** A raw IMAP session that keeps a view of the selected mailbox and checks responses against it. */
class Session {
  private seq = 0;
  /** UIDs in sequence order, as the server told this session. */
  view: number[] = [];
  /** Responses that broke a rule, described. */
  problems: string[] = [];
  highestModseq = 0;
  uidvalidity = 0;

  private constructor(
    readonly raw: Raw,
    readonly name: string,
  ) {}

  static async open(name: string): Promise<Session> {
    const raw = await Raw.connectTLS(srv.ports.imaps, srv.certPEM);
    await raw.line();
    const s = new Session(raw, name);
    const r = await s.run('LOGIN jane@example.test secret-pass');
    assert.match(r.status, /^OK/);
    return s;
  }

  /** One response: a line and the literals it announces, with the following line parts. */
  private async response(): Promise<string> {
    let out = '';
    for (;;) {
      const l = await this.raw.line();
      out += l;
      const m = /\{(\d+)\+?\}$/.exec(l);
      if (!m) return out;
      out += '\r\n' + (await this.raw.bytes(Number(m[1]))).toString('latin1');
    }
  }

  /** Sends the commands at once (pipelined) and collects the responses of each. */
  async pipeline(commands: string[]): Promise<Result[]> {
    const tags = commands.map(() => `${this.name}${++this.seq}`);
    this.raw.write(commands.map((c, i) => `${tags[i]} ${c}\r\n`).join(''));
    const results: Result[] = [];
    for (let i = 0; i < commands.length; i++) {
      const untagged: string[] = [];
      for (;;) {
        const r = await this.response();
        if (r.startsWith(tags[i] + ' ')) {
          const res = { command: commands[i]!, untagged, status: r.slice(tags[i]!.length + 1) };
          this.check(res);
          results.push(res);
          break;
        }
        if (!r.startsWith('* ')) throw new Error(`${this.name}: unexpected response while waiting for ${tags[i]}: ${r}`);
        untagged.push(r);
      }
    }
    return results;
  }

  async run(command: string): Promise<Result> {
    return (await this.pipeline([command]))[0]!;
  }

  private problem(what: string, r: Result, line: string): void {
    this.problems.push(`${this.name}: ${what} in response to ${JSON.stringify(r.command)}: ${JSON.stringify(line.slice(0, 200))}`);
  }

  /** Applies a command's responses to the view and checks them. */
  private check(r: Result): void {
    const kw = /^(UID )?(\w+)/i.exec(r.command)![0].toUpperCase();
    const noExpunge = ['FETCH', 'STORE', 'SEARCH'].includes(kw);
    if (/^BAD/.test(r.status)) this.problem(`BAD (${r.status})`, r, '');
    for (const line of r.untagged) {
      // The line without the contents of literals.
      const text = line.replace(/\{(\d+)\}\r\n[\s\S]*$/, (m, n: string) => `{${n}}` + m.slice(m.indexOf('\r\n') + 2 + Number(n)));
      let m: RegExpExecArray | null;
      if ((m = /^\* (\d+) EXPUNGE$/.exec(text))) {
        if (noExpunge) this.problem('EXPUNGE', r, line);
        const n = Number(m[1]);
        if (n < 1 || n > this.view.length) this.problem(`EXPUNGE of ${n} with ${this.view.length} messages`, r, line);
        this.view.splice(n - 1, 1);
      } else if ((m = /^\* VANISHED( \(EARLIER\))? ([\d:,]+)$/.exec(text))) {
        if (m[1]) continue;
        if (noExpunge) this.problem('VANISHED', r, line);
        const gone = new Set(numbers(m[2]!));
        this.view = this.view.filter((u) => !gone.has(u));
      } else if ((m = /^\* (\d+) EXISTS$/.exec(text))) {
        const n = Number(m[1]);
        if (n < this.view.length) this.problem(`EXISTS ${n} below ${this.view.length}`, r, line);
        while (this.view.length < n) this.view.push(0); // unknown UIDs, learned from FETCH
      } else if ((m = /^\* (\d+) FETCH \((.*)\)$/s.exec(text))) {
        const n = Number(m[1]);
        if (n < 1 || n > this.view.length) {
          this.problem(`FETCH ${n} with ${this.view.length} messages`, r, line);
          continue;
        }
        const uid = /(?:^|[ (])UID (\d+)/.exec(m[2]!);
        if (uid) {
          const u = Number(uid[1]);
          if (this.view[n - 1] === 0) this.view[n - 1] = u;
          else if (this.view[n - 1] !== u) this.problem(`FETCH ${n} with UID ${u} where the view has UID ${this.view[n - 1]}`, r, line);
        }
        const ms = /MODSEQ \((\d+)\)/.exec(m[2]!);
        if (ms) this.highestModseq = Math.max(this.highestModseq, Number(ms[1]));
      } else if ((m = /^\* SEARCH((?: \d+)*)/.exec(text))) {
        if (kw === 'SEARCH') for (const n of m[1]!.trim().split(' ').filter(Boolean).map(Number)) if (n > this.view.length) this.problem(`SEARCH result ${n} with ${this.view.length} messages`, r, line);
      } else if ((m = /^\* OK \[HIGHESTMODSEQ (\d+)\]/.exec(text))) {
        this.highestModseq = Number(m[1]);
      } else if ((m = /^\* OK \[UIDVALIDITY (\d+)\]/.exec(text))) {
        this.uidvalidity = Number(m[1]);
      }
    }
  }

  /** Selects a mailbox and learns its UIDs. */
  async select(mailbox: string, params = ''): Promise<Result> {
    this.view = [];
    const r = await this.run(`SELECT ${mailbox}${params}`);
    assert.match(r.status, /^OK \[READ-WRITE\]/, `${this.name} SELECT ${mailbox}`);
    if (this.view.length) assert.match((await this.run('FETCH 1:* (UID)')).status, /^OK/);
    assert.ok(!this.view.includes(0));
    return r;
  }

  /** Waits for unsolicited responses, e.g. in IDLE; returns what came within ms. */
  async unsolicited(ms: number): Promise<string[]> {
    const out: string[] = [];
    const until = Date.now() + ms;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return out;
      try {
        out.push(await this.raw.line(left));
      } catch (e) {
        if (/timeout/.test(String(e))) return out;
        throw e;
      }
    }
  }

  /** UIDs in the mailbox by the server's account now. */
  async uidSearchAll(): Promise<number[]> {
    const r = await this.run('UID SEARCH ALL');
    assert.match(r.status, /^OK/);
    const line = r.untagged.find((l) => l.startsWith('* SEARCH'))!;
    return line.slice('* SEARCH'.length).trim().split(' ').filter(Boolean).map(Number);
  }

  close(): void {
    this.raw.close();
  }
}

/** Appends count messages with subjects "<prefix>-<i>-end" in one MULTIAPPEND; returns their UIDs. */
async function fill(s: Session, mailbox: string, prefix: string, count: number): Promise<number[]> {
  let cmd = `APPEND ${mailbox}`;
  for (let i = 0; i < count; i++) {
    const m = `From: sender${i}@example.org\r\nTo: jane@example.test\r\nSubject: ${prefix}-${i}-end\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <${prefix}-${i}@example.org>\r\n\r\nBody of message ${i}.\r\n`;
    cmd += ` {${Buffer.byteLength(m)}+}\r\n${m}`;
  }
  const r = await s.run(cmd);
  const m = /^OK \[APPENDUID \d+ ([\d:]+)\]/.exec(r.status);
  assert.ok(m, r.status);
  const uids = numbers(m[1]!);
  assert.equal(uids.length, count);
  return uids;
}

/**
 * A flags and expunges two messages per round; B meanwhile sends batches of pipelined
 * FETCH/STORE/SEARCH commands about messages of its view, each batch ending in NOOP.
 */
async function race(a: Session, b: Session, subjects: Map<number, string>, rounds: number): Promise<{ expunged: number[]; batches: number }> {
  const expunged: number[] = [];
  let aDone = false;
  let batches = 0;
  const runA = async () => {
    for (let i = 0; i < rounds; i++) {
      const s1 = 1 + Math.floor(Math.random() * a.view.length);
      const s2 = 1 + Math.floor(Math.random() * a.view.length);
      const seen = 1 + Math.floor(Math.random() * a.view.length);
      const before = [...a.view];
      const rs = await a.pipeline([`STORE ${seen} +FLAGS (\\Seen)`, `STORE ${s1},${s2} +FLAGS.SILENT (\\Deleted)`, 'EXPUNGE']);
      for (const r of rs) assert.match(r.status, /^OK/, `A: ${r.command}: ${r.status}`);
      expunged.push(...before.filter((u) => !a.view.includes(u)));
      await new Promise((r) => setTimeout(r, 5));
    }
    aDone = true;
  };
  const runB = async () => {
    // Go on until A is done, and one batch more.
    for (let last = false; !last; ) {
      last = aDone;
      batches++;
      const n = b.view.length;
      if (n === 0) break;
      const s1 = 1 + Math.floor(Math.random() * n);
      const s2 = 1 + Math.floor(Math.random() * n);
      const u1 = b.view[s1 - 1]!;
      const u2 = b.view[s2 - 1]!;
      const rs = await b.pipeline([
        'FETCH 1:* (UID FLAGS)',
        `STORE ${s1} +FLAGS (\\Flagged)`,
        `FETCH ${s1},${s2} (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (Subject)])`,
        `STORE ${s2} -FLAGS (\\Flagged)`,
        'SEARCH ALL',
        `UID FETCH ${u1},${u2} (FLAGS)`,
        'NOOP',
      ]);
      // The headers fetched belong to the messages the sequence numbers stood for.
      for (const line of rs[2]!.untagged) {
        const m = /^\* (\d+) FETCH \(.*UID (\d+) .*Subject: (\S+)\r\n/s.exec(line);
        if (!m) continue;
        if (subjects.get(Number(m[2])) !== m[3]) b.problems.push(`FETCH ${m[1]} UID ${m[2]} has subject ${m[3]}`);
      }
      for (const r of rs) if (!/^(OK|NO)/.test(r.status)) b.problems.push(`${r.command}: ${r.status}`);
    }
  };
  await Promise.all([runA(), runB()]);
  return { expunged, batches };
}

test('racing sessions: B sees no EXPUNGE during FETCH/STORE/SEARCH and stays consistent with A', async () => {
  const a = await Session.open('a');
  const b = await Session.open('b');
  const uids = await fill(a, 'INBOX', 'race', 40);
  const subjects = new Map(uids.map((u, i) => [u, `race-${i}-end`]));
  await a.select('INBOX');
  await b.select('INBOX');
  assert.deepEqual(b.view, uids);

  const { expunged, batches } = await race(a, b, subjects, 12);
  assert.ok(expunged.length >= 12, `expunged ${expunged.length}`);
  assert.ok(batches >= 2, `B ran ${batches} batches`);
  assert.deepEqual(b.problems, []);
  assert.deepEqual(a.problems, []);

  // After NOOP both views are the mailbox.
  await b.run('NOOP');
  await a.run('NOOP');
  const now = await b.uidSearchAll();
  assert.deepEqual(b.view, now);
  assert.deepEqual(a.view, now);
  assert.deepEqual(
    now,
    uids.filter((u) => !expunged.includes(u)),
  );
  // The sequence numbers agree with the server's: every FETCH response is checked against the view.
  assert.match((await b.run('FETCH 1:* (UID FLAGS)')).status, /^OK/);
  assert.deepEqual(b.problems, []);
  a.close();
  b.close();
});

test('a message expunged by another session: FETCH and STORE on it are not BAD, EXPUNGE waits for NOOP, EXISTS counts it', async () => {
  const a = await Session.open('a');
  const b = await Session.open('b');
  assert.match((await a.run('CREATE Gone')).status, /^OK/);
  const uids = await fill(a, 'Gone', 'gone', 6);
  await a.select('Gone');
  await b.select('Gone');
  const r = await a.pipeline(['STORE 2 +FLAGS.SILENT (\\Deleted)', 'EXPUNGE']);
  assert.deepEqual(r[1]!.untagged, ['* 2 EXPUNGE']);
  // No command in progress: no EXPUNGE for B (RFC 9051 7.5.1).
  const pushed = await b.unsolicited(300);
  assert.ok(!pushed.some((l) => /EXPUNGE/.test(l)), pushed.join('\n'));
  // A new message meanwhile: B's EXISTS still counts the expunged one it was not told about.
  const [added] = await fill(a, 'Gone', 'gone-new', 1);

  const rs = await b.pipeline([
    'FETCH 2 (UID FLAGS BODY.PEEK[])',
    'FETCH 1:* (UID)',
    'STORE 2 +FLAGS (\\Seen)',
    'STORE 2:3 +FLAGS (\\Answered)',
    'FETCH 3 (UID FLAGS)',
    'SEARCH ALL',
  ]);
  for (const x of rs) assert.match(x.status, /^(OK|NO)/, `${x.command}: ${x.status}`);
  // FETCH of the expunged message: its data or nothing. (A flag change A made before may come too.)
  const f2 = rs[0]!.untagged.filter((l) => /^\* \d+ FETCH .*BODY\[\]/s.test(l));
  assert.ok(f2.length <= 1, f2.join('\n'));
  if (f2.length) {
    assert.match(f2[0]!, new RegExp(`^\\* 2 FETCH \\(.*UID ${uids[1]} `, 's'));
    assert.ok(f2[0]!.includes('Subject: gone-1-end'));
  }
  // Sequence numbers have not moved: 3 is still the third message.
  assert.ok(rs[4]!.untagged.some((l) => l.startsWith(`* 3 FETCH (UID ${uids[2]} FLAGS (`) && l.includes('\\Answered')), rs[4]!.untagged.join('\n'));
  assert.ok(rs[0]!.untagged.includes('* 7 EXISTS'), rs[0]!.untagged.join('\n'));
  assert.deepEqual(b.problems, []);
  assert.deepEqual(b.view, [...uids, added]);

  const noop = await b.run('NOOP');
  assert.ok(noop.untagged.includes('* 2 EXPUNGE'), noop.untagged.join('\n'));
  assert.deepEqual(b.view, [uids[0], ...uids.slice(2), added]);
  assert.deepEqual(await b.uidSearchAll(), b.view);
  assert.deepEqual(b.problems, []);
  a.close();
  b.close();
});

test(
  'a message expunged by another session: SEARCH and SORT keep the numbering the client has',
  {},
  async () => {
    const a = await Session.open('a');
    const b = await Session.open('b');
    assert.match((await a.run('CREATE Numbering')).status, /^OK/);
    const uids = await fill(a, 'Numbering', 'num', 6);
    await a.select('Numbering');
    await b.select('Numbering');
    await a.pipeline(['STORE 2 +FLAGS.SILENT (\\Deleted)', 'EXPUNGE']);
    const rs = await b.pipeline(['FETCH 5 (UID)', 'SEARCH SUBJECT num-4-end', 'SEARCH 5', 'SEARCH RETURN (ALL) SUBJECT num-4-end', 'UID SEARCH SUBJECT num-4-end', 'SORT (SUBJECT) UTF-8 SUBJECT num-4-end']);
    for (const x of rs) assert.match(x.status, /^OK/, `${x.command}: ${x.status}`);
    // Message 5 in B's numbering is UID uids[4], subject num-4-end.
    // (The \Deleted flag A set on message 2 may be announced along the way.)
    const only = (r: Result, prefix: string) => r.untagged.filter((l) => l.startsWith(prefix));
    assert.deepEqual(only(rs[0]!, '* 5 FETCH'), [`* 5 FETCH (UID ${uids[4]})`]);
    assert.deepEqual(only(rs[4]!, '* SEARCH'), [`* SEARCH ${uids[4]}`]);
    assert.deepEqual(only(rs[1]!, '* SEARCH'), ['* SEARCH 5']);
    assert.deepEqual(only(rs[2]!, '* SEARCH'), ['* SEARCH 5']);
    const es = only(rs[3]!, '* ESEARCH');
    assert.equal(es.length, 1);
    assert.match(es[0]!, /^\* ESEARCH \(TAG "[^"]+"\) ALL 5$/);
    // The EXPUNGE may come with the UID SEARCH (UID commands may carry it, RFC 9051 7.5.1), never
    // during SORT; the SORT numbers are those after whatever EXPUNGE was sent before it.
    const sort = rs[5]!.untagged;
    const at = sort.findIndex((l) => l.startsWith('* SORT'));
    assert.ok(!sort.includes('* 2 EXPUNGE'), sort.join('\n'));
    const expungedBefore = rs.slice(0, 5).some((r) => r.untagged.includes('* 2 EXPUNGE'));
    assert.equal(sort[at], `* SORT ${expungedBefore ? 4 : 5}`, sort.join('\n'));
    assert.deepEqual(b.problems, []);
    a.close();
    b.close();
  },
);

test('racing sessions with QRESYNC on B: VANISHED instead of EXPUNGE, not during FETCH/STORE/SEARCH', async () => {
  const a = await Session.open('a');
  const b = await Session.open('b');
  assert.match((await a.run('CREATE Quick')).status, /^OK/);
  const uids = await fill(a, 'Quick', 'quick', 30);
  const subjects = new Map(uids.map((u, i) => [u, `quick-${i}-end`]));
  assert.match((await b.run('ENABLE QRESYNC')).untagged.join(' '), /ENABLED.*QRESYNC/);
  await a.select('Quick');
  await b.select('Quick');
  const { uidvalidity } = b;
  const startModseq = b.highestModseq;
  assert.ok(startModseq > 0);

  const { expunged } = await race(a, b, subjects, 8);
  assert.ok(expunged.length >= 8, `expunged ${expunged.length}`);
  assert.deepEqual(b.problems, []);
  await b.run('NOOP');
  await a.run('NOOP');
  const now = await b.uidSearchAll();
  assert.deepEqual(b.view, now);
  assert.deepEqual(a.view, now);
  assert.deepEqual(
    now,
    uids.filter((u) => !expunged.includes(u)),
  );

  // What vanished since the start, asked two ways (RFC 7162 3.2.6 and 3.2.5.1).
  const sorted = [...expunged].sort((x, y) => x - y);
  const f = await b.run(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${startModseq} VANISHED)`);
  assert.match(f.status, /^OK/);
  const earlier = f.untagged.find((l) => l.startsWith('* VANISHED (EARLIER) '));
  assert.ok(earlier, f.untagged.join('\n'));
  assert.deepEqual(numbers(earlier.slice('* VANISHED (EARLIER) '.length)), sorted);
  await b.run('UNSELECT');
  const re = await b.select('Quick', ` (QRESYNC (${uidvalidity} ${startModseq} 1:${uids[uids.length - 1]}))`);
  const again = re.untagged.find((l) => l.startsWith('* VANISHED (EARLIER) '));
  assert.ok(again, re.untagged.join('\n'));
  assert.deepEqual(numbers(again.slice('* VANISHED (EARLIER) '.length)), sorted);
  assert.deepEqual(b.view, now);
  assert.deepEqual(b.problems, []);
  a.close();
  b.close();
});

test('IDLE: EXISTS, flag changes and EXPUNGE caused by another session arrive while idling', async () => {
  const a = await Session.open('a');
  const c = await Session.open('c');
  assert.match((await a.run('CREATE Idle')).status, /^OK/);
  const uids = await fill(a, 'Idle', 'idle', 3);
  await a.select('Idle');
  await c.select('Idle');
  c.raw.write('i1 IDLE\r\n');
  assert.match(await c.raw.line(), /^\+ /);

  const waitFor = async (re: RegExp): Promise<string[]> => {
    const got: string[] = [];
    const until = Date.now() + 3000;
    while (!got.some((l) => re.test(l))) {
      assert.ok(Date.now() < until, `no ${re} while idling; got ${JSON.stringify(got)}`);
      got.push(...(await c.unsolicited(100)));
    }
    return got;
  };

  const [newUid] = await fill(a, 'Idle', 'idle-new', 1);
  assert.deepEqual(await waitFor(/^\* 4 EXISTS$/), ['* 4 EXISTS']);
  await a.run('NOOP');
  assert.match((await a.run(`UID STORE ${newUid} +FLAGS (\\Flagged $Later)`)).status, /^OK/);
  const flags = await waitFor(/^\* 4 FETCH/);
  assert.equal(flags.length, 1, flags.join('\n'));
  assert.match(flags[0]!, new RegExp(`^\\* 4 FETCH \\((UID ${newUid} )?FLAGS \\(([^)]*)\\)( UID ${newUid})?\\)$`));
  assert.deepEqual(/FLAGS \(([^)]*)\)/.exec(flags[0]!)![1]!.split(' ').sort(), ['$Later', '\\Flagged']);

  assert.match((await a.run('STORE 2 +FLAGS.SILENT (\\Deleted)')).status, /^OK/);
  assert.match((await a.run('EXPUNGE')).status, /^OK/);
  const gone = await waitFor(/^\* 2 EXPUNGE$/);
  // The \Deleted flag may be announced first; the EXPUNGE comes last.
  assert.equal(gone[gone.length - 1], '* 2 EXPUNGE');
  for (const l of gone.slice(0, -1)) assert.match(l, /^\* 2 FETCH \(.*\\Deleted/);

  c.raw.write('DONE\r\n');
  assert.match(await c.raw.line(), /^i1 OK/);
  // Nothing left over, and the session's numbering is the mailbox's.
  const n = await c.run('FETCH 1:* (UID)');
  assert.deepEqual(n.untagged, [`* 1 FETCH (UID ${uids[0]})`, `* 2 FETCH (UID ${uids[2]})`, `* 3 FETCH (UID ${newUid})`]);
  a.close();
  c.close();
});
