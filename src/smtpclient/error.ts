// Delivery errors as values: what the queue needs for retry decisions and DSNs.
import type { Reply } from './reply.js';

/** Where in the session an error happened. The client itself never fails at "connect": that is the dialer's step. */
export type Step = 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data';

export interface ErrorInit {
  step: Step;
  text: string;
  /** Defaults to false: only a 5xx reply or a decision that the message can never go out as is is permanent. */
  permanent?: boolean;
  /** Enhanced status code (RFC 3463); defaults to "5.0.0" or "4.0.0". */
  enhanced?: string;
  /** The connection is unusable afterwards: a network error, a timeout, a garbled reply, or 421. */
  connection?: boolean;
  reply?: Reply;
}

export class SMTPError extends Error {
  override name = 'SMTPError';
  readonly step: Step;
  /** Reply code from the server, 0 when the server sent no reply for this error. */
  readonly code: number;
  /** Enhanced status code, from the reply or chosen by the client; always set, for the DSN Status field. */
  readonly enhanced: string;
  readonly text: string;
  readonly permanent: boolean;
  readonly connection: boolean;
  /** The server's reply, absent for errors decided by the client or without a reply. */
  readonly reply?: Reply;

  constructor(init: ErrorInit) {
    const code = init.reply?.code ?? 0;
    const permanent = init.permanent ?? false;
    const enhanced = init.enhanced ?? init.reply?.enhanced ?? (permanent ? '5.0.0' : '4.0.0');
    super(`${init.step}: ${code ? `${code} ` : ''}${enhanced} ${init.text}`);
    this.step = init.step;
    this.code = code;
    this.enhanced = enhanced;
    this.text = init.text;
    this.permanent = permanent;
    this.connection = init.connection ?? false;
    this.reply = init.reply;
  }

  /** Error for a failure reply; 5xx is permanent (RFC 5321 4.2.1), and 421 closes the connection (RFC 5321 3.8). */
  static fromReply(step: Step, reply: Reply): SMTPError {
    return new SMTPError({
      step,
      text: reply.text,
      reply,
      permanent: reply.code >= 500,
      connection: reply.code === 421,
    });
  }
}
