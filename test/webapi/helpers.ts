// Shared pieces of the webapi, webhook and web server tests: listener settings added to a running
// test server, webapi calls with basic authentication, and messages of a mailbox with their ids.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { TestServer } from '../helpers/server.js';
import { msgsPerDir } from '../../src/store/account.js';

/** Adds lines to the test listener in postern.conf and restarts the server to use them. */
export async function addListenerLines(srv: TestServer, lines: string): Promise<void> {
  const text = fs.readFileSync(srv.configFile, 'utf8');
  const anchor = '    IPs: ["127.0.0.1"]\n';
  if (!text.includes(anchor)) throw new Error('no listener IPs line in postern.conf');
  fs.writeFileSync(srv.configFile, text.replace(anchor, anchor + lines));
  await srv.restart();
}

/** The webapi on the plain HTTP port, at its default path. */
export function enableWebAPI(srv: TestServer): Promise<void> {
  return addListenerLines(srv, `    WebAPIHTTP:\n      Enabled: true\n      Port: ${srv.ports.http}\n`);
}

export const janeAuth = 'Basic ' + Buffer.from('jane@example.test:secret-pass').toString('base64');

export interface APIResponse {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
}

/** Calls a webapi method with a JSON body, or with a FormData body as given. */
export async function api(srv: TestServer, method: string, request: unknown, opts: { auth?: string; body?: FormData | string; contentType?: string } = {}): Promise<APIResponse> {
  const headers: Record<string, string> = {};
  if (opts.auth !== '') headers.Authorization = opts.auth ?? janeAuth;
  if (opts.contentType) headers['Content-Type'] = opts.contentType;
  else if (opts.body === undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${srv.ports.http}/webapi/v0/${method}`, { method: 'POST', headers, body: opts.body ?? JSON.stringify(request) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json, headers: res.headers };
}

/** Ids and contents of the messages of a mailbox, read from the index without touching the server's state. */
export function storedMessages(srv: TestServer, account: string, mailbox = 'Inbox'): { id: number; msg: string }[] {
  const dir = path.join(srv.dataDir, 'accounts', account);
  if (!fs.existsSync(path.join(dir, 'index.db'))) return [];
  const db = new Database(path.join(dir, 'index.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT m.id, m.prefix FROM message m JOIN mailbox b ON m.mailbox_id = b.id WHERE b.namekey = ? ORDER BY m.uid').all(mailbox.toLowerCase()) as {
      id: number;
      prefix: Buffer;
    }[];
    return rows.map((r) => ({ id: r.id, msg: Buffer.concat([r.prefix, fs.readFileSync(path.join(dir, 'msg', String(Math.floor(r.id / msgsPerDir)), String(r.id)))]).toString('utf8') }));
  } finally {
    db.close();
  }
}
