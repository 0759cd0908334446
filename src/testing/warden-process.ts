// Drives the real `warden` binary in tests: `serve` as a child process (its logs captured
// for later inspection) and one-shot CLI commands with their exit code and output.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { type RunResult, runProgram } from './run.js';

export const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export type CliResult = RunResult;

export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return runProgram(process.execPath, [CLI, ...args], opts.env, opts);
}

export interface WardenProcess {
  url: string;
  child: ChildProcess;
  configFile: string;
  /** The PostgreSQL listener's address, when enabled. */
  postgres: { host: string; port: number } | null;
  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string;
  /** Waits (up to 5 s) for the log to match: the logger writes asynchronously. */
  waitForLog(pattern: RegExp): Promise<string>;
  /** Environment for CLI commands against this gateway with the given credential. */
  env(token: string): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** Starts `warden serve` with a config object written to `<dir>/warden.yaml`; resolves once the API listens. */
function pgListener(config: Record<string, unknown>): Record<string, unknown> {
  const listeners = config.listeners as { postgres?: Record<string, unknown> } | undefined;
  return listeners?.postgres ?? {};
}

export async function startWarden(opts: {
  dir: string;
  config: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}): Promise<WardenProcess> {
  const configFile = join(opts.dir, 'warden.yaml');
  writeFileSync(
    configFile,
    stringify({
      api: { port: 0 },
      log: { level: 'debug' },
      ...opts.config,
      // Every gateway under test gets its own free port unless the test names one.
      listeners: { ...(opts.config.listeners as object), postgres: { port: 0, ...pgListener(opts.config) } },
    }),
  );
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile], {
    cwd: opts.dir,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`warden serve did not start in time:\n${output}`)),
      opts.timeoutMs ?? 20_000,
    );
    const onData = (d: Buffer) => {
      output += d.toString();
      const m = /warden: API listening on (\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`warden serve exited with ${code}:\n${output}`));
    });
  });
  const pg = /warden: PostgreSQL listening on (\S+):(\d+)/.exec(output);
  return {
    url,
    postgres: pg ? { host: pg[1]!, port: Number(pg[2]) } : null,
    child,
    configFile,
    logs: () => output,
    async waitForLog(pattern) {
      for (let i = 0; i < 100 && !pattern.test(output); i++) await new Promise((r) => setTimeout(r, 50));
      return output;
    },
    env: (token: string) => ({ WARDEN_URL: url, WARDEN_TOKEN: token }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** fetch against the API with a bearer credential; returns status and parsed JSON (or text). */
export async function api(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: unknown; text: string }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) {
    body = opts.rawBody;
    headers['content-type'] ??= 'application/json';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, text };
}
