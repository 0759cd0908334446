import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Trace, TraceNode, TraceSession } from '../audit/trace.js';
import { renderTrace } from './trace-tree.js';

const session = (id: string, commands: string[]): TraceSession => ({
  id,
  subject: 'x',
  chain: [],
  connection: 'shop',
  protocol: 'postgres',
  status: 'killed',
  started_at: '2026-11-22T13:00:00.000Z',
  ended_at: '2026-11-22T13:01:00.000Z',
  end_reason: 'session ended: token was revoked',
  parent_session_id: null,
  application: null,
  traceparent: null,
  client_addr: null,
  commands: commands.map((text, i) => ({
    seq: i + 1,
    time: '2026-11-22T13:00:30.000Z',
    decision: 'allow',
    text,
    rows: 1,
    duration_ms: 1,
    error: null,
  })),
  commands_truncated: false,
});

const node = (
  id: string,
  subject: string,
  chain: string[],
  sessions: TraceSession[],
  children: TraceNode[],
): TraceNode => ({
  kind: 'token',
  id,
  subject,
  holder_kind: chain.length > 0 ? 'agent' : 'human',
  chain,
  scope: ['shop'],
  issued_at: '2026-11-22T12:59:00.000Z',
  expires_at: null,
  revoked_at: null,
  minted_from: null,
  parent_session_id: null,
  sessions,
  children,
});

describe('audit trace as a tree', () => {
  it('draws each delegate under its parent, sessions before delegates, and strips terminal escapes', () => {
    const trace: Trace = {
      root_subject: 'alice',
      from: { kind: 'token', id: 't2' },
      truncated: false,
      root: node(
        't0',
        'alice',
        [],
        [session('s0', ['select 1'])],
        [
          node(
            't1',
            'a',
            ['a'],
            [session('s1', ['select \u001b[2J2'])],
            [node('t2', 'b', ['a', 'b'], [], [])],
          ),
        ],
      ),
    };
    const lines = renderTrace(trace).trimEnd().split('\n');
    assert.equal(lines[0], 'alice (root)');
    assert.match(lines[1]!, /^└─ token t0 {2}alice \(human\)/);
    assert.match(
      lines[2]!,
      /^ {3}├─ session s0 {2}shop \(postgres\) .* killed \(session ended: token was revoked\)$/,
    );
    assert.match(lines[3]!, /^ {3}│ {4}.* allow {2}select 1 \(1 rows\)$/);
    assert.match(lines[4]!, /^ {3}└─ token t1 {2}a \(agent; chain a\)/);
    assert.match(lines[6]!, /allow {2}select \[2J2 \(1 rows\)$/, 'the escape character is gone');
    assert.match(lines[7]!, /^ {6}└─ token t2 {2}b \(agent; chain a → b\)/);
    assert.ok(!renderTrace(trace).includes('\u001b'));
  });
});
