// The update check: no lookup at all by default; when enabled, a newer version in the TXT
// record is logged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServe } from '../helpers/server.js';
import { compareVersions } from '../../src/quickstart/updates.js';

test('version comparison', () => {
  assert.ok(compareVersions('0.2.0', '0.1.9') > 0);
  assert.ok(compareVersions('0.10.0', '0.9.0') > 0);
  assert.equal(compareVersions('v1.0', '1.0.0'), 0);
  assert.ok(compareVersions('1.0.0', '1.0.1') < 0);
});

test('no update lookup unless CheckUpdates; a newer version is logged when enabled', { timeout: 120_000 }, async () => {
  const off = await startServe({ staticExtra: 'UpdatesName: _updates.postern.test\n' });
  try {
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!off.dns.queries.some((q) => q.name.toLowerCase().includes('_updates')), 'no query without CheckUpdates');
    assert.doesNotMatch(off.output, /update check/);
  } finally {
    await off.close();
  }
  const on = await startServe({ staticExtra: 'CheckUpdates: true\nUpdatesName: _updates.postern.test\n' });
  try {
    on.dns.set('_updates.postern.test', 'TXT', ['v=UPDATES0; l=99.0.0']);
    await on.restart();
    for (let i = 0; i < 50 && !on.output.includes('newer version'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(on.output, /"a newer version of postern is available".*|"latest":"99\.0\.0"/);
    assert.ok(on.dns.queries.some((q) => q.name === '_updates.postern.test' && q.type === 'TXT'));
  } finally {
    await on.close();
  }
});
