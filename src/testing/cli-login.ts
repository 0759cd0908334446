// `warden login` as a person runs it, in a child process: tests read its prompts (the URL to open,
// the device code) from stderr while it waits, and finish the sign-in at the provider themselves.
import { spawn } from 'node:child_process';
import { CLI, type CliResult } from './warden-process.js';

/** `warden login` running as a child process, whose stderr the test reads while it waits. */
export interface LoginRun {
  /** Resolves with the first match of `pattern` in stderr so far or to come. */
  prompt(pattern: RegExp): Promise<RegExpExecArray>;
  done: Promise<CliResult>;
}

export function startLogin(args: string[], env: NodeJS.ProcessEnv): LoginRun {
  const child = spawn(process.execPath, [CLI, 'login', ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      for (const w of waiters.splice(0)) w();
      resolve({ code: code ?? -1, stdout, stderr });
    }),
  );
  const prompt = async (pattern: RegExp): Promise<RegExpExecArray> => {
    for (;;) {
      const m = pattern.exec(stderr);
      if (m) return m;
      if (child.exitCode !== null)
        throw new Error(`login exited (${child.exitCode}) without ${pattern}:\n${stderr}`);
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return { prompt, done };
}
