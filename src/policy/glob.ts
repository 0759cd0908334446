// Globs in rules and mask specs (`orders-*`, `/admin/**`, `*.email`), compiled once per pattern.

const compiled = new Map<string, RegExp>();

/** Glob match: `*` is any run of characters except `/`, `**` any run at all; case-insensitive. */
export function globRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    let src = '';
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i]!;
      if (c === '*') {
        if (pattern[i + 1] === '*') {
          src += '.*';
          i++;
        } else src += '[^/]*';
      } else src += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
    re = new RegExp(`^${src}$`, 'i');
    // Patterns come from rules, a bounded set: compile each once.
    if (compiled.size < 10_000) compiled.set(pattern, re);
  }
  return re;
}

export function globMatch(pattern: string, value: string): boolean {
  return globRegExp(pattern).test(value);
}
