import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadAhead } from '../../src/imapserver/readahead.js';

/** Reads all items through a ReadAhead; returns the most reads and bytes seen in flight at once. */
async function run(sizes: number[], maxCount: number, maxBytes: number): Promise<{ reads: number; bytes: number }> {
  let inflight = 0;
  let inflightBytes = 0;
  const most = { reads: 0, bytes: 0 };
  const ra = new ReadAhead(
    sizes.map((n, i) => ({ i, n })),
    async (it) => {
      inflight++;
      inflightBytes += it.n;
      most.reads = Math.max(most.reads, inflight);
      most.bytes = Math.max(most.bytes, inflightBytes);
      await new Promise((r) => setTimeout(r, 2));
      inflight--;
      inflightBytes -= it.n;
      return Buffer.from(String(it.i));
    },
    (it) => it.n,
    maxCount,
    maxBytes,
  );
  for (let i = 0; i < sizes.length; i++) assert.equal((await ra.get(i)).toString(), String(i));
  return most;
}

test('read-ahead returns items in order, overlapping reads within the count bound', async () => {
  const most = await run(Array(20).fill(10), 4, 1 << 20);
  assert.ok(most.reads > 1, 'reads overlap');
  // The one being waited for plus at most 4 ahead.
  assert.ok(most.reads <= 5, `at most 5 reads at once, saw ${most.reads}`);
});

test('read-ahead stays within the byte bound, reading an oversized item alone', async () => {
  const most = await run(Array(20).fill(400), 16, 1000);
  // 1000 bytes ahead is two items of 400, plus the current one.
  assert.equal(most.reads, 3);
  const big = await run([100, 100, 9000, 100, 100], 16, 1000);
  // The oversized item, being waited for, plus at most 1000 bytes ahead of it.
  assert.ok(big.bytes >= 9000 && big.bytes <= 10000, `bytes in flight ${big.bytes}`);
});

test('a failed read ahead that is never asked for is not an unhandled rejection', async () => {
  let unhandled = 0;
  const onUnhandled = () => unhandled++;
  process.on('unhandledRejection', onUnhandled);
  try {
    const ra = new ReadAhead([0, 1, 2], async (i) => (i === 0 ? Buffer.from('ok') : Promise.reject(new Error('gone'))), () => 1);
    assert.equal((await ra.get(0)).toString(), 'ok');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(unhandled, 0);
    await assert.rejects(ra.get(1), /gone/);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
