// Request bodies of webapi calls: JSON, or a form (application/x-www-form-urlencoded, or
// multipart/form-data of RFC 7578 with uploaded files) with the JSON in its "request" field.
import { parseMimeValue, getParam } from '../message/params.js';
import { bytesToText } from '../message/header.js';

export interface FormPart {
  name: string;
  filename?: string;
  contentType?: string;
  /** Header fields of the part, names lower-cased, e.g. a Content-ID given with the upload. */
  headers: Map<string, string>;
  data: Buffer;
}

export class FormError extends Error {}

/** Splits a multipart/form-data body at its boundary (RFC 2046 5.1.1, RFC 7578 4.1). */
export function parseMultipart(body: Buffer, boundary: string): FormPart[] {
  const delim = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delim);
  if (pos < 0) throw new FormError('multipart body without boundary');
  const parts: FormPart[] = [];
  for (;;) {
    pos += delim.length;
    if (body.subarray(pos, pos + 2).toString() === '--') break;
    // The rest of the delimiter line (transport padding) is ignored.
    const lineEnd = body.indexOf('\r\n', pos);
    if (lineEnd < 0) throw new FormError('truncated multipart body');
    const start = lineEnd + 2;
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), start);
    if (next < 0) throw new FormError('multipart body without closing boundary');
    const part = body.subarray(start, next);
    const headEnd = part.indexOf('\r\n\r\n');
    const head = headEnd < 0 ? part.toString('latin1') : part.subarray(0, headEnd).toString('latin1');
    const data = headEnd < 0 ? Buffer.alloc(0) : part.subarray(headEnd + 4);
    const headers = new Map<string, string>();
    for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    const cd = parseMimeValue(headers.get('content-disposition') ?? '');
    if (cd.value.toLowerCase() !== 'form-data') throw new FormError('multipart part is not form-data');
    const name = getParam(cd.params, 'name');
    if (name === undefined) throw new FormError('form-data part without name');
    const filename = getParam(cd.params, 'filename');
    parts.push({
      name: bytesToText(name),
      filename: filename === undefined ? undefined : bytesToText(filename),
      contentType: headers.get('content-type'),
      headers,
      data,
    });
    pos = next + 2;
  }
  return parts;
}

/** The "request" JSON and uploaded files of a call. */
export function parseRequest(contentType: string | undefined, body: Buffer): { request: unknown; files: FormPart[] } {
  const ct = parseMimeValue(contentType ?? '');
  const type = ct.value.toLowerCase();
  let json: string | undefined;
  let files: FormPart[] = [];
  if (type === 'application/json') json = body.toString('utf8');
  else if (type === 'application/x-www-form-urlencoded') json = new URLSearchParams(body.toString('utf8')).get('request') ?? undefined;
  else if (type === 'multipart/form-data') {
    const boundary = getParam(ct.params, 'boundary');
    if (!boundary) throw new FormError('multipart/form-data without boundary');
    const parts = parseMultipart(body, boundary);
    json = parts.find((p) => p.name === 'request' && p.filename === undefined)?.data.toString('utf8');
    files = parts.filter((p) => p.name !== 'request');
  } else throw new FormError('content type must be application/json, application/x-www-form-urlencoded or multipart/form-data');
  if (json === undefined) throw new FormError('form field "request" with the JSON request missing');
  try {
    return { request: json.trim() === '' ? {} : JSON.parse(json), files };
  } catch {
    throw new FormError('request is not valid JSON');
  }
}
