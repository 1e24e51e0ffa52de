// Received DMARC aggregate and TLS reports about our domains, summarized for the admin pages;
// the full reports are included for a closer look.
import type { App } from '../server/app.js';
import { reportStore } from '../reports/incoming.js';

export function storedReports(app: App) {
  const store = reportStore(app);
  return {
    available: true,
    dmarc: store.dmarcReports().map((r) => ({
      id: r.id,
      received: r.received,
      domain: r.domain,
      sender: r.sender,
      org: r.report.reportMetadata.orgName,
      begin: r.report.reportMetadata.dateRange.begin * 1000,
      end: r.report.reportMetadata.dateRange.end * 1000,
      messages: r.report.records.reduce((n, x) => n + x.row.count, 0),
      report: r.report,
    })),
    tls: store.tlsReports().map((r) => ({
      id: r.id,
      received: r.received,
      domains: r.domains,
      sender: r.sender,
      org: r.report.organizationName,
      begin: new Date(r.report.start).getTime(),
      end: new Date(r.report.end).getTime(),
      successful: r.report.policies.reduce((n, p) => n + p.successfulSessions, 0),
      failed: r.report.policies.reduce((n, p) => n + p.failedSessions, 0),
      report: r.report,
    })),
  };
}
