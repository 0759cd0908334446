// A real terminal recording for tests of what replays one (the API, the web console): a shell
// command's output, fed chunk by chunk as it arrived, through the recorder into a session row.
import { spawn } from 'node:child_process';
import { Recorder } from '../recording/recorder.js';
import { SessionEvents } from '../store/session-events.js';
import { Sessions } from '../store/sessions.js';
import type { Store } from '../store/store.js';
import { TerminalRecordings } from '../store/terminal-recordings.js';

/** Colour, a multi-byte character, a listing and a pause: what a replay must get right. */
const SAMPLE_SCRIPT =
  'printf "\\e[1;32mwarden\\e[0m demo \\xe2\\x9c\\x93\\n"; ls -la /etc | head -5; sleep 0.2; echo done';

export interface TerminalSampleOptions {
  /** Who ran the session (default alice, its own root). */
  subject?: string;
  root_subject?: string;
  /** The bash script recorded (default SAMPLE_SCRIPT). */
  script?: string;
  width?: number;
  height?: number;
}

export interface TerminalSample {
  sessionId: string;
  /** The script's output as it came, all chunks joined (what a replay ends up showing). */
  output: string;
  /** How many stdout/stderr chunks arrived. */
  chunks: number;
}

/**
 * Creates an `ssh` session row `sessionId` in `store` and records `bash -c script` into it as a
 * terminal session, with each output chunk's real arrival time. Resolves once it is written.
 */
export async function recordTerminalSample(
  store: Store,
  sessionId: string,
  opts: TerminalSampleOptions = {},
): Promise<TerminalSample> {
  const subject = opts.subject ?? 'alice';
  await new Sessions(store).insert({
    id: sessionId,
    subject,
    kind: 'human',
    root_subject: opts.root_subject ?? subject,
    chain: [],
    token_id: null,
    parent_session_id: null,
    connection: 'demo-host',
    protocol: 'ssh',
    client_addr: null,
    status: 'closed',
    started_at: new Date().toISOString(),
    ended_at: null,
  });
  const recorder = new Recorder(new SessionEvents(store), { terminals: new TerminalRecordings(store) });
  const terminal = recorder.terminal(sessionId, {
    width: opts.width ?? 80,
    height: opts.height ?? 24,
    title: 'warden terminal sample',
    env: { TERM: 'xterm-256color', SHELL: '/bin/bash' },
  });
  const seen: Buffer[] = [];
  // Under a real pseudo-terminal (util-linux `script`), as an SSH shell runs: its line discipline
  // turns "\n" into "\r\n", which a replay needs to draw lines the way the user saw them.
  const child = spawn(
    'script',
    ['-qfec', `bash -c '${(opts.script ?? SAMPLE_SCRIPT).replace(/'/g, "'\\''")}'`, '/dev/null'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TERM: 'xterm-256color' },
    },
  );
  const feed = (chunk: Buffer) => {
    seen.push(chunk);
    terminal.output(chunk);
  };
  child.stdout.on('data', feed);
  child.stderr.on('data', feed);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  await terminal.close();
  const lost = await recorder.close(5_000);
  if (code !== 0) throw new Error(`the sample script exited with ${code}`);
  if (lost > 0) throw new Error(`${lost} chunks of the sample recording were not written`);
  return { sessionId, output: Buffer.concat(seen).toString('utf8'), chunks: seen.length };
}
