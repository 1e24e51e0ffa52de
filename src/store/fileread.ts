// Reading message files. A synchronous read of a small file that the kernel has cached takes a
// few microseconds; an asynchronous one is four round trips through the thread pool (open, fstat,
// read, close) and costs the main thread several times more. So files are read synchronously
// while reads are fast, and asynchronously for a while after slow ones (a cold disk), so that
// other sessions are not held up by the disk for more than a few milliseconds.
import fs from 'node:fs';
import { promisify } from 'node:util';
import { performance } from 'node:perf_hooks';

// The callback form: fs/promises readFile costs about twice the CPU for small files (Node 20).
const readFileAsync = promisify(fs.readFile);

/** A synchronous read taking longer than this is slow: the disk, or the process was not scheduled. */
const slowMs = 4;
/** Three slow reads within this time switch to asynchronous reads, */
const slowWindowMs = 1_000;
/** for this long. */
const asyncForMs = 2_000;
/** Larger files are always read asynchronously. */
const maxSyncSize = 1 << 20;

let asyncUntil = 0;
/** Times of the last two slow reads. */
let slow1 = -Infinity;
let slow2 = -Infinity;

/** Reads a stored file; size is its expected size, e.g. from the index. */
export function readStoredFile(file: string, size: number): Promise<Buffer> {
  if (size <= maxSyncSize) {
    const t0 = performance.now();
    if (t0 >= asyncUntil) {
      let b: Buffer;
      try {
        b = fs.readFileSync(file);
      } catch (e) {
        return Promise.reject(e as Error);
      }
      const t1 = performance.now();
      if (t1 - t0 > slowMs) {
        if (t1 - slow1 < slowWindowMs) asyncUntil = t1 + asyncForMs;
        slow1 = slow2;
        slow2 = t1;
      }
      return Promise.resolve(b);
    }
  }
  return readFileAsync(file);
}
