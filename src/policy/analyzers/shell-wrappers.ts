// Programs that run another program named in their arguments (sudo rm …, timeout 5 curl …).
// For each we know which options take a value, so the wrapped program is found, not guessed.

interface WrapperSpec {
  /** Short options that take a value, attached (-uroot) or as the next word (-u root). */
  short: string;
  /** Long options that take the next word as value when written without `=`. */
  long: string[];
  /** Positional words before the program (timeout's duration, chroot's new root). */
  positional: number;
  /** NAME=value words before the program are environment (env, sudo). */
  assignments: boolean;
}

const spec = (short: string, long: string[] = [], positional = 0, assignments = false): WrapperSpec => ({
  short,
  long,
  positional,
  assignments,
});

const WRAPPERS: Record<string, WrapperSpec> = {
  sudo: spec(
    'ugCDhprtUTR',
    [
      '--user',
      '--group',
      '--chdir',
      '--host',
      '--prompt',
      '--role',
      '--type',
      '--other-user',
      '--close-from',
      '--chroot',
      '--command-timeout',
    ],
    0,
    true,
  ),
  doas: spec('uC'),
  env: spec('uCS', ['--unset', '--chdir', '--split-string'], 0, true),
  nice: spec('n', ['--adjustment']),
  nohup: spec(''),
  timeout: spec('sk', ['--signal', '--kill-after'], 1),
  xargs: spec('adEILnPs', [
    '--arg-file',
    '--delimiter',
    '--max-args',
    '--max-lines',
    '--max-procs',
    '--max-chars',
    '--replace',
    '--eof',
  ]),
  command: spec(''),
  builtin: spec(''),
  exec: spec('a'),
  time: spec('fo', ['--format', '--output']),
  stdbuf: spec('ioe', ['--input', '--output', '--error']),
  ionice: spec('cnp', ['--class', '--classdata', '--pid']),
  chroot: spec('', ['--userspec', '--groups'], 1),
  setsid: spec(''),
  strace: spec('eoOpPsSu'),
};

export function isWrapper(program: string): boolean {
  return Object.hasOwn(WRAPPERS, program);
}

/**
 * Index (into `words`, whose first word is the wrapper) of the wrapped program, or -1 when the
 * wrapper runs nothing (`sudo -l`, `xargs` alone runs echo, `env` alone prints the environment).
 */
export function wrappedIndex(program: string, words: string[]): number {
  const wrapper = WRAPPERS[program];
  if (!wrapper) return -1;
  let positional = wrapper.positional;
  let i = 1;
  while (i < words.length) {
    const word = words[i] ?? '';
    if (word === '--') {
      i++;
      break;
    }
    if (word.startsWith('--')) {
      i += !word.includes('=') && wrapper.long.includes(word) ? 2 : 1;
    } else if (word.startsWith('-') && word.length > 1 && !/^-\d/.test(word)) {
      i++;
      for (let k = 1; k < word.length; k++) {
        if (!wrapper.short.includes(word[k] ?? '')) continue;
        if (k === word.length - 1) i++; // value is the next word; otherwise it is attached
        break;
      }
    } else if (/^-\d+$/.test(word) && program === 'nice') {
      i++;
    } else if (wrapper.assignments && /^[A-Za-z_][A-Za-z0-9_]*=/.test(word)) {
      i++;
    } else if (positional > 0) {
      positional--;
      i++;
    } else {
      break;
    }
  }
  return i < words.length ? i : -1;
}

/** `env -S 'a b'` and `--split-string` hand the shell-like splitting of a string to env: opaque. */
export function splitsString(program: string, words: string[]): boolean {
  if (program !== 'env') return false;
  return words.some((w) => w.startsWith('--split-string') || /^-[^-]*S/.test(w));
}

/** find's -exec/-execdir/-ok/-okdir PROG … ; runs PROG: the words of each such command. */
export function findExecCommands(words: string[]): string[][] {
  const out: string[][] = [];
  for (let i = 1; i < words.length; i++) {
    if (!/^-(exec|execdir|ok|okdir)$/.test(words[i] ?? '')) continue;
    const end = words.findIndex((w, j) => j > i && (w === ';' || w === '+'));
    const command = words.slice(i + 1, end === -1 ? undefined : end);
    if (command.length > 0) out.push(command);
    i = end === -1 ? words.length : end;
  }
  return out;
}
