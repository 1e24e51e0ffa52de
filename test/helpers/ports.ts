// Ports chosen free may be taken by another test before a peer or server binds them: such a
// start is tried again (with fresh ports chosen by the caller).

const taken = /Address already in use|EADDRINUSE/;

export async function retryWhenPortTaken<T>(start: () => Promise<T>, beforeRetry?: () => Promise<void>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (e) {
      if (attempt >= attempts || !taken.test((e as Error).message)) throw e;
      await beforeRetry?.();
    }
  }
}
