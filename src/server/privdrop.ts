// Running as an unprivileged user: started as root, the server binds its ports (below
// 1024) and reads its TLS keys, then switches to the configured User for good. Node cannot
// hand bound sockets to a new process, so the same process changes its ids: groups first
// (only the user's primary group is kept), as without root they can no longer change.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Log } from '../log/log.js';
import type { Config } from '../config/load.js';

const log = Log.pkg('serve');

/** uid and primary gid of a user, through the system's user database (also NSS, LDAP). */
export function lookupUser(user: string): { uid: number; gid: number } {
  const id = (flag: string) => {
    try {
      return Number(execFileSync('id', [flag, user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    } catch {
      throw new Error(`user ${user} (postern.conf User) does not exist`);
    }
  };
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * The data directory belongs to the user, directories 0700, files 0600: nothing in it is
 * for anyone else. Only what differs is changed, so a restart of a large store is cheap.
 */
export function fixDataPermissions(dir: string, uid: number, gid: number): number {
  let changed = 0;
  const fix = (p: string, st: fs.Stats, mode: number) => {
    if (st.uid !== uid || st.gid !== gid) {
      fs.lchownSync(p, uid, gid);
      changed++;
    }
    if ((st.mode & 0o7777) !== mode) {
      fs.chmodSync(p, mode);
      changed++;
    }
  };
  const walk = (d: string) => {
    fix(d, fs.lstatSync(d), 0o700);
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile() || ent.isSocket()) fix(p, fs.lstatSync(p), 0o600);
    }
  };
  walk(dir);
  return changed;
}

/** Whether the mode bits let uid/gid read a file. */
function readableBy(st: fs.Stats, uid: number, gid: number): boolean {
  if (st.uid === uid) return (st.mode & 0o400) !== 0;
  if (st.gid === gid) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}

/**
 * Files read again while running: the config files when domains.conf changes, DKIM keys
 * when signing. They stay where the administrator put them, so only a warning is given.
 */
function warnUnreadable(config: Config, uid: number, gid: number, user: string): void {
  const files = [config.files.staticFile, config.files.domainsFile];
  for (const d of Object.values(config.domains.Domains)) for (const s of Object.values(d.DKIM.Selectors)) files.push(config.resolve(s.PrivateKeyFile));
  for (const f of files) {
    const st = fs.statSync(f, { throwIfNoEntry: false });
    if (st && !readableBy(st, uid, gid)) log.warn('file not readable by the unprivileged user, make it readable (e.g. chgrp and chmod 0640)', { file: f, user });
  }
}

/**
 * Switches to the configured User when running as root, after fixing the data directory's
 * ownership. Call when all listeners are bound and all key files read.
 */
export function dropPrivileges(config: Config): void {
  if (process.getuid?.() !== 0) return;
  const user = config.static_.User;
  if (!user) {
    log.warn('running as root: set User in postern.conf to run as an unprivileged user after binding ports');
    return;
  }
  const { uid, gid } = lookupUser(user);
  if (uid === 0) throw new Error(`User ${user} in postern.conf is root`);
  warnUnreadable(config, uid, gid, user);
  const changed = fixDataPermissions(config.dataDir, uid, gid);
  process.setgroups!([gid]);
  process.setgid!(gid);
  process.setuid!(uid);
  if (process.getuid!() !== uid || process.getgid!() !== gid) throw new Error(`could not switch to user ${user}`);
  log.info('running as unprivileged user', { user, uid, gid, permissionsFixed: changed });
}
