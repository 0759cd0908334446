// Plain aligned tables and JSON output for list commands.
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(headers: string[], rows: Array<Array<string | number | null | undefined>>): void {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(headers), ...cells.map(line)];
  process.stdout.write(`${out.join('\n')}\n`);
}

/**
 * `text` on one line of at most `max` characters (clipped with …), control characters removed: what
 * a caller recorded (SQL, a reason) may hold terminal escapes, which must not reach a reader's terminal.
 */
export function oneLine(text: string, max: number): string {
  const t = text
    .replace(/\s+/g, ' ')
    .replace(/\p{Cc}/gu, '')
    .trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}
