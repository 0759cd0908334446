import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionView } from '../config/connection.js';
import type { Identity } from '../identity/identity.js';
import type { Decision } from '../policy/decide.js';
import { Recorder } from '../recording/recorder.js';
import type { SessionEvent, SessionEvents } from '../store/session-events.js';
import type { Sessions } from '../store/sessions.js';
import { Session, type SessionDeps } from './session.js';

/** A session whose store writes are counted; only what open() and record() touch is real. */
function session(recorder: Recorder) {
  const inserted: string[] = [];
  const deps = {
    sessions: {
      insertWrite: (s: { id: string }) => ({ sql: 'insert', parameters: [s.id] }),
    } as unknown as Sessions,
    // The row is written with the `session.opened` event.
    audit: {
      append: async (_event: unknown, opts: { alongside: { parameters: string[] } }) =>
        void inserted.push(opts.alongside.parameters[0]!),
    },
    recorder,
    resultRows: 7,
  } as unknown as SessionDeps;
  const identity = { subject: 'alice', kind: 'user', groups: [], rootSubject: 'alice', chain: [] };
  const conn = { name: 'app-db', protocol: 'postgres', tags: [] } as unknown as ConnectionView;
  const s = new Session(deps, identity as unknown as Identity, conn, { address: null, application: null });
  return { s, inserted, deps };
}

/** A repository whose every write fails: the store is down. */
const stuckStore = () => ({
  events: { insert: () => Promise.reject(new Error('store down')) } as unknown as SessionEvents,
});

const statement = (text: string) => ({
  time: new Date().toISOString(),
  duration_ms: 0,
  text,
  params: null,
  decision: 'allow' as const,
  rules: [],
  rows: null,
  bytes: 0,
  error: null,
  sample: null,
});

describe('session: recording', () => {
  it('refuses to open while the recorder is over its queue bound', async () => {
    const store = stuckStore();
    const recorder = new Recorder(store.events, { maxQueue: 2, onError: () => undefined });
    const first = session(recorder);
    await first.s.open();
    first.s.record(statement('select 1'));
    first.s.record(statement('select 2'));
    assert.equal(recorder.healthy, false);
    const second = session(recorder);
    await assert.rejects(second.s.open(), /recorder is over its queue bound/);
    assert.deepEqual(second.inserted, []);
    await recorder.close(0);
  });

  it('numbers its events from 1 in order and tags them with its id', async () => {
    const batches: SessionEvent[][] = [];
    const recorder = new Recorder({
      insert: async (e: readonly SessionEvent[]) => void batches.push([...e]),
    } as unknown as SessionEvents);
    const { s } = session(recorder);
    assert.equal(s.sampleRows, 7);
    s.record(statement('select 1'));
    s.record(statement('select 2'));
    await recorder.close(1_000);
    assert.deepEqual(
      batches.flat().map((e) => [e.session_id, e.seq, e.kind, e.text]),
      [
        [s.id, 1, 'statement', 'select 1'],
        [s.id, 2, 'statement', 'select 2'],
      ],
    );
  });
});

describe('session: masks', () => {
  it("compiles a decision's masks once for every session of a gateway, not once per session", () => {
    const recorder = new Recorder({ insert: async () => undefined } as unknown as SessionEvents);
    const decision = { masks: [{ columns: ['users.email'], style: 'redact' }] } as unknown as Decision;
    const first = session(recorder);
    const set = first.s.masksFor(decision);
    assert.ok(set);
    const sameGateway = new Session(first.deps, first.s.identity, first.s.connection, first.s.client);
    assert.equal(sameGateway.masksFor(decision), set);
    // Another gateway's sessions (their own deps, their own tokenization key) compile their own.
    assert.notEqual(session(recorder).s.masksFor(decision), set);
    assert.equal(first.s.masksFor({ masks: [] } as unknown as Decision), null);
  });
});
