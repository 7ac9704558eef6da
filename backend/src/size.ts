/** Parses "512", "64K", "1G", "2GiB"… into bytes; must be a multiple of 512. */
export function parseSize(text: string): number {
  const m = /^(\d+)([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new Error(`bad size '${text}'`);
  const mult: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
  const bytes = Number(m[1]) * mult[m[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(bytes) || bytes % 512 !== 0) throw new Error(`size '${text}' is not a multiple of 512 bytes`);
  return bytes;
}
