// Error injection in localserve, for testing how software handles SMTP failures: a
// localpart ending in "temperror", "permerror", a code "[45]NN" or "timeout" fails;
// starting with "mailfrom" or "rcptto" moves the failure to that command, else after DATA.

export type Injected = { code: number; ecode: string; text: string } | 'timeout';

export function injectedError(localpart: string): Injected | undefined {
  const lp = localpart.toLowerCase();
  if (lp.endsWith('temperror')) return { code: 451, ecode: '4.3.0', text: 'temporary error requested by recipient localpart' };
  if (lp.endsWith('permerror')) return { code: 550, ecode: '5.3.0', text: 'permanent error requested by recipient localpart' };
  if (lp.endsWith('timeout')) return 'timeout';
  const m = /([45])[0-9][0-9]$/.exec(lp);
  if (m) return { code: Number(m[0]), ecode: `${m[1]}.0.0`, text: `error ${m[0]} requested by recipient localpart` };
  return undefined;
}

export function injectedStage(localpart: string): 'mailfrom' | 'rcptto' | 'data' {
  const lp = localpart.toLowerCase();
  if (lp.startsWith('mailfrom')) return 'mailfrom';
  if (lp.startsWith('rcptto')) return 'rcptto';
  return 'data';
}

/** How long a "timeout" localpart keeps the client waiting. */
export const injectedTimeoutMs = 3600_000;
