// Runs a real client program (psql, pgbench …) for a test and collects what it printed.
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Sends SIGINT after this long (psql answers it with a CancelRequest). */
  interruptAfterMs?: number;
  /** Written to standard input, which is then closed. */
  input?: string;
  cwd?: string;
  /** Killed after this long (default 30 s), so a stuck program fails its test instead of hanging it. */
  timeoutMs?: number;
}

export function runProgram(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    if (opts.interruptAfterMs !== undefined) setTimeout(() => child.kill('SIGINT'), opts.interruptAfterMs);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * psql through a Warden PostgreSQL listener on loopback: no psqlrc, unaligned tuples only, the
 * credential as the password; `args` follow the connection string (`-c`, `-v`, …).
 */
export function psqlVia(
  l: { port: number; password: string; database: string; user?: string },
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const conninfo = `host=127.0.0.1 port=${l.port} dbname=${l.database} user=${l.user ?? 'alice'} sslmode=disable`;
  return runProgram(
    'psql',
    [conninfo, '-X', '-At', ...args],
    { PGPASSWORD: l.password, PGCONNECT_TIMEOUT: '10' },
    opts,
  );
}
