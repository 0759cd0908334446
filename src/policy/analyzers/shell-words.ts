// Reads shell words the way the shell would before running them: quotes removed, escapes applied,
// and expansions the shell resolves only at run time marked dynamic rather than guessed.

import sh, { type ShNode } from 'mvdan-sh';

const { syntax } = sh;

/** A word as the shell sees it after quote removal; `dynamic` when part of it is only known at run time. */
export interface ShellWord {
  text: string;
  /** Parameter, command, arithmetic or process substitution somewhere in the word. */
  dynamic: boolean;
  /** Unquoted glob or brace expansion, which can turn one word into another program name. */
  pattern: boolean;
  /** The command substitutions and process substitutions inside, for the caller to analyze. */
  substitutions: ShNode[];
}

export function nodes(node: ShNode | null | undefined, field: string): ShNode[] {
  const value = node?.[field];
  return Array.isArray(value) ? (value as ShNode[]) : [];
}

export function child(node: ShNode | null | undefined, field: string): ShNode | null {
  const value = node?.[field];
  return typeof value === 'object' && value !== null ? (value as ShNode) : null;
}

export function stringField(node: ShNode | null | undefined, field: string): string {
  const value = node?.[field];
  return typeof value === 'string' ? value : '';
}

/** Removes backslash escapes; inside double quotes only before $ ` " \ and newline, as POSIX says. */
function removeEscapes(raw: string, inDoubleQuotes: boolean): string {
  return raw.replace(/\\([\s\S])/g, (whole, ch: string) => {
    if (ch === '\n') return '';
    if (!inDoubleQuotes || '$`"\\'.includes(ch)) return ch;
    return whole;
  });
}

const ANSI_C: Record<string, string> = {
  a: '\x07',
  b: '\b',
  e: '\x1b',
  E: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
};
Object.assign(ANSI_C, { t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' });

/** Bash's $'…' quoting: C escapes, octal, hex and Unicode, so `$'\x72m'` reads as `rm`. */
function ansiC(raw: string): string {
  return raw.replace(
    /\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c.|[\s\S])/g,
    (whole, esc: string) => {
      const head = esc[0] ?? '';
      if (head === 'x' || head === 'u' || head === 'U')
        return String.fromCodePoint(Number.parseInt(esc.slice(1), 16));
      if (/[0-7]/.test(head)) return String.fromCharCode(Number.parseInt(esc, 8) & 0xff);
      if (head === 'c') return String.fromCharCode((esc.charCodeAt(1) ?? 0) & 0x1f);
      return ANSI_C[esc] ?? whole;
    },
  );
}

const UNQUOTED_PATTERN = /(^|[^\\])(?:\\\\)*(?:[*?[]|\{[^}]*(?:,|\.\.)[^}]*\})/;

/** $( … ) hidden in ${x:-$(cmd)} or $(( $(cmd) )) still runs. */
function nestedSubstitutions(part: ShNode, word: ShellWord): void {
  syntax.Walk(part, (node) => {
    if (!node || node === part) return true;
    const type = syntax.NodeType(node);
    if (type !== 'CmdSubst' && type !== 'ProcSubst') return true;
    word.substitutions.push(node);
    return false;
  });
}

function readParts(parts: ShNode[], inDoubleQuotes: boolean, word: ShellWord): void {
  for (const part of parts) {
    switch (syntax.NodeType(part)) {
      case 'Lit': {
        const raw = stringField(part, 'Value');
        if (!inDoubleQuotes && UNQUOTED_PATTERN.test(raw)) word.pattern = true;
        word.text += removeEscapes(raw, inDoubleQuotes);
        break;
      }
      case 'SglQuoted': {
        const raw = stringField(part, 'Value');
        word.text += part.Dollar === true ? ansiC(raw) : raw;
        break;
      }
      case 'DblQuoted':
        readParts(nodes(part, 'Parts'), true, word);
        break;
      case 'ParamExp':
        word.dynamic = true;
        word.text += `\${${stringField(child(part, 'Param'), 'Value')}}`;
        nestedSubstitutions(part, word);
        break;
      case 'CmdSubst':
        word.dynamic = true;
        word.text += '$(…)';
        word.substitutions.push(part);
        break;
      case 'ProcSubst':
        word.dynamic = true;
        word.text += '<(…)';
        word.substitutions.push(part);
        break;
      case 'ArithmExp':
        word.dynamic = true;
        word.text += '$((…))';
        nestedSubstitutions(part, word);
        break;
      default:
        // ExtGlob and anything newer: a pattern the shell expands at run time.
        word.pattern = true;
        word.text += stringField(child(part, 'Pattern'), 'Value');
        nestedSubstitutions(part, word);
    }
  }
}

export function readWord(node: ShNode | null): ShellWord {
  const word: ShellWord = { text: '', dynamic: false, pattern: false, substitutions: [] };
  if (node) readParts(nodes(node, 'Parts'), false, word);
  return word;
}

/**
 * Flags of an argument list: words starting with `-` up to `--`; `-rf` gives `-r` and `-f`,
 * `--force=yes` gives `--force`. A lone `-` (stdin) is not a flag.
 */
export function flagsOf(args: string[]): string[] {
  const flags: string[] = [];
  for (const arg of args) {
    if (arg === '--') break;
    if (arg.startsWith('--')) flags.push(arg.split('=', 1)[0] ?? arg);
    else if (arg.startsWith('-') && arg.length > 1) for (const ch of arg.slice(1)) flags.push(`-${ch}`);
  }
  return flags;
}

export function basename(program: string): string {
  const trimmed = program.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1) || program;
}
