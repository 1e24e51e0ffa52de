// Answers ACME http-01 validations (RFC 8555 8.3) on every web port, before other handlers:
// the CA fetches http://<name>/.well-known/acme-challenge/<token> on port 80.
import { registerFirst } from '../http/router.js';
import { httpChallengeResponse } from './setup.js';

registerFirst((req, res, ctx) => {
  if (!ctx.url.pathname.startsWith('/.well-known/acme-challenge/')) return false;
  const keyAuth = httpChallengeResponse(ctx.app, ctx.url.pathname);
  if (keyAuth === undefined) return false;
  ctx.log.info('http-01 challenge answered', { host: ctx.host });
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': Buffer.byteLength(keyAuth) });
  res.end(keyAuth);
  return true;
});
