// Turns a shell command line into facts with mvdan-sh, a real POSIX/Bash parser: every simple
// command the line can run, and whether part of what it runs is hidden from us (opaque).
// Commands are listed in the order the shell starts them: a word's $( … ) before its command.

import sh, { type ShNode } from 'mvdan-sh';
import type { ShellFacts } from '../facts.js';
import { basename, child, flagsOf, nodes, readWord, type ShellWord, stringField } from './shell-words.js';
import { findExecCommands, isWrapper, splitsString, wrappedIndex } from './shell-wrappers.js';

const { syntax } = sh;

/** Where a statement sits: reading a pipe, writing one, or inside $( … ) whose output becomes words. */
interface Context {
  pipeIn: boolean;
  pipeOut: boolean;
  inSubstitution: boolean;
}

const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'mksh', 'ash', 'busybox', 'fish', 'csh', 'tcsh']);
const EVALUATORS = new Set(['eval', 'source', '.', 'trap']);
/** Interpreters and the flags that make them run code given on the command line. */
const INLINE_CODE: Array<[RegExp, Set<string>]> = [
  [/^python[\d.]*$/, new Set(['-c'])],
  [/^perl[\d.]*$/, new Set(['-e', '-E'])],
  [/^(node|nodejs)$/, new Set(['-e', '--eval', '-p', '--print'])],
  [/^ruby[\d.]*$/, new Set(['-e'])],
  [/^php[\d.]*$/, new Set(['-r'])],
];
const INTERPRETER = /^(python[\d.]*|perl[\d.]*|node|nodejs|ruby[\d.]*|php[\d.]*)$/;
const STDIN_OPS = new Set(['<', '<<', '<<-', '<<<', '<>']);

/** Operator codes are Go enum values; learn them from the parser itself rather than hard-coding numbers. */
const REDIRECT_SAMPLES: Record<string, string> = {
  '>': 'a >x',
  '>>': 'a >>x',
  '<': 'a <x',
  '<>': 'a <>x',
  '<&': 'a <&0',
  '>&': 'a >&1',
  '>|': 'a >|x',
  '<<': 'a <<E\nx\nE\n',
  '<<-': 'a <<-E\nx\nE\n',
  '<<<': 'a <<<x',
  '&>': 'a &>x',
  '&>>': 'a &>>x',
};
function firstStatement(src: string): ShNode | null {
  return nodes(syntax.NewParser().Parse(src, 'calibrate'), 'Stmts')[0] ?? null;
}
const REDIRECT_OPS = new Map<unknown, string>(
  Object.entries(REDIRECT_SAMPLES).map(([op, src]) => [nodes(firstStatement(src), 'Redirs')[0]?.Op, op]),
);
const PIPE_OPS = new Set(['a | b', 'a |& b'].map((src) => child(firstStatement(src), 'Cmd')?.Op));

class LineAnalysis {
  readonly facts: ShellFacts = {
    protocol_kind: 'shell',
    commands: [],
    pipeline: false,
    redirections: [],
    subshell: false,
    opaque: false,
    unparseable: null,
  };

  statements(stmts: ShNode[], ctx: Context): void {
    for (const stmt of stmts) this.statement(stmt, ctx);
  }

  statement(stmt: ShNode, ctx: Context): void {
    let stdinRedirected = false;
    for (const redirect of nodes(stmt, 'Redirs')) {
      const op = REDIRECT_OPS.get(redirect.Op) ?? '?';
      const target = readWord(child(redirect, 'Word'));
      this.facts.redirections.push({ op, target: target.text });
      this.substitutions(target);
      const fd = stringField(child(redirect, 'N'), 'Value');
      if (STDIN_OPS.has(op) && (fd === '' || fd === '0')) stdinRedirected = true;
    }
    const cmd = child(stmt, 'Cmd');
    if (!cmd) return;
    switch (syntax.NodeType(cmd)) {
      case 'CallExpr':
        this.call(cmd, { ...ctx, pipeIn: ctx.pipeIn || stdinRedirected });
        return;
      case 'BinaryCmd': {
        const x = child(cmd, 'X');
        const y = child(cmd, 'Y');
        if (PIPE_OPS.has(cmd.Op)) {
          this.facts.pipeline = true;
          if (x) this.statement(x, { ...ctx, pipeOut: true });
          if (y) this.statement(y, { ...ctx, pipeIn: true });
        } else {
          if (x) this.statement(x, ctx);
          if (y) this.statement(y, ctx);
        }
        return;
      }
      case 'Subshell':
        this.facts.subshell = true;
        this.statements(nodes(cmd, 'Stmts'), ctx);
        return;
      case 'DeclClause': {
        const variant = stringField(child(cmd, 'Variant'), 'Value');
        this.facts.commands.push({ program: variant, args: [], flags: [] });
        if (variant === 'alias') this.facts.opaque = true; // alias text is code run later
        break;
      }
    }
    // Compound commands (if, for, while, case, functions, [[ ]], time …): find their statements and substitutions.
    syntax.Walk(cmd, (node) => {
      if (!node || node === cmd) return true;
      const type = syntax.NodeType(node);
      if (type === 'Stmt') {
        this.statement(node, ctx);
        return false;
      }
      if (type === 'CmdSubst' || type === 'ProcSubst') {
        this.substitution(node);
        return false;
      }
      return true;
    });
  }

  /** $( … ) output becomes words; <( … ) and >( … ) are read and written like pipes. */
  substitution(node: ShNode): void {
    this.facts.subshell = true;
    const piped = syntax.NodeType(node) === 'ProcSubst';
    this.statements(nodes(node, 'Stmts'), { pipeIn: piped, pipeOut: piped, inSubstitution: true });
  }

  substitutions(word: ShellWord): void {
    for (const node of word.substitutions) this.substitution(node);
  }

  call(call: ShNode, ctx: Context): void {
    for (const assign of nodes(call, 'Assigns')) this.substitutions(readWord(child(assign, 'Value')));
    const words = nodes(call, 'Args').map(readWord);
    for (const word of words) this.substitutions(word);
    this.command(words, ctx);
  }

  /** Records the command (and, through wrappers, the command it runs) and checks it for hidden code. */
  command(words: ShellWord[], ctx: Context): void {
    const first = words[0];
    if (!first) return;
    const texts = words.map((w) => w.text);
    const program = first.dynamic || first.pattern ? first.text : basename(first.text);
    // $CMD, $(…), globs and brace expansion decide the program only at run time.
    if (first.dynamic || first.pattern) this.facts.opaque = true;

    const inner = isWrapper(program) ? wrappedIndex(program, texts) : -1;
    const args = texts.slice(1, inner === -1 ? undefined : inner);
    this.facts.commands.push({ program, args, flags: flagsOf(args) });
    if (this.hidesCode(program, args, ctx) || splitsString(program, args)) this.facts.opaque = true;

    if (inner !== -1) {
      // xargs feeds its stdin to the wrapped program as arguments; others pass stdin along.
      this.command(words.slice(inner), ctx);
    }
    if (program === 'find') {
      for (const exec of findExecCommands(texts)) {
        this.command(
          exec.map((text) => ({ text, dynamic: false, pattern: false, substitutions: [] })),
          { ...ctx, pipeIn: false },
        );
      }
    }
  }

  hidesCode(program: string, args: string[], ctx: Context): boolean {
    const flags = flagsOf(args);
    const operands = args.filter((a) => !a.startsWith('-'));
    if (EVALUATORS.has(program)) return program !== 'trap' || operands.length > 1;
    if (SHELLS.has(program)) {
      // -c code, a script file, or a script read from a pipe or redirection.
      return flags.includes('-c') || operands.length > 0 || ctx.pipeIn;
    }
    if (
      program === 'base64' &&
      (flags.includes('-d') || flags.includes('-D') || flags.includes('--decode'))
    ) {
      return ctx.pipeOut || ctx.inSubstitution;
    }
    for (const [name, codeFlags] of INLINE_CODE) {
      if (name.test(program) && flags.some((f) => codeFlags.has(f))) return true;
    }
    // `curl … | python` runs whatever arrives on stdin.
    return INTERPRETER.test(program) && ctx.pipeIn && (operands.length === 0 || operands[0] === '-');
  }
}

function parseError(err: unknown): string {
  if (typeof err === 'object' && err !== null && typeof (err as { Error?: unknown }).Error === 'function') {
    return String((err as { Error: () => unknown }).Error());
  }
  return err instanceof Error ? err.message : String(err);
}

/** Analyzes one command line. Never throws: a syntax error comes back as `unparseable`. */
export function analyzeShell(line: string): ShellFacts {
  const analysis = new LineAnalysis();
  let file: ShNode;
  try {
    file = syntax.NewParser().Parse(line, 'line');
  } catch (err) {
    analysis.facts.unparseable = parseError(err);
    return analysis.facts;
  }
  analysis.statements(nodes(file, 'Stmts'), { pipeIn: false, pipeOut: false, inSubstitution: false });
  return analysis.facts;
}
