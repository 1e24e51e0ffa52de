// Control socket: the CLI talks to a running server over a unix socket in the data
// directory, one JSON request per line, answered by JSON lines ending with {"ok"} or {"error"}.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Log } from '../log/log.js';

const log = Log.pkg('ctl');

export function ctlPath(dataDir: string): string {
  return path.join(dataDir, 'ctl');
}

export interface CtlRequest {
  cmd: string;
  args?: Record<string, unknown>;
}

/** Handler: returns the result, or calls send() for intermediate lines (progress). */
export type CtlHandler = (args: Record<string, unknown>, send: (msg: unknown) => void) => Promise<unknown> | unknown;

export class CtlServer {
  private server?: net.Server;

  constructor(
    private readonly socketPath: string,
    private readonly handlers: Map<string, CtlHandler>,
  ) {}

  async listen(): Promise<void> {
    // A socket file left by a process that is gone is removed; a live one means another server.
    if (fs.existsSync(this.socketPath)) {
      if (await isRunning(this.socketPath)) throw new Error(`another server is running for this data directory (${this.socketPath})`);
      fs.rmSync(this.socketPath, { force: true });
    }
    this.server = net.createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.socketPath, () => resolve());
    });
    fs.chmodSync(this.socketPath, 0o600);
  }

  private serve(s: net.Socket): void {
    let buf = '';
    s.setEncoding('utf8');
    s.on('error', () => {});
    s.on('data', async (d: string) => {
      buf += d;
      if (buf.length > 1 << 20) return s.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      s.pause();
      const line = buf.slice(0, nl);
      const send = (msg: unknown) => s.write(JSON.stringify(msg) + '\n');
      try {
        const req = JSON.parse(line) as CtlRequest;
        const h = this.handlers.get(req.cmd);
        if (!h) throw new Error(`unknown command ${req.cmd}`);
        log.debug('ctl command', { cmd: req.cmd });
        const result = await h(req.args ?? {}, send);
        send({ ok: true, result });
      } catch (e) {
        send({ error: (e as Error).message });
      }
      s.end();
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }
}

export function isRunning(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Sends a request to the running server; progress lines go to onMessage. */
export function ctlCall(socketPath: string, cmd: string, args: Record<string, unknown> = {}, onMessage?: (msg: unknown) => void): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = '';
    let done = false;
    s.setEncoding('utf8');
    s.once('connect', () => s.write(JSON.stringify({ cmd, args }) + '\n'));
    s.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, nl)) as { ok?: boolean; result?: unknown; error?: string };
        buf = buf.slice(nl + 1);
        if (msg.error !== undefined) {
          done = true;
          reject(new Error(msg.error));
        } else if (msg.ok) {
          done = true;
          resolve(msg.result);
        } else onMessage?.(msg);
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      reject(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? new Error(`no server running (no control socket at ${socketPath})`) : e);
    });
    s.on('close', () => {
      if (!done) reject(new Error('connection to server closed unexpectedly'));
    });
  });
}
