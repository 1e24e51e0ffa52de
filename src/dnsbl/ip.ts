// IPv6 address text to its eight 16-bit groups (RFC 4291 2.2), for reversed-nibble names.

export function expandV6(ip: string): number[] {
  const [head = '', tail] = ip.split('::') as [string, string | undefined];
  const part = (s: string): number[] =>
    s === ''
      ? []
      : s.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)];
          const o = g.split('.').map(Number);
          return [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!];
        });
  const h = part(head);
  const t = tail === undefined ? [] : part(tail);
  return tail === undefined ? h : [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
}
