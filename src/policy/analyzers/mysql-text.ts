// Lexical helpers for MySQL text that the parser does not give us: splitting a batch into
// statements and normalizing a statement into a fingerprint. Both respect quotes and comments.

/** One statement of a batch, trimmed, with whether it hides an executable comment. */
export interface StatementText {
  text: string;
  /** `/*! … *\/` and `/*!50000 … *\/` run as SQL on a MySQL server though parsers read them as comments. */
  executableComment: boolean;
}

type Token =
  | { kind: 'space' }
  | { kind: 'comment'; executable: boolean; text: string }
  | { kind: 'string' | 'identifier' | 'number' | 'word' | 'punct'; text: string };

function quoted(sql: string, start: number): number {
  const q = sql[start];
  let i = start + 1;
  while (i < sql.length) {
    const ch = sql[i];
    if (ch === '\\' && q !== '`') i += 2;
    else if (ch === q && sql[i + 1] === q) i += 2;
    else if (ch === q) return i + 1;
    else i++;
  }
  return sql.length;
}

/** Splits MySQL text into tokens; an unterminated quote or comment runs to the end (the parser reports it). */
function* tokens(sql: string): Generator<Token> {
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i] ?? '';
    const rest = sql.slice(i, i + 3);
    let end: number;
    if (/\s/.test(ch)) {
      end = i + 1;
      while (end < sql.length && /\s/.test(sql[end] ?? '')) end++;
      yield { kind: 'space' };
    } else if (rest.startsWith('/*')) {
      const close = sql.indexOf('*/', i + 2);
      end = close === -1 ? sql.length : close + 2;
      yield { kind: 'comment', executable: rest === '/*!', text: sql.slice(i, end) };
    } else if (ch === '#' || /^--(\s|$)/.test(rest)) {
      const nl = sql.indexOf('\n', i);
      end = nl === -1 ? sql.length : nl + 1;
      yield { kind: 'comment', executable: false, text: sql.slice(i, end) };
    } else if (ch === "'" || ch === '"' || ch === '`') {
      end = quoted(sql, i);
      yield { kind: ch === '`' ? 'identifier' : 'string', text: sql.slice(i, end) };
    } else {
      const m =
        /^(?:0x[0-9a-f]+\b|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)(?![\w$])/i.exec(sql.slice(i)) ??
        null;
      if (m) {
        end = i + m[0].length;
        yield { kind: 'number', text: m[0] };
      } else {
        const w = /^[@\w$]+/.exec(sql.slice(i));
        end = i + (w ? w[0].length : 1);
        yield { kind: w ? 'word' : 'punct', text: sql.slice(i, end) };
      }
    }
    i = end;
  }
}

/** Splits a batch on top-level semicolons, dropping pieces that hold only whitespace and comments. */
export function splitStatements(sql: string): StatementText[] {
  const out: StatementText[] = [];
  let text = '';
  let meaningful = false;
  let executableComment = false;
  const flush = (): void => {
    if (meaningful || executableComment) out.push({ text: text.trim(), executableComment });
    text = '';
    meaningful = false;
    executableComment = false;
  };
  for (const token of tokens(sql)) {
    if (token.kind === 'punct' && token.text === ';') {
      flush();
      continue;
    }
    if (token.kind === 'space') text += ' ';
    else text += token.text;
    if (token.kind === 'comment') executableComment ||= token.executable;
    else if (token.kind !== 'space') meaningful = true;
  }
  flush();
  return out;
}

/**
 * Fingerprint of one statement: comments dropped, string and numeric literals replaced by `?`,
 * whitespace and comments collapsed to one space (executable `/*! … *\/` comments are kept, they run), unquoted words (keywords, function names,
 * @variables) lowercased. Backquoted identifiers are kept exactly: MySQL table names can be
 * case-sensitive, and two different tables must never share a fingerprint.
 */
export function fingerprintStatement(sql: string): string {
  let out = '';
  let pendingSpace = false;
  for (const token of tokens(sql)) {
    if (token.kind === 'space' || (token.kind === 'comment' && !token.executable)) {
      pendingSpace = out !== '';
      continue;
    }
    if (pendingSpace) out += ' ';
    pendingSpace = false;
    if (token.kind === 'string' || token.kind === 'number') out += '?';
    else if (token.kind === 'word') out += token.text.toLowerCase();
    else if (token.kind === 'comment') out += token.text.replace(/\s+/g, ' ');
    else out += token.text;
  }
  return out;
}
