// Finding the aggregate report in a received report message (RFC 7489 7.2.1.1): the XML as the
// message body or an attachment, plain or compressed with gzip or zip.

import { gunzipSync } from 'node:zlib';
import { decodedBody } from '../message/decode.js';
import { getParam } from '../message/params.js';
import { allParts, parseMessage, type Part } from '../message/part.js';
import { parseReport, ReportError, type Feedback } from './report.js';
import { MAX_XML_BYTES } from './xml.js';
import { zipEntries, zipRead, ZipError } from './zip.js';

export interface ExtractOptions {
  /** Largest report after decompression; default 20 MiB. */
  maxBytes?: number;
}

type Kind = 'xml' | 'gzip' | 'zip';

/** How a part's content is packed, from its media type or file name (RFC 7489 7.2.1.1), or undefined if it cannot be a report. */
function kind(part: Part): Kind | undefined {
  const type = `${part.type}/${part.subtype}`;
  const name = (getParam(part.dispositionParams, 'filename') ?? getParam(part.params, 'name') ?? '').toLowerCase();
  if (['application/gzip', 'application/x-gzip', 'application/gzip-compressed'].includes(type) || name.endsWith('.gz')) return 'gzip';
  if (['application/zip', 'application/x-zip', 'application/x-zip-compressed'].includes(type) || name.endsWith('.zip')) return 'zip';
  if (type === 'text/xml' || type === 'application/xml' || name.endsWith('.xml')) return 'xml';
  return undefined;
}

/** The report XML inside a part's decoded body; the content's magic numbers win over labels. */
function unpack(body: Buffer, labelled: Kind, maxBytes: number): Buffer {
  const k: Kind = body[0] === 0x1f && body[1] === 0x8b ? 'gzip' : body.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1')) ? 'zip' : labelled;
  if (k === 'gzip') {
    try {
      return gunzipSync(body, { maxOutputLength: maxBytes });
    } catch (e) {
      throw new ReportError(`gzip: ${(e as Error).message}`);
    }
  }
  if (k === 'zip') {
    try {
      const files = zipEntries(body).filter((e) => !e.name.endsWith('/'));
      const xml = files.length === 1 ? files : files.filter((e) => e.name.toLowerCase().endsWith('.xml'));
      if (xml.length !== 1) throw new ReportError(`zip archive with ${files.length} files and ${xml.length} XML files; expected one report`);
      return zipRead(body, xml[0]!, maxBytes);
    } catch (e) {
      if (e instanceof ZipError) throw new ReportError(`zip: ${e.message}`);
      throw e;
    }
  }
  if (body.length > maxBytes) throw new ReportError(`report of ${body.length} bytes, limit is ${maxBytes}`);
  return body;
}

/**
 * The XML of the aggregate report in a message: the first part that is XML, gzip or zip by type
 * or file name, searched depth-first through multiparts and attached messages. Throws ReportError
 * when there is none or it cannot be unpacked.
 */
export function extractReportXML(message: Buffer, opts: ExtractOptions = {}): Buffer {
  const maxBytes = opts.maxBytes ?? MAX_XML_BYTES;
  const candidates = allParts(parseMessage(message)).flatMap((p) => {
    const k = !p.parts && !p.message ? kind(p) : undefined;
    return k ? [{ part: p, kind: k }] : [];
  });
  if (candidates.length === 0) throw new ReportError('no report in message: no XML, gzip or zip part');
  const { part, kind: k } = candidates[0]!;
  return unpack(decodedBody(message, part), k, maxBytes);
}

/** The aggregate report in a message, parsed. Throws ReportError. */
export function parseMessageReport(message: Buffer, opts: ExtractOptions = {}): Feedback {
  return parseReport(extractReportXML(message, opts), { maxBytes: opts.maxBytes ?? MAX_XML_BYTES });
}
