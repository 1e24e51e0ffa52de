// A small schema language for the config files. One description of each field drives
// validation (with file and line in every error), defaults, and the annotated examples
// printed by `postern config describe-static` and `describe-domains`.
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

interface Common {
  doc: string;
  /** Field may be absent. Absent optional fields get `default` if set. */
  optional?: boolean;
  default?: unknown;
}
export interface StringSpec extends Common {
  kind: 'string';
  example: string;
  values?: readonly string[];
  check?: (v: string) => string | undefined;
}
export interface IntSpec extends Common {
  kind: 'int';
  example: number;
  min?: number;
  max?: number;
}
export interface BoolSpec extends Common {
  kind: 'bool';
  example?: boolean;
}
export interface ListSpec extends Common {
  kind: 'list';
  of: Spec;
  /** Examples of elements for describe output; the element example is used if absent. */
  examples?: unknown[];
}
export interface MapSpec extends Common {
  kind: 'map';
  of: Spec;
  keyExample: string;
  keyCheck?: (k: string) => string | undefined;
}
export interface StructSpec extends Common {
  kind: 'struct';
  fields: Record<string, Spec>;
  /** Fields of which exactly one must be given; describe shows all but the first commented out. */
  oneOf?: string[];
}
export type Spec = StringSpec | IntSpec | BoolSpec | ListSpec | MapSpec | StructSpec;

export const str = (doc: string, example: string, o: Partial<StringSpec> = {}): StringSpec => ({ kind: 'string', doc, example, ...o });
export const int = (doc: string, example: number, o: Partial<IntSpec> = {}): IntSpec => ({ kind: 'int', doc, example, ...o });
export const bool = (doc: string, o: Partial<BoolSpec> = {}): BoolSpec => ({ kind: 'bool', doc, optional: true, default: false, ...o });
export const list = (doc: string, of: Spec, o: Partial<ListSpec> = {}): ListSpec => ({ kind: 'list', doc, of, ...o });
export const map = (doc: string, keyExample: string, of: Spec, o: Partial<MapSpec> = {}): MapSpec => ({ kind: 'map', doc, keyExample, of, ...o });
export const struct = (doc: string, fields: Record<string, Spec>, o: Partial<StructSpec> = {}): StructSpec => ({ kind: 'struct', doc, fields, ...o });

export interface ConfigError {
  file: string;
  line: number;
  path: string;
  message: string;
}

export function formatError(e: ConfigError): string {
  return `${e.file}:${e.line}: ${e.path ? e.path + ': ' : ''}${e.message}`;
}

/** Position lookup for semantic checks after structural validation. */
export class Positions {
  private lines = new Map<string, number>();
  constructor(
    readonly file: string,
    private readonly lc: LineCounter,
  ) {}
  set(path: string, offset: number | undefined): void {
    if (offset !== undefined) this.lines.set(path, this.lc.linePos(offset).line);
  }
  line(path: string): number {
    // Fall back to the nearest ancestor with a known position.
    for (let p = path; ; p = p.slice(0, Math.max(0, p.lastIndexOf('.')))) {
      const l = this.lines.get(p);
      if (l !== undefined) return l;
      if (p === '') return 1;
    }
  }
  error(path: string, message: string): ConfigError {
    return { file: this.file, line: this.line(path), path, message };
  }
}

/** Converts a parsed YAML document to a plain value checked against the spec. */
export function validate(doc: Document, spec: StructSpec, pos: Positions, errors: ConfigError[]): unknown {
  for (const e of doc.errors) {
    errors.push({ file: pos.file, line: e.linePos?.[0].line ?? 1, path: '', message: e.message.split('\n')[0]! });
  }
  if (doc.errors.length > 0) return undefined;
  return check(doc.contents ?? null, spec, '', pos, errors);
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function check(node: Node | null, spec: Spec, path: string, pos: Positions, errors: ConfigError[]): unknown {
  if (node) pos.set(path, node.range?.[0]);
  const fail = (message: string): undefined => {
    errors.push(pos.error(path, message));
    return undefined;
  };
  if (node === null || (isScalar(node) && node.value === null)) {
    if (spec.kind === 'struct') return buildStruct(null, spec, path, pos, errors);
    if (spec.kind === 'list') return [];
    if (spec.kind === 'map') return {};
    return fail('value missing');
  }
  switch (spec.kind) {
    case 'string': {
      if (!isScalar(node) || typeof node.value === 'object') return fail('must be a string');
      const v = String(node.value);
      if (spec.values && !spec.values.includes(v)) return fail(`must be one of ${spec.values.join(', ')}`);
      const msg = spec.check?.(v);
      return msg ? fail(msg) : v;
    }
    case 'int': {
      if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value)) return fail('must be an integer');
      if ((spec.min !== undefined && node.value < spec.min) || (spec.max !== undefined && node.value > spec.max)) {
        return fail(`must be between ${spec.min ?? '-inf'} and ${spec.max ?? 'inf'}`);
      }
      return node.value;
    }
    case 'bool':
      if (!isScalar(node) || typeof node.value !== 'boolean') return fail('must be true or false');
      return node.value;
    case 'list': {
      if (!isSeq(node)) return fail('must be a list');
      return node.items.map((item, i) => check(item as Node, spec.of, join(path, String(i)), pos, errors));
    }
    case 'map': {
      if (!isMap(node)) return fail('must be a mapping');
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : undefined;
        const kpath = join(path, k ?? '?');
        if (isScalar(pair.key)) pos.set(kpath, pair.key.range?.[0]);
        if (k === undefined) {
          fail('keys must be strings');
          continue;
        }
        if (Object.hasOwn(out, k)) {
          errors.push(pos.error(kpath, 'duplicate key'));
          continue;
        }
        const msg = spec.keyCheck?.(k);
        if (msg) errors.push(pos.error(kpath, msg));
        out[k] = check((pair.value as Node | null) ?? null, spec.of, kpath, pos, errors);
      }
      return out;
    }
    case 'struct':
      return buildStruct(node, spec, path, pos, errors);
  }
}

function buildStruct(node: Node | null, spec: StructSpec, path: string, pos: Positions, errors: ConfigError[]): unknown {
  if (node !== null && !isMap(node)) {
    errors.push(pos.error(path, 'must be a mapping'));
    return undefined;
  }
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  if (node) {
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '?';
      const kpath = join(path, k);
      if (isScalar(pair.key)) pos.set(kpath, pair.key.range?.[0]);
      const fspec = spec.fields[k];
      if (!fspec) {
        errors.push(pos.error(kpath, `unknown field (known: ${Object.keys(spec.fields).join(', ')})`));
        continue;
      }
      if (seen.has(k)) {
        errors.push(pos.error(kpath, 'duplicate field'));
        continue;
      }
      seen.add(k);
      out[k] = check((pair.value as Node | null) ?? null, fspec, kpath, pos, errors);
    }
  }
  for (const [k, fspec] of Object.entries(spec.fields)) {
    if (seen.has(k)) continue;
    if (!fspec.optional) errors.push(pos.error(path, `required field ${k} missing`));
    else if (fspec.default !== undefined) out[k] = structuredClone(fspec.default);
    else if (fspec.kind === 'list') out[k] = [];
    else if (fspec.kind === 'map') out[k] = {};
  }
  if (node && spec.oneOf && spec.oneOf.filter((k) => seen.has(k)).length !== 1) errors.push(pos.error(path, `exactly one of ${spec.oneOf.join(', ')} is needed`));
  return out;
}

/** Annotated example document: every field with its documentation as comments. */
export function describe(spec: StructSpec, header: string): string {
  const lines: string[] = header.split('\n').map((l) => (l ? `# ${l}` : '#'));
  lines.push('');
  describeFields(spec, 0, lines);
  return lines.join('\n') + '\n';
}

function comment(lines: string[], indent: string, spec: Spec): void {
  const notes: string[] = [];
  if (spec.optional) notes.push('optional');
  if (spec.default !== undefined && spec.default !== false && typeof spec.default !== 'object') {
    notes.push(`default ${JSON.stringify(spec.default)}`);
  }
  if (spec.kind === 'string' && spec.values) notes.push(`one of: ${spec.values.join(', ')}`);
  const doc = spec.doc + (notes.length ? ` (${notes.join(', ')})` : '');
  for (const l of wrap(doc, 96 - indent.length)) lines.push(`${indent}# ${l}`);
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let cur = '';
    for (const w of para.split(' ')) {
      if (cur && cur.length + 1 + w.length > width) {
        out.push(cur);
        cur = w;
      } else cur = cur ? `${cur} ${w}` : w;
    }
    out.push(cur);
  }
  return out;
}

function scalar(spec: Spec): string {
  switch (spec.kind) {
    case 'string':
      return yamlString(spec.example);
    case 'int':
      return String(spec.example);
    case 'bool':
      return String(spec.example ?? false);
    default:
      return '';
  }
}

function yamlString(s: string): string {
  return /^[A-Za-z0-9_./@-][A-Za-z0-9_./@ :-]*$/.test(s) && !/: |\s$/.test(s) && !['true', 'false', 'null', 'yes', 'no'].includes(s)
    ? s
    : JSON.stringify(s);
}

function describeFields(spec: StructSpec, depth: number, lines: string[]): void {
  const indent = '  '.repeat(depth);
  for (const [name, f] of Object.entries(spec.fields)) {
    const sub: string[] = [];
    comment(sub, indent, f);
    describeValue(`${indent}${name}:`, f, depth, sub);
    // Alternatives to the first field of a oneOf group are shown, but commented out, so the example stays valid.
    const alt = spec.oneOf?.includes(name) && name !== spec.oneOf[0];
    lines.push(...(alt ? sub.map((l) => (l.startsWith(`${indent}#`) ? l : `${indent}# ${l.slice(indent.length)}`)) : sub));
  }
}

function describeValue(prefix: string, f: Spec, depth: number, lines: string[]): void {
  const indent = '  '.repeat(depth);
  switch (f.kind) {
    case 'struct':
      lines.push(prefix);
      describeFields(f, depth + 1, lines);
      break;
    case 'map': {
      lines.push(prefix);
      const inner = '  '.repeat(depth + 1);
      if (f.of.kind === 'struct' || f.of.kind === 'map' || f.of.kind === 'list') {
        describeValue(`${inner}${yamlString(f.keyExample)}:`, f.of, depth + 1, lines);
      } else {
        lines.push(`${inner}${yamlString(f.keyExample)}: ${scalar(f.of)}`);
      }
      break;
    }
    case 'list': {
      lines.push(prefix);
      if (f.of.kind === 'struct') {
        const sub: string[] = [];
        describeFields(f.of, depth + 2, sub);
        // The first field line (after its comments) starts the list element.
        const idx = sub.findIndex((l) => !l.trimStart().startsWith('#'));
        if (idx >= 0) sub[idx] = `${indent}  - ${sub[idx]!.trimStart()}`;
        lines.push(...sub);
      } else {
        for (const ex of f.examples ?? [undefined]) {
          lines.push(`${indent}  - ${ex === undefined ? scalar(f.of) : typeof ex === 'string' ? yamlString(ex) : String(ex)}`);
        }
      }
      break;
    }
    default:
      lines.push(`${prefix} ${scalar(f)}`);
  }
}
