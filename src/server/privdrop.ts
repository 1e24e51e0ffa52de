// Running as an unprivileged user: started as root, the server binds its ports (below
// 1024) and reads its TLS keys, then switches to the configured User for good. Node cannot
// hand bound sockets to a new process, so the same process changes its ids: groups first
// (only the user's primary group is kept), as without root they can no longer change.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Log } from '../log/log.js';

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

/**
 * Switches to user when running as root, after fixing the data directory's ownership.
 * Call when all listeners are bound and all key files read.
 */
export function dropPrivileges(user: string | undefined, dataDir: string): void {
  if (process.getuid?.() !== 0) return;
  if (!user) {
    log.warn('running as root: set User in postern.conf to run as an unprivileged user after binding ports');
    return;
  }
  const { uid, gid } = lookupUser(user);
  if (uid === 0) throw new Error(`User ${user} in postern.conf is root`);
  const changed = fixDataPermissions(dataDir, uid, gid);
  process.setgroups!([gid]);
  process.setgid!(gid);
  process.setuid!(uid);
  if (process.getuid!() !== uid || process.getgid!() !== gid) throw new Error(`could not switch to user ${user}`);
  log.info('running as unprivileged user', { user, uid, gid, permissionsFixed: changed });
}
