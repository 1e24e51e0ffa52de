// TLS results of outbound sessions, kept per policy domain and UTC day, and the daily TLS
// reports (RFC 8460) sent to the policy domains that publish a _smtp._tls record.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import https from 'node:https';
import tls from 'node:tls';
import { gzipSync } from 'node:zlib';
import type { App } from '../server/app.js';
import type { QueueStore } from './store.js';
import { buildReport, reportJSON, type PolicyResult } from '../tlsrpt/report.js';
import { resolverLookup } from '../dns/lookup.js';
import { lookupTLSRPTRecord } from '../tlsrpt/record.js';
import { composeReportMessage } from '../tlsrpt/message.js';
import { dkimSignatures } from '../reports/dkimsign.js';
import { Log } from '../log/log.js';

const log = Log.pkg('queue');
const DAY = 86400_000;

export function recordTLSResult(q: QueueStore, now: number, r: PolicyResult): void {
  q.db.prepare('INSERT INTO tlsresult (policydomain, day, result) VALUES (?, ?, ?)').run(r.policyDomain, now - (now % DAY), JSON.stringify(r));
}

export function tlsResults(q: QueueStore): { policydomain: string; day: number; result: PolicyResult }[] {
  const rows = q.db.prepare('SELECT policydomain, day, result FROM tlsresult ORDER BY id').all() as { policydomain: string; day: number; result: string }[];
  return rows.map((r) => ({ ...r, result: JSON.parse(r.result) as PolicyResult }));
}

/**
 * Sends the reports of days that have ended (RFC 8460 4.1: a report covers a UTC day) to the
 * destinations of the policy domain's record, by mail to "mailto:" addresses and by HTTPS POST to
 * "https:" URLs, and forgets the results. Returns the number of reports queued or posted.
 */
export async function sendTLSReports(app: App): Promise<number> {
  const q = app.queue;
  const now = app.clock.now();
  const today = now - (now % DAY);
  const due = q.db.prepare('SELECT DISTINCT policydomain, day FROM tlsresult WHERE day < ?').all(today) as { policydomain: string; day: number }[];
  let sent = 0;
  const hostname = app.config.static_.Hostname;
  for (const { policydomain, day } of due) {
    const rows = (q.db.prepare('SELECT result FROM tlsresult WHERE policydomain = ? AND day = ?').all(policydomain, day) as { result: string }[]).map(
      (r) => JSON.parse(r.result) as PolicyResult,
    );
    const rec = await lookupTLSRPTRecord(app.resolver, policydomain);
    if (rec.status === 'temporary-failure' && now - day < 3 * DAY) continue;
    q.db.prepare('DELETE FROM tlsresult WHERE policydomain = ? AND day = ?').run(policydomain, day);
    if (rec.status !== 'found') continue;
    const report = buildReport(
      {
        organizationName: hostname,
        start: new Date(day),
        end: new Date(day + DAY - 1000),
        contactInfo: `postmaster@${hostname}`,
        reportId: `${new Date(day).toISOString().slice(0, 10)}.${policydomain}@${hostname}`,
      },
      rows,
    );
    for (const dest of rec.record.rua) {
      if (dest.type === 'https') {
        postReport(app, dest.url, gzipSync(reportJSON(report)), policydomain);
        sent++;
        continue;
      }
      const msg = composeReportMessage({ from: `postmaster@${hostname}`, to: dest.address, submitter: hostname, policyDomain: policydomain, report, date: new Date(now) });
      const file = await app.store.writeTemp(msg);
      try {
        const at = dest.address.lastIndexOf('@');
        // RFC 8460 5.3: report messages are DKIM-signed by the sending domain.
        const prefix = Buffer.from(await dkimSignatures(app.config, hostname, msg, new Date(now)));
        // The null sender: a failing report must not cause a DSN (RFC 3461 6.2 applies in spirit).
        q.enqueue(file, {
          account: app.config.static_.Postmaster.Account,
          sender: '',
          recipients: [{ address: dest.address, domain: dest.address.slice(at + 1) }],
          prefix,
          requireTLS: false,
          nextAttempt: now,
          subject: `TLS report for ${policydomain}`,
          isTLSReport: true,
        });
        sent++;
        log.info('tls report queued', { policydomain, to: dest.address });
      } finally {
        await fsp.rm(file.path, { force: true });
      }
    }
  }
  return sent;
}

const postTimeoutMs = 30_000;
/** Waits before the attempts after the first. */
const postRetryMs = [60_000, 5 * 60_000];

/**
 * Posts a gzipped report (RFC 8460 3: POST, Content-Type application/tlsrpt+gzip, any 2xx
 * status is success) in the background, trying again twice after failures. The server must
 * present a certificate valid for the URL's host; its name is resolved with Postern's resolver.
 */
function postReport(app: App, url: URL, body: Buffer, policydomain: string, attempt = 0): void {
  const ca = [...tls.rootCertificates, ...app.config.static_.Queue.CAFiles.map((f) => fs.readFileSync(app.config.resolve(f), 'utf8'))];
  let finished = false;
  const done = (err?: string) => {
    if (finished) return;
    finished = true;
    if (!err) return log.info('tls report posted', { policydomain, url: url.href });
    const wait = postRetryMs[attempt];
    log.error('posting tls report', { policydomain, url: url.href, attempt: attempt + 1, err, retry: wait !== undefined });
    if (wait !== undefined) setTimeout(() => postReport(app, url, body, policydomain, attempt + 1), wait).unref();
  };
  const req = https.request(
    url,
    {
      method: 'POST',
      ca,
      lookup: resolverLookup(app.resolver),
      timeout: postTimeoutMs,
      headers: { 'Content-Type': 'application/tlsrpt+gzip', 'Content-Length': body.length, 'User-Agent': 'Postern' },
    },
    (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      res.on('end', () => done(status >= 200 && status < 300 ? undefined : `HTTP status ${status}`));
      res.on('error', (e) => done(e.message));
    },
  );
  req.on('timeout', () => req.destroy(new Error(`no response within ${postTimeoutMs} ms`)));
  req.on('error', (e) => done(e.message));
  req.end(body);
}
