import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { SessionEvent } from '../../store/session-events.js';
import type { SessionView } from '../../store/sessions.js';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { rawSession } from '../../testing/pg-wire.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { psqlVia } from '../../testing/run.js';
import { Back, Front, int16, int32, message, readNoticeFields } from './codec.js';
import { functionCallText } from './function-call.js';

describe('PostgreSQL gateway: fast-path FunctionCall (large objects) judged as the function it names', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;
  let dir: string;

  before(async () => {
    db = await createThrowawayDb();
    dir = mkdtempSync(join(tmpdir(), 'warden-pg-fc-'));
    gw = await startGateway('sqlite', {
      config: {
        connections: [
          pgConnection(db.name),
          pgConnection(db.name, 'locked-db'),
          pgConnection(db.name, 'masked-db'),
        ],
        policy: {
          rules: [
            {
              name: 'no-large-objects',
              // The analyzer names functions as written: the FunctionCall's text is schema-qualified.
              match: { connections: ['locked-db'] },
              when: {
                sql: { functions: ['pg_catalog.lo_creat*', 'pg_catalog.lo_create', 'pg_catalog.lo_import'] },
              },
              effect: 'deny',
              message: 'Large objects are not allowed here.',
            },
            {
              name: 'find-cards',
              match: { connections: ['masked-db'] },
              effect: 'mask',
              mask: { detectors: ['card'], style: 'redact' },
            },
          ],
        },
      },
    });
    port = gw.proc.postgres?.port ?? 0;
    const created = await gw.cli(['keys', 'create', '--name', 'erin']);
    key = gw.credential(created.stdout.trim());
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const psql = (database: string, ...commands: string[]) =>
    psqlVia({ port, password: key, database, user: 'erin' }, [
      '-v',
      'ON_ERROR_STOP=1',
      ...commands.flatMap((c) => ['-c', c]),
    ]);

  async function largeObjects(): Promise<number> {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      const res = await c.query<{ n: string }>('select count(*) as n from pg_largeobject_metadata');
      return Number(res.rows[0]?.n);
    } finally {
      await c.end();
    }
  }

  async function newestSession(connection: string): Promise<string> {
    const res = await gw.api('GET', `/api/sessions?connection=${connection}&limit=500`);
    assert.equal(res.status, 200, res.text);
    const sessions = (res.body as { sessions: SessionView[] }).sessions;
    assert.ok(sessions.length > 0);
    return sessions.sort((a, b) => b.started_at.localeCompare(a.started_at))[0]!.id;
  }

  async function eventsUntil(id: string, done: (events: SessionEvent[]) => boolean): Promise<SessionEvent[]> {
    const deadline = Date.now() + 10_000;
    let events: SessionEvent[] = [];
    while (Date.now() < deadline) {
      const res = await gw.api('GET', `/api/sessions/${id}/events`);
      assert.equal(res.status, 200, res.text);
      events = (res.body as { events: SessionEvent[] }).events;
      if (done(events)) return events;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`events never complete: ${JSON.stringify(events, null, 2)}`);
  }

  it('writes the text the policy sees: the qualified name and one parameter per argument', () => {
    assert.equal(functionCallText('pg_catalog.lo_open', 2), 'SELECT pg_catalog.lo_open($1, $2)');
    assert.equal(functionCallText('pg_catalog.lo_creat', 1), 'SELECT pg_catalog.lo_creat($1)');
    assert.equal(functionCallText('"My Schema".f', 0), 'SELECT "My Schema".f()');
  });

  it('passes psql’s \\lo_import, \\lo_export and \\lo_unlink, recorded and audited as allowed calls', async () => {
    const source = join(dir, 'in.bin');
    const copy = join(dir, 'out.bin');
    const bytes = randomBytes(6000);
    writeFileSync(source, bytes);
    const before = await largeObjects();
    const imported = await psql('app-db', `\\lo_import ${source}`);
    assert.equal(imported.code, 0, imported.stderr);
    const oid = /lo_import (\d+)/.exec(imported.stdout)?.[1];
    assert.ok(oid, imported.stdout);
    assert.equal(await largeObjects(), before + 1, 'the large object exists on the target');

    const id = await newestSession('app-db');
    const events = await eventsUntil(id, (es) =>
      es.some((e) => e.text.startsWith('SELECT pg_catalog.lo_close(')),
    );
    const open = events.find((e) => e.text === 'SELECT pg_catalog.lo_open($1, $2)');
    assert.ok(open, JSON.stringify(events.map((e) => e.text)));
    assert.equal(open.decision, 'allow');
    assert.equal(open.error, null);
    assert.equal(open.params?.length, 2);
    const write = events.find((e) => e.text === 'SELECT pg_catalog.lowrite($1, $2)');
    assert.ok(write);
    assert.equal(write.decision, 'allow');
    // The data written, as a binary argument: hex like a binary Bind parameter.
    assert.ok(write.params?.[1]?.startsWith(`\\x${bytes.subarray(0, 16).toString('hex')}`));
    assert.ok(write.bytes > 0, 'the FunctionCallResponse counts as the result');
    await gw.waitForAudit(
      'command.allowed',
      (r) => (r.payload as { command?: string }).command === 'SELECT pg_catalog.lo_open($1, $2)',
    );
    await gw.waitForAudit(
      'command.allowed',
      (r) => (r.payload as { command?: string }).command === 'SELECT pg_catalog.lowrite($1, $2)',
    );

    const exported = await psql('app-db', `\\lo_export ${oid} ${copy}`);
    assert.equal(exported.code, 0, exported.stderr);
    assert.deepEqual(readFileSync(copy), bytes, 'the same bytes come back');

    const unlinked = await psql('app-db', `\\lo_unlink ${oid}`, 'select 1');
    assert.equal(unlinked.code, 0, unlinked.stderr);
    assert.match(unlinked.stdout, /lo_unlink \d+\n1\n/);
    assert.equal(await largeObjects(), before);
  });

  it('refuses \\lo_import under a rule denying lo_creat, naming the rule, and the session stays usable', async () => {
    const source = join(dir, 'denied.bin');
    writeFileSync(source, randomBytes(3000));
    const before = await largeObjects();
    const res = await psqlVia({ port, password: key, database: 'locked-db', user: 'erin' }, [
      '-v',
      'VERBOSITY=verbose',
      '-c',
      `\\lo_import ${source}`,
      '-c',
      'select 1',
    ]);
    assert.match(res.stderr, /ERROR: {2}42501: Large objects are not allowed here\. \(warden\)/);
    assert.match(res.stdout, /^1$/m, 'select 1 still works after the refusal');
    assert.equal(await largeObjects(), before, 'nothing was created');
    await gw.waitForAudit(
      'command.denied',
      (r) =>
        (r.payload as { command?: string }).command === 'SELECT pg_catalog.lo_creat($1)' &&
        (r.payload as { decided_by?: string }).decided_by === 'no-large-objects',
    );
    const id = await newestSession('locked-db');
    const events = await eventsUntil(id, (es) => es.some((e) => e.decision === 'deny'));
    const denied = events.find((e) => e.decision === 'deny');
    assert.equal(denied?.text, 'SELECT pg_catalog.lo_creat($1)');
    assert.deepEqual(denied?.rules, ['no-large-objects']);
    assert.match(denied?.error ?? '', /^42501: /);
  });

  it('refuses a FunctionCall under a mask rule: its value has no column a mask could name', async () => {
    const { socket, until, send } = await rawSession(port, 'masked-db', key);
    send(message(Front.FunctionCall, int32(2026), int16(0), int16(0), int16(0)));
    const replies = await until(Back.ReadyForQuery);
    const error = replies.find((m) => m.type === Back.ErrorResponse);
    assert.ok(error, 'an ErrorResponse');
    const fields = readNoticeFields(error.body);
    assert.equal(fields.get('C'), '42501');
    assert.match(fields.get('M') ?? '', /rule "find-cards" masks this statement/);
    send(message(Front.Query, 'select 7'));
    const rows = await until(Back.ReadyForQuery);
    assert.ok(rows.some((m) => m.type === Back.DataRow));
    socket.end();
  });

  it('refuses a FunctionCall of an OID no function has, naming the OID, and the session continues', async () => {
    const { socket, until, send } = await rawSession(port, 'app-db', key);
    // FunctionCall: function OID, no argument formats, no arguments, text result.
    send(message(Front.FunctionCall, int32(999_999_999), int16(0), int16(0), int16(0)));
    const replies = await until(Back.ReadyForQuery);
    const error = replies.find((m) => m.type === Back.ErrorResponse);
    assert.ok(error, 'an ErrorResponse');
    const fields = readNoticeFields(error.body);
    assert.equal(fields.get('C'), '42501');
    assert.match(fields.get('M') ?? '', /FunctionCall of function OID 999999999 refused/);
    // A known function by OID works on the same session: pg_backend_pid(), OID 2026.
    send(message(Front.FunctionCall, int32(2026), int16(0), int16(0), int16(0)));
    const called = await until(Back.ReadyForQuery);
    const value = called.find((m) => m.type === Back.FunctionCallResponse);
    assert.ok(value, `a FunctionCallResponse, got ${called.map((m) => String.fromCharCode(m.type))}`);
    assert.match(value.body.subarray(4).toString(), /^\d+$/);
    send(message(Front.Query, 'select 7'));
    const rows = await until(Back.ReadyForQuery);
    assert.ok(rows.some((m) => m.type === Back.DataRow));
    socket.end();
  });
});
