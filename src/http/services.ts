// Postern's own web services, registered with the router, and the state they share per server.
import type { App } from '../server/app.js';
import type { CtlHandler } from '../ctl/ctl.js';
import { registry } from '../metrics/metrics.js';
import { registerService } from './router.js';
import { Sessions, WebAuth } from './session.js';
import { sendText } from './util.js';
import { adminApp } from './admin.js';
import { accountApp } from './account.js';
import '../webmail/webmail.js';

export interface WebState {
  sessions: Sessions;
  admin: WebAuth;
  account: WebAuth;
  /** Queue control functions of the running server, as for "postern queue". */
  queue: Map<string, CtlHandler>;
}

const states = new WeakMap<App, WebState>();

/** The web state of a running server; other applications (webmail) create their WebAuth on its sessions. */
export function webState(app: App): WebState {
  let s = states.get(app);
  if (!s) {
    const sessions = new Sessions(app.clock);
    s = { sessions, admin: new WebAuth(sessions, 'admin', 'postern_admin'), account: new WebAuth(sessions, 'account', 'postern_account'), queue: new Map() };
    states.set(app, s);
  }
  return s;
}

registerService('Admin', (req, res, ctx) => adminApp(webState(ctx.app))(req, res, ctx));
registerService('Account', (req, res, ctx) => accountApp(webState(ctx.app))(req, res, ctx));
registerService('Metrics', async (req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed\n');
  sendText(res, 200, await registry.metrics(), registry.contentType);
});
