// Option parsers shared by the CLI's commands.

/** A repeatable, comma-separated option: `--tag a,b --tag c` → [a, b, c]. */
export const commaList = (value: string, previous: string[]): string[] => [
  ...previous,
  ...value.split(',').filter(Boolean),
];
