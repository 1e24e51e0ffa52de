// FETCH attributes (RFC 9051 6.4.5): parsing the request and producing the response data.
import { Parser, formatDateTime, astringOut } from './parse.js';
import { flagList } from '../store/flags.js';
import type { MessageRow } from '../store/account.js';
import type { Part } from '../message/part.js';
import { decodedBody } from '../message/decode.js';
import { preview } from '../message/preview.js';
import type { RenderKind } from './rendercache.js';
import { renderEnvelope, renderBody, renderBodyStructure, sectionBytes, findPart, type Section as StructSection } from './structure.js';

export interface Section {
  /** Part numbers, e.g. [1, 2] for "1.2"; empty for the whole message. */
  part: number[];
  /** HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME, or "" for the whole (part). */
  text: '' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';
  fields?: string[];
}

export interface FetchAtt {
  name:
    | 'UID'
    | 'FLAGS'
    | 'INTERNALDATE'
    | 'RFC822.SIZE'
    | 'ENVELOPE'
    | 'BODYSTRUCTURE'
    | 'BODY'
    | 'MODSEQ'
    | 'RFC822'
    | 'RFC822.HEADER'
    | 'RFC822.TEXT'
    | 'BODY[]'
    | 'BINARY[]'
    | 'BINARY.SIZE'
    | 'SAVEDATE'
    | 'PREVIEW';
  section?: Section;
  peek?: boolean;
  partial?: { start: number; length?: number };
}

function parseSection(p: Parser): Section {
  p.expect('[');
  const part: number[] = [];
  let text: Section['text'] = '';
  let fields: string[] | undefined;
  while (p.peek() !== undefined && p.peek()! >= 0x30 && p.peek()! <= 0x39) {
    part.push(p.nzNumber());
    if (!p.take('.')) break;
  }
  if (p.peek() !== 0x5d) {
    const kw = p.keyword();
    if (kw === 'HEADER.FIELDS' || kw === 'HEADER.FIELDS.NOT') {
      text = kw;
      p.space();
      p.expect('(');
      fields = [p.astring()];
      while (p.maybeSpace()) fields.push(p.astring());
      p.expect(')');
    } else if (kw === 'HEADER' || kw === 'TEXT' || (kw === 'MIME' && part.length > 0)) {
      text = kw;
    } else throw p.error('bad section');
  }
  p.expect(']');
  return { part, text, fields };
}

function parsePartial(p: Parser): FetchAtt['partial'] {
  if (!p.take('<')) return undefined;
  const start = p.number32();
  p.expect('.');
  const length = p.nzNumber();
  p.expect('>');
  return { start, length };
}

function parseAtt(p: Parser): FetchAtt[] {
  const kw = p.keyword();
  switch (kw) {
    case 'ALL':
      return [{ name: 'FLAGS' }, { name: 'INTERNALDATE' }, { name: 'RFC822.SIZE' }, { name: 'ENVELOPE' }];
    case 'FAST':
      return [{ name: 'FLAGS' }, { name: 'INTERNALDATE' }, { name: 'RFC822.SIZE' }];
    case 'FULL':
      return [{ name: 'FLAGS' }, { name: 'INTERNALDATE' }, { name: 'RFC822.SIZE' }, { name: 'ENVELOPE' }, { name: 'BODY' }];
    case 'UID':
    case 'FLAGS':
    case 'INTERNALDATE':
    case 'RFC822.SIZE':
    case 'ENVELOPE':
    case 'BODYSTRUCTURE':
    case 'MODSEQ':
    case 'RFC822':
    case 'RFC822.HEADER':
    case 'RFC822.TEXT':
    case 'SAVEDATE':
      return [{ name: kw }];
    case 'PREVIEW':
      // RFC 8970 3: the LAZY modifier allows NIL; a preview is computed anyway.
      if (p.take(' (')) {
        p.expect('LAZY');
        p.expect(')');
      }
      return [{ name: 'PREVIEW' }];
    case 'BODY':
    case 'BODY.PEEK': {
      if (p.peek() !== 0x5b) {
        if (kw === 'BODY.PEEK') throw p.error('expected section');
        return [{ name: 'BODY' }];
      }
      const section = parseSection(p);
      return [{ name: 'BODY[]', section, peek: kw === 'BODY.PEEK', partial: parsePartial(p) }];
    }
    case 'BINARY':
    case 'BINARY.PEEK': {
      const section = parseSection(p);
      if (section.text !== '') throw p.error('BINARY takes part numbers only');
      return [{ name: 'BINARY[]', section, peek: kw === 'BINARY.PEEK', partial: parsePartial(p) }];
    }
    case 'BINARY.SIZE': {
      const section = parseSection(p);
      if (section.text !== '') throw p.error('BINARY.SIZE takes part numbers only');
      return [{ name: 'BINARY.SIZE', section }];
    }
    default:
      throw p.error(`unknown fetch attribute ${kw}`);
  }
}

/** fetch-att or "(" fetch-att *(SP fetch-att) ")". */
export function parseFetchAtts(p: Parser): FetchAtt[] {
  if (!p.take('(')) return parseAtt(p);
  const atts = parseAtt(p);
  while (p.maybeSpace()) atts.push(...parseAtt(p));
  p.expect(')');
  return atts;
}

export function sectionName(a: FetchAtt): string {
  const s = a.section!;
  let name = s.part.join('.');
  if (s.text) name += (name ? '.' : '') + s.text;
  if (s.fields) name += ` (${s.fields.join(' ')})`;
  return name;
}

/** Whether any attribute needs the message contents rather than only index data. */
export function needsContent(atts: FetchAtt[]): boolean {
  return atts.some((a) => (a.name.startsWith('RFC822') && a.name !== 'RFC822.SIZE') || a.name === 'BODY[]' || a.name === 'BINARY[]' || a.name === 'BINARY.SIZE' || a.name === 'PREVIEW');
}

/** Whether fetching sets \Seen (RFC 9051 6.4.5: BODY[...] and BINARY[...] without PEEK, RFC822, RFC822.TEXT). */
export function setsSeen(atts: FetchAtt[]): boolean {
  return atts.some((a) => ((a.name === 'BODY[]' || a.name === 'BINARY[]') && !a.peek) || a.name === 'RFC822' || a.name === 'RFC822.TEXT');
}

/** Offset where the header ends and the body begins, after the blank line; tolerant of bare LF. */
export function headerEnd(msg: Buffer): number {
  if (msg.subarray(0, 2).toString('latin1') === '\r\n') return 2;
  if (msg[0] === 10) return 1;
  for (let i = msg.indexOf(10); i >= 0 && i < msg.length; i = msg.indexOf(10, i + 1)) {
    if (msg[i + 1] === 10) return i + 2;
    if (msg[i + 1] === 13 && msg[i + 2] === 10) return i + 3;
  }
  return msg.length;
}

export interface Fetched {
  row: MessageRow;
  seq: number;
  msg?: Buffer;
  /** Parsed structure of msg, loaded when needed. */
  part?: Part;
}

export function literalOut(b: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`{${b.length}}\r\n`), b]);
}

function partial(data: Buffer, p: FetchAtt['partial']): Buffer {
  if (!p) return data;
  return data.subarray(Math.min(p.start, data.length), p.length === undefined ? undefined : Math.min(data.length, p.start + p.length));
}

/** A FETCH that cannot be answered for a message, e.g. a part that does not exist. */
export class FetchError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Whether an attribute needs the parsed structure. */
export function needsPart(atts: FetchAtt[]): boolean {
  return atts.some((a) => a.name === 'ENVELOPE' || a.name === 'BODY' || a.name === 'BODYSTRUCTURE' || a.name === 'PREVIEW' || (a.section && (a.section.part.length > 0 || a.section.fields)));
}

/** Builds the data of a FETCH response for one message, without "* n FETCH (" and ")". */
/** The structure items, rendered from the message's structure alone. */
const structureItems: Record<string, RenderKind> = { ENVELOPE: 'envelope', BODYSTRUCTURE: 'bodystructure', BODY: 'body' };

/** The structure items asked for, if they are all that needs the message's structure. */
export function structureKinds(atts: FetchAtt[]): RenderKind[] | undefined {
  const other = atts.some((a) => !structureItems[a.name] && needsPart([a]));
  return other ? undefined : [...new Set(atts.map((a) => structureItems[a.name]).filter((k) => k !== undefined))];
}

export interface FetchOptions {
  utf8: boolean;
  uid: boolean;
  condstore: boolean;
  /** Keeps rendered structure items for later FETCHes; see rendercache. */
  render?: (kind: RenderKind, render: () => Buffer) => Buffer;
}

export function fetchItems(f: Fetched, atts: FetchAtt[], opts: FetchOptions): Buffer[] {
  const structure = (kind: RenderKind, render: () => Buffer) => (opts.render ? opts.render(kind, render) : render());
  const out: Buffer[] = [];
  const item = (s: string) => out.push(Buffer.from((out.length ? ' ' : '') + s));
  const seen = new Set<string>();
  const want = (k: string) => !seen.has(k) && (seen.add(k), true);
  const r = f.row;
  const ro = { utf8: opts.utf8 };
  if (opts.uid && want('UID')) item(`UID ${r.uid}`);
  for (const a of atts) {
    switch (a.name) {
      case 'UID':
        if (want('UID')) item(`UID ${r.uid}`);
        break;
      case 'FLAGS':
        if (want('FLAGS')) item(`FLAGS (${flagList(r.flags, r.keywords).join(' ')})`);
        break;
      case 'INTERNALDATE':
        item(`INTERNALDATE ${formatDateTime(r.received)}`);
        break;
      case 'RFC822.SIZE':
        item(`RFC822.SIZE ${r.size}`);
        break;
      case 'MODSEQ':
        if (want('MODSEQ')) item(`MODSEQ (${r.modseq})`);
        break;
      case 'ENVELOPE':
        item('ENVELOPE ');
        out.push(structure('envelope', () => renderEnvelope(f.part!.envelope, ro)));
        break;
      case 'BODYSTRUCTURE':
        item('BODYSTRUCTURE ');
        out.push(structure('bodystructure', () => renderBodyStructure(f.part!, ro)));
        break;
      case 'BODY':
        item('BODY ');
        out.push(structure('body', () => renderBody(f.part!, ro)));
        break;
      case 'SAVEDATE':
        // RFC 8514 4.
        item(`SAVEDATE ${r.savedate === null ? 'NIL' : formatDateTime(r.savedate)}`);
        break;
      case 'PREVIEW':
        item('PREVIEW ');
        out.push(astringOut(preview(f.msg!, f.part!), opts.utf8));
        break;
      case 'RFC822':
        item('RFC822 ');
        out.push(literalOut(f.msg!));
        break;
      case 'RFC822.HEADER':
        item('RFC822.HEADER ');
        out.push(literalOut(f.msg!.subarray(0, headerEnd(f.msg!))));
        break;
      case 'RFC822.TEXT':
        item('RFC822.TEXT ');
        out.push(literalOut(f.msg!.subarray(headerEnd(f.msg!))));
        break;
      case 'BODY[]': {
        const data = sectionData(f, a.section!);
        item(`BODY[${sectionName(a)}]${a.partial ? `<${a.partial.start}>` : ''} `);
        out.push(literalOut(partial(data, a.partial)));
        break;
      }
      case 'BINARY[]': {
        const data = binaryData(f, a.section!);
        item(`BINARY[${sectionName(a)}]${a.partial ? `<${a.partial.start}>` : ''} `);
        // RFC 3516 4.2: binary content goes in a literal8.
        const d = partial(data, a.partial);
        out.push(Buffer.concat([Buffer.from(d.includes(0) ? '~' : ''), literalOut(d)]));
        break;
      }
      case 'BINARY.SIZE':
        item(`BINARY.SIZE[${sectionName(a)}] ${binaryData(f, a.section!).length}`);
        break;
    }
  }
  if (opts.condstore && want('MODSEQ')) item(`MODSEQ (${r.modseq})`);
  return out;
}

function toSection(s: Section): StructSection {
  const out: StructSection = { part: s.part };
  if (s.text) out.text = s.text;
  if (s.fields) out.fields = s.fields;
  return out;
}

/** Bytes of a body section (RFC 9051 6.4.5); a missing part yields empty data. */
export function sectionData(f: Fetched, s: Section): Buffer {
  const msg = f.msg!;
  if (s.part.length === 0 && !s.fields) {
    if (s.text === '') return msg;
    const he = headerEnd(msg);
    return s.text === 'HEADER' ? msg.subarray(0, he) : msg.subarray(he);
  }
  return sectionBytes(msg, f.part!, toSection(s)) ?? Buffer.alloc(0);
}

/** Decoded content of a part for BINARY (RFC 3516 4.1). */
function binaryData(f: Fetched, s: Section): Buffer {
  if (s.part.length === 0) return f.msg!;
  const p = findPart(f.part!, s.part);
  if (!p) {
    // A multipart whose parts could not be parsed is shown with one empty part (as in BODYSTRUCTURE).
    const parent = findPart(f.part!, s.part.slice(0, -1));
    const m = parent?.message ?? parent;
    if (m && m.type === 'multipart' && !m.parts?.length && s.part[s.part.length - 1] === 1) return Buffer.alloc(0);
    throw new FetchError('no such part', 'NONEXISTENT');
  }
  if (p.parts || p.message) throw new FetchError('BINARY on a multipart or message part', 'UNKNOWN-CTE');
  const enc = p.encoding ?? '7bit';
  if (!['7bit', '8bit', 'binary', 'base64', 'quoted-printable'].includes(enc)) throw new FetchError(`unknown transfer encoding ${enc}`, 'UNKNOWN-CTE');
  return decodedBody(f.msg!, p);
}

export { astringOut };
