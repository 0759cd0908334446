// Runs a real client program (psql, pgbench …) for a test and collects what it printed.
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `interruptAfterMs` sends SIGINT then (psql answers it with a CancelRequest). */
export function runProgram(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  opts: { interruptAfterMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    if (opts.interruptAfterMs !== undefined) setTimeout(() => child.kill('SIGINT'), opts.interruptAfterMs);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
