// An account's junk filtering settings with their defaults (numbers as in mox, see
// domains.conf JunkFilter).
import type { AccountConfig } from '../config/domains.js';

export interface JunkSettings {
  threshold: number;
  rejectThreshold: number;
  minHam: number;
  firstTimeDelayMs: number;
  notJunkMailboxes: string[];
  keptMs: number;
  rejectsMailbox: string;
  keepRejectsMs: number;
  maxRejects: number;
  introbox: string;
  subjectPassMs: number;
}

const day = 86400_000;

export function junkSettings(acc: AccountConfig | undefined): JunkSettings {
  const c = acc?.JunkFilter ?? {};
  const rejects = c.RejectsMailbox ?? 'Rejects';
  return {
    threshold: Number(c.Threshold ?? 0.95),
    rejectThreshold: Number(c.RejectThreshold ?? 0.99),
    minHam: c.MinHam ?? 50,
    firstTimeDelayMs: (c.FirstTimeSenderDelaySeconds ?? 15) * 1000,
    notJunkMailboxes: c.NotJunkMailboxes ?? ['Archive', 'Sent'],
    keptMs: (c.KeptDays ?? 7) * day,
    rejectsMailbox: rejects === '-' ? '' : rejects,
    keepRejectsMs: (c.KeepRejectsDays ?? 14) * day,
    maxRejects: c.MaxRejects ?? 1000,
    introbox: c.IntroboxMailbox ?? '',
    subjectPassMs: (c.SubjectPassHours ?? 12) * 3600_000,
  };
}
