// THREAD (RFC 5256 3, 4): ORDEREDSUBJECT and REFERENCES threading of a search result, and the
// THREAD response. Trees may be as deep as there are messages (or references), so every walk
// over them uses an explicit stack.
import type { Parser } from './parse.js';
import { Bad } from './registry.js';
import { parseSearchCriteria, loadEnvelope, loadHeader, fold, type MessageSource, type SearchProgram } from './search.js';
import { subjectInfo, sentDate } from './sort.js';
import type { MessageRow } from '../store/account.js';

export type ThreadAlgorithm = 'ORDEREDSUBJECT' | 'REFERENCES';

/** A thread node; a dummy (a message that is referenced but not in the result) has no uid. */
export interface ThreadNode {
  uid?: number;
  children: ThreadNode[];
}

/** Parses what follows "THREAD" or "UID THREAD": algorithm charset keys, to the end (RFC 5256 5). */
export function parseThread(p: Parser, opts: { utf8: boolean }): { algorithm: ThreadAlgorithm; program: SearchProgram } {
  p.space();
  const algorithm = p.atom().toUpperCase();
  if (algorithm !== 'ORDEREDSUBJECT' && algorithm !== 'REFERENCES') throw new Bad(`unknown threading algorithm ${algorithm}`);
  p.space();
  return { algorithm, program: parseSearchCriteria(p, opts) };
}

interface Info {
  uid: number;
  seq: number;
  date: number;
  /** Folded base subject. */
  subject: string;
  reply: boolean;
  messageId?: string;
  references: string[];
}

interface Container {
  msg?: Info;
  parent?: Container;
  children: Container[];
}

/**
 * Message IDs in a References or In-Reply-To value, normalized: quoting, escapes and white
 * space removed, so that <"a b"@x> and <ab@x> are the same ID (RFC 5256 4). Comments are skipped.
 */
export function messageIds(value: string): string[] {
  const ids: string[] = [];
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && depth) i++;
    else if (c === '(') depth++;
    else if (c === ')' && depth) depth--;
    else if (c === '<' && !depth) {
      let id = '';
      let quoted = false;
      let j = i + 1;
      for (; j < value.length; j++) {
        const d = value[j]!;
        if (d === '"') quoted = !quoted;
        else if (d === '\\' && quoted) id += value[++j] ?? '';
        else if (d === '>' && !quoted) break;
        else if (d === '<' && !quoted) break;
        else if (quoted || !/\s/.test(d)) id += d;
      }
      if (value[j] !== '>') continue;
      if (id) ids.push(id);
      i = j;
    }
  }
  return ids;
}

async function infos(uids: readonly number[], src: MessageSource, withRefs: boolean): Promise<Info[]> {
  const byUid = new Map<number, [MessageRow, number]>();
  src.rows.forEach((r, i) => byUid.set(r.uid, [r, i + 1]));
  const out: Info[] = [];
  for (const uid of uids) {
    const found = byUid.get(uid);
    if (!found) continue;
    const [row, seq] = found;
    const env = await loadEnvelope(src, row);
    const s = subjectInfo(env.subject ?? '');
    const info: Info = { uid, seq, date: sentDate(env, row), subject: fold(s.base), reply: s.replyOrForward, references: [] };
    if (withRefs) {
      info.messageId = env.messageId === undefined ? undefined : messageIds(env.messageId)[0];
      const refs = (await loadHeader(src, row)).getAll('references').pop()?.value;
      info.references = refs === undefined ? [] : messageIds(refs);
      // RFC 5256 4: without usable References, the first ID of In-Reply-To is the parent.
      if (!info.references.length && env.inReplyTo !== undefined) info.references = messageIds(env.inReplyTo).slice(0, 1);
    }
    out.push(info);
  }
  return out;
}

/** Sent date, then sequence number (RFC 5256 2.2). */
const byDate = (a: Info, b: Info) => a.date - b.date || a.seq - b.seq;

/** Threads of the UIDs (a search result) by the algorithm, in the order of the response. */
export async function threadMessages(algorithm: ThreadAlgorithm, uids: readonly number[], src: MessageSource): Promise<ThreadNode[]> {
  const msgs = await infos(uids, src, algorithm === 'REFERENCES');
  return algorithm === 'ORDEREDSUBJECT' ? orderedSubject(msgs) : references(msgs);
}

/** RFC 5256 4 ORDEREDSUBJECT: one thread per base subject, the first message the parent of all others. */
function orderedSubject(msgs: Info[]): ThreadNode[] {
  const sorted = [...msgs].sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : byDate(a, b)));
  const threads: { first: Info; node: ThreadNode }[] = [];
  let cur: { first: Info; node: ThreadNode } | undefined;
  for (const m of sorted) {
    if (cur && cur.first.subject === m.subject) cur.node.children.push({ uid: m.uid, children: [] });
    else threads.push((cur = { first: m, node: { uid: m.uid, children: [] } }));
  }
  threads.sort((a, b) => byDate(a.first, b.first));
  return threads.map((t) => t.node);
}

/** Whether a is c or one of its descendants, walking up from a. */
function within(a: Container, c: Container): boolean {
  // The common case, a new container, needs no walk up a possibly long chain.
  if (!c.children.length) return a === c;
  for (let x: Container | undefined = a; x; x = x.parent) if (x === c) return true;
  return false;
}

function link(parent: Container, child: Container): void {
  child.parent = parent;
  parent.children.push(child);
}

function unlink(child: Container): void {
  const p = child.parent;
  if (!p) return;
  p.children.splice(p.children.indexOf(child), 1);
  child.parent = undefined;
}

/** Containers of a forest in post-order (children before their parent). */
function postOrder(roots: Container[]): Container[] {
  const out: Container[] = [];
  const stack: [Container, boolean][] = roots.map((r) => [r, false] as [Container, boolean]).reverse();
  while (stack.length) {
    const [c, done] = stack.pop()!;
    if (done) {
      out.push(c);
      continue;
    }
    stack.push([c, true]);
    for (let i = c.children.length - 1; i >= 0; i--) stack.push([c.children[i]!, false]);
  }
  return out;
}

/** The message a container stands for when comparing: a dummy is represented by its first child. */
function rep(c: Container): Info | undefined {
  return c.msg ?? c.children[0]?.msg;
}

function sortSiblings(list: Container[]): void {
  list.sort((a, b) => byDate(rep(a)!, rep(b)!));
}

/** RFC 5256 4 REFERENCES. */
function references(msgs: Info[]): ThreadNode[] {
  // (1) Link messages along their references, in sequence order.
  const table = new Map<string, Container>();
  const get = (id: string) => {
    let c = table.get(id);
    if (!c) table.set(id, (c = { children: [] }));
    return c;
  };
  const all: Container[] = [];
  for (const m of [...msgs].sort((a, b) => a.seq - b.seq)) {
    let c: Container;
    const existing = m.messageId === undefined ? undefined : table.get(m.messageId);
    if (m.messageId !== undefined && (!existing || !existing.msg)) {
      c = get(m.messageId);
      c.msg = m;
    } else {
      // No valid Message-ID, or the ID of a message earlier in sequence: a unique ID of its own.
      c = { msg: m, children: [] };
    }
    all.push(c);
    const refs = m.references.map(get);
    // (1A) Each reference the parent of the next, unless it has a parent or it would make a loop.
    for (let i = 0; i + 1 < refs.length; i++) {
      const [a, b] = [refs[i]!, refs[i + 1]!];
      if (!b.parent && !within(a, b)) link(a, b);
    }
    // (1B) The last reference is the parent of the message, replacing what 1A may have set.
    const last = refs[refs.length - 1];
    unlink(c);
    if (last && !within(last, c)) link(last, c);
  }
  // (2) Messages without parent are the threads so far.
  const roots: Container[] = [];
  const seen = new Set<Container>();
  for (const c of [...table.values(), ...all]) {
    if (!c.parent && !seen.has(c)) roots.push(c);
    seen.add(c);
  }
  // (3) Prune dummies: childless ones go, others give way to their children, except that at the
  // top a dummy with several children stays.
  const pruned = (c: Container) => {
    const out: Container[] = [];
    for (const k of c.children) {
      if (k.msg) out.push(k);
      else out.push(...k.children);
    }
    c.children = out;
  };
  for (const c of postOrder(roots)) pruned(c);
  let top: Container[] = [];
  for (const c of roots) {
    if (c.msg || c.children.length > 1) top.push(c);
    else if (c.children.length === 1) top.push(c.children[0]!);
  }
  // (4) Sort the top level by sent date; a dummy by its children, then by its first child.
  for (const c of top) if (!c.msg) sortSiblings(c.children);
  sortSiblings(top);
  // (5) Gather top-level threads with the same base subject.
  const subjectOf = (c: Container) => rep(c)!.subject;
  const subjects = new Map<string, Container>();
  for (const c of top) {
    const s = subjectOf(c);
    if (!s) continue;
    const t = subjects.get(s);
    if (!t || (t.msg && (!c.msg || (t.msg.reply && !c.msg.reply)))) subjects.set(s, c);
  }
  const gone = new Set<Container>();
  const replaced = new Map<Container, Container>();
  for (const c of top) {
    const s = subjectOf(c);
    if (!s) continue;
    const t = subjects.get(s)!;
    if (t === c) continue;
    gone.add(c);
    if (!t.msg && !c.msg) t.children.push(...c.children);
    else if (!t.msg || (c.msg?.reply && !t.msg.reply)) t.children.push(c);
    else {
      const d: Container = { children: [t, c] };
      replaced.set(t, d);
      subjects.set(s, d);
    }
  }
  top = top.filter((c) => !gone.has(c)).map((c) => replaced.get(c) ?? c);
  // (6) Sort all sibling sets by sent date, the deepest first.
  for (const c of postOrder(top)) sortSiblings(c.children);
  sortSiblings(top);
  const node = (c: Container): ThreadNode => ({ uid: c.msg?.uid, children: [] });
  // Convert to ThreadNodes without recursion.
  const result = top.map(node);
  const stack: [Container, ThreadNode][] = top.map((c, i) => [c, result[i]!]);
  while (stack.length) {
    const [c, n] = stack.pop()!;
    for (const k of c.children) {
      const kn = node(k);
      n.children.push(kn);
      stack.push([k, kn]);
    }
  }
  return result;
}

/**
 * The untagged THREAD response without "* " and CRLF, e.g. "THREAD (2)(3 6 (4 23)(44 7 96))"
 * (RFC 5256 4), with UIDs or sequence numbers.
 */
export function threadResponse(threads: readonly ThreadNode[], o: { uid: boolean; rows: readonly MessageRow[] }): string {
  const seqOf = new Map<number, number>();
  if (!o.uid) o.rows.forEach((r, i) => seqOf.set(r.uid, i + 1));
  const num = (n: ThreadNode) => (o.uid ? n.uid! : (seqOf.get(n.uid!) ?? 0));
  let out = 'THREAD';
  if (threads.length) out += ' ';
  const stack: (ThreadNode | string)[] = [...threads].reverse();
  while (stack.length) {
    const item = stack.pop()!;
    if (typeof item === 'string') {
      out += item;
      continue;
    }
    // A chain of single children is written as a run of numbers; a split nests each branch.
    const nums: number[] = [];
    let cur = item;
    while (cur.uid !== undefined && cur.children.length === 1) {
      nums.push(num(cur));
      cur = cur.children[0]!;
    }
    if (cur.uid !== undefined) nums.push(num(cur));
    out += '(' + nums.join(' ') + (nums.length && cur.children.length ? ' ' : '');
    stack.push(')');
    for (let i = cur.children.length - 1; i >= 0; i--) stack.push(cur.children[i]!);
  }
  return out;
}
