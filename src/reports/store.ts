// Reports kept in data/reports.db: DMARC aggregate reports (RFC 7489 7.2) and TLS reports
// (RFC 8460) received about our domains, and the DMARC evaluations of incoming mail from which
// our own aggregate reports are made.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase } from '../store/sqlite.js';
import type { Feedback, Evaluation } from '../dmarcrpt/report.js';
import type { DMARCRecord } from '../dmarc/record.js';
import type { Report as TLSReport } from '../tlsrpt/report.js';

const schema = [
  `
  CREATE TABLE dmarcreport (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received INTEGER NOT NULL,
    -- Our domain the report is about (policy_published/domain), A-label form.
    domain TEXT NOT NULL,
    -- From address of the report message.
    sender TEXT NOT NULL,
    org TEXT NOT NULL,
    reportid TEXT NOT NULL,
    begin INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    report TEXT NOT NULL,
    -- A sender retrying after a temporary error sends the same report again.
    UNIQUE (org, reportid, domain)
  );
  CREATE INDEX dmarcreport_domain ON dmarcreport (domain, "end");

  CREATE TABLE tlsreport (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received INTEGER NOT NULL,
    -- Policy domains of the report, space separated, A-label form.
    domains TEXT NOT NULL,
    sender TEXT NOT NULL,
    org TEXT NOT NULL,
    reportid TEXT NOT NULL,
    begin INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    report TEXT NOT NULL,
    UNIQUE (org, reportid)
  );

  CREATE TABLE dmarceval (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Where the sender's DMARC record was found; reports go to its rua addresses.
    policydomain TEXT NOT NULL,
    -- Start of the report interval the evaluation belongs to, ms since the epoch.
    interval INTEGER NOT NULL,
    evaluated INTEGER NOT NULL,
    record TEXT NOT NULL,
    evaluation TEXT NOT NULL
  );
  CREATE INDEX dmarceval_interval ON dmarceval (interval, policydomain);
  `,
];

export interface StoredDMARCReport {
  id: number;
  received: number;
  domain: string;
  sender: string;
  report: Feedback;
}

export interface StoredTLSReport {
  id: number;
  received: number;
  domains: string[];
  sender: string;
  report: TLSReport;
}

export interface StoredEvaluation {
  id: number;
  policyDomain: string;
  interval: number;
  evaluated: number;
  record: DMARCRecord;
  evaluation: Evaluation;
}

type Row = Record<string, unknown>;

export class ReportStore {
  readonly db: Database.Database;

  constructor(dataDir: string, opts: { readonly?: boolean } = {}) {
    const file = path.join(dataDir, 'reports.db');
    if (opts.readonly) {
      this.db = new Database(file, { readonly: true, fileMustExist: true });
      this.db.pragma('busy_timeout = 5000');
      return;
    }
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.db = openDatabase(file, { durable: true, migrations: schema });
  }

  /** Adds a received DMARC report; false if the same report was stored before. */
  addDMARCReport(received: number, domain: string, sender: string, f: Feedback): boolean {
    const m = f.reportMetadata;
    const r = this.db
      .prepare('INSERT OR IGNORE INTO dmarcreport (received, domain, sender, org, reportid, begin, "end", report) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(received, domain, sender, m.orgName, m.reportID, m.dateRange.begin, m.dateRange.end, JSON.stringify(f));
    return r.changes > 0;
  }

  dmarcReports(domain?: string): StoredDMARCReport[] {
    const rows = (domain ? this.db.prepare('SELECT * FROM dmarcreport WHERE domain = ? ORDER BY "end" DESC, id DESC').all(domain) : this.db.prepare('SELECT * FROM dmarcreport ORDER BY "end" DESC, id DESC').all()) as Row[];
    return rows.map(dmarcRow);
  }

  dmarcReport(id: number): StoredDMARCReport | undefined {
    const row = this.db.prepare('SELECT * FROM dmarcreport WHERE id = ?').get(id) as Row | undefined;
    return row && dmarcRow(row);
  }

  /** Adds a received TLS report; false if the same report was stored before. */
  addTLSReport(received: number, domains: string[], sender: string, r: TLSReport): boolean {
    const res = this.db
      .prepare('INSERT OR IGNORE INTO tlsreport (received, domains, sender, org, reportid, begin, "end", report) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(received, domains.join(' '), sender, r.organizationName, r.reportId, r.start.getTime(), r.end.getTime(), JSON.stringify(r));
    return res.changes > 0;
  }

  tlsReports(domain?: string): StoredTLSReport[] {
    const rows = this.db.prepare('SELECT * FROM tlsreport ORDER BY "end" DESC, id DESC').all() as Row[];
    return rows.map(tlsRow).filter((r) => !domain || r.domains.includes(domain));
  }

  tlsReport(id: number): StoredTLSReport | undefined {
    const row = this.db.prepare('SELECT * FROM tlsreport WHERE id = ?').get(id) as Row | undefined;
    return row && tlsRow(row);
  }

  addEvaluation(policyDomain: string, interval: number, evaluated: number, record: DMARCRecord, ev: Evaluation): void {
    this.db
      .prepare('INSERT INTO dmarceval (policydomain, interval, evaluated, record, evaluation) VALUES (?, ?, ?, ?, ?)')
      .run(policyDomain, interval, evaluated, JSON.stringify(record), JSON.stringify(ev));
  }

  /** Evaluations, all or of one policy domain, oldest first. */
  evaluations(policyDomain?: string): StoredEvaluation[] {
    const rows = (policyDomain
      ? this.db.prepare('SELECT * FROM dmarceval WHERE policydomain = ? ORDER BY id').all(policyDomain)
      : this.db.prepare('SELECT * FROM dmarceval ORDER BY id').all()) as Row[];
    return rows.map(evalRow);
  }

  /** Policy domains and intervals that ended before the given time. */
  dueIntervals(before: number): { policyDomain: string; interval: number }[] {
    return (this.db.prepare('SELECT DISTINCT policydomain, interval FROM dmarceval WHERE interval < ? ORDER BY interval').all(before) as Row[]).map((r) => ({
      policyDomain: r.policydomain as string,
      interval: r.interval as number,
    }));
  }

  intervalEvaluations(policyDomain: string, interval: number): StoredEvaluation[] {
    return (this.db.prepare('SELECT * FROM dmarceval WHERE policydomain = ? AND interval = ? ORDER BY id').all(policyDomain, interval) as Row[]).map(evalRow);
  }

  removeEvaluations(policyDomain: string, interval?: number): number {
    const r =
      interval === undefined
        ? this.db.prepare('DELETE FROM dmarceval WHERE policydomain = ?').run(policyDomain)
        : this.db.prepare('DELETE FROM dmarceval WHERE policydomain = ? AND interval = ?').run(policyDomain, interval);
    return r.changes;
  }

  close(): void {
    this.db.close();
  }
}

function dmarcRow(r: Row): StoredDMARCReport {
  return { id: r.id as number, received: r.received as number, domain: r.domain as string, sender: r.sender as string, report: JSON.parse(r.report as string) as Feedback };
}

function tlsRow(r: Row): StoredTLSReport {
  const report = JSON.parse(r.report as string) as TLSReport & { start: string; end: string };
  return {
    id: r.id as number,
    received: r.received as number,
    domains: (r.domains as string).split(' ').filter(Boolean),
    sender: r.sender as string,
    report: { ...report, start: new Date(report.start), end: new Date(report.end) },
  };
}

function evalRow(r: Row): StoredEvaluation {
  return {
    id: r.id as number,
    policyDomain: r.policydomain as string,
    interval: r.interval as number,
    evaluated: r.evaluated as number,
    record: JSON.parse(r.record as string) as DMARCRecord,
    evaluation: JSON.parse(r.evaluation as string) as Evaluation,
  };
}
