// Received DMARC aggregate and TLS reports, for the admin pages. Incoming reports are not stored
// yet, so there is nothing to list; the admin page shows that.
import type { App } from '../server/app.js';

export interface StoredReports {
  /** False while the server keeps no received reports. */
  available: boolean;
  dmarc: unknown[];
  tls: unknown[];
}

export function storedReports(_app: App): StoredReports {
  return { available: false, dmarc: [], tls: [] };
}
