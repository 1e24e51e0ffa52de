// Rendered ENVELOPE, BODYSTRUCTURE and BODY of messages, kept for the FETCHes that follow:
// clients fetch the same metadata again and again when they resynchronize. A stored message
// never changes and message ids are not reused, so entries stay valid; the least recently used
// are dropped beyond a memory bound shared by all accounts.

/** Bytes of rendered data kept, for all accounts together. */
const maxBytes = 32 << 20;

const cache = new Map<string, Buffer>();
let bytes = 0;
/** A number per account object: an account removed and added again starts afresh. */
const owners = new WeakMap<object, number>();
let nextOwner = 1;

export type RenderKind = 'envelope' | 'bodystructure' | 'body';

function key(owner: object, msgid: number, kind: RenderKind, utf8: boolean): string {
  let n = owners.get(owner);
  if (n === undefined) owners.set(owner, (n = nextOwner++));
  return `${n}:${msgid}:${kind}${utf8 ? '8' : ''}`;
}

export function hasRendered(owner: object, msgid: number, kind: RenderKind, utf8: boolean): boolean {
  return cache.has(key(owner, msgid, kind, utf8));
}

/** The rendered item, from the cache or rendered now and kept. */
export function rendered(owner: object, msgid: number, kind: RenderKind, utf8: boolean, render: () => Buffer): Buffer {
  const k = key(owner, msgid, kind, utf8);
  let b = cache.get(k);
  if (b) {
    // Most recently used last, so eviction from the front drops the least recently used.
    cache.delete(k);
    cache.set(k, b);
    return b;
  }
  b = render();
  cache.set(k, b);
  bytes += b.length + k.length;
  for (const [old, v] of cache) {
    if (bytes <= maxBytes) break;
    cache.delete(old);
    bytes -= v.length + old.length;
  }
  return b;
}
