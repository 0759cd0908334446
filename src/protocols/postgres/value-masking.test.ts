import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { SessionEvent } from '../../store/session-events.js';
import type { SessionView } from '../../store/sessions.js';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';

const INSERTED = '555-12-3456';
const UPDATED = '555-98-7654';
const LOOKED_UP = '123-45-0003';

/** Every file under `dir`, as one string: the store, its journal and whatever the gateway wrote. */
function everyByte(dir: string): string {
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .map((path) => (statSync(path).isDirectory() ? everyByte(path) : readFileSync(path).toString('latin1')))
    .join('\n');
}

describe('PostgreSQL gateway: values of masked columns in statements stay out of recording and audit', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let stopped = false;

  before(async () => {
    db = await createThrowawayDb();
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query(`create table users (id int primary key, name text, ssn text);
      insert into users select i, 'User ' || i, '123-45-' || lpad(i::text, 4, '0') from generate_series(1, 10) i`);
    await direct.end();
    gw = await startGateway('sqlite', {
      config: {
        connections: [pgConnection(db.name, 'app-db')],
        policy: {
          rules: [{ name: 'hide-ssn', effect: 'mask', mask: { columns: ['users.ssn'], style: 'tokenize' } }],
        },
      },
    });
  });
  after(async () => {
    if (!stopped) await gw?.close();
    await db?.drop();
  });

  it('masks SSN literals in INSERT, UPDATE and WHERE text and bound parameters, keeps the harmless one, and tokenizes like results', async () => {
    assert.ok(gw.proc.postgres);
    const created = await gw.cli(['keys', 'create', '--name', 'alice']);
    assert.equal(created.code, 0, created.stderr);
    const c = new pg.Client({
      host: '127.0.0.1',
      port: gw.proc.postgres.port,
      database: 'app-db',
      user: 'alice',
      password: gw.credential(created.stdout.trim()),
    });
    await c.connect();
    let literalRow: { ssn: string } | undefined;
    let paramRow: { ssn: string } | undefined;
    try {
      await c.query(`INSERT INTO users (id, name, ssn) VALUES (11, 'Eve', '${INSERTED}')`);
      await c.query(`UPDATE users SET ssn = '${UPDATED}' WHERE id = 11`);
      [literalRow] = (await c.query(`SELECT id, ssn FROM users WHERE ssn = '${UPDATED}'`)).rows;
      await c.query({ text: 'select name from users where id = $1', values: [7] });
      [paramRow] = (
        await c.query({ text: 'select id, ssn from users u where u.ssn = $1', values: [LOOKED_UP] })
      ).rows;
    } finally {
      await c.end();
    }
    assert.ok(literalRow?.ssn.startsWith('tok_') && paramRow?.ssn.startsWith('tok_'));

    const sessions = await gw.api('GET', '/api/sessions?connection=app-db');
    const [session] = (sessions.body as { sessions: SessionView[] }).sessions;
    assert.ok(session);
    const deadline = Date.now() + 10_000;
    let events: SessionEvent[] = [];
    while (events.length < 5 && Date.now() < deadline) {
      events = (
        (await gw.api('GET', `/api/sessions/${session.id}/events`)).body as { events: SessionEvent[] }
      ).events;
      if (events.length < 5) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(events.length, 5, JSON.stringify(events));
    const texts = events.map((e) => e.text);
    assert.match(texts[0]!, /^INSERT INTO users \(id, name, ssn\) VALUES \(11, 'Eve', 'tok_[0-9a-f]{16}'\)$/);
    assert.match(texts[1]!, /^UPDATE users SET ssn = 'tok_[0-9a-f]{16}' WHERE id = 11$/);
    // A tokenized literal is the token the result shows for the same value.
    assert.equal(texts[2], `SELECT id, ssn FROM users WHERE ssn = '${literalRow!.ssn}'`);
    assert.equal(texts[1], `UPDATE users SET ssn = '${literalRow!.ssn}' WHERE id = 11`);
    // The harmless parameter is kept; the one compared with ssn gets the token results show.
    assert.deepEqual(events[3]!.params, ['7']);
    assert.deepEqual(events[4]!.params, [paramRow!.ssn]);

    const audited = await gw.waitForAudit(
      'command.allowed',
      (r) => typeof r.payload.command === 'string' && r.payload.command.startsWith('UPDATE users SET ssn'),
    );
    assert.equal(audited.payload.command, texts[1]);
    await gw.waitForAudit('command.allowed', (r) => r.payload.command === texts[2]);
    const exported = await gw.cli([
      'audit',
      'export',
      '--format',
      'jsonl',
      '-o',
      join(gw.store.dataDir, 'audit.jsonl'),
    ]);
    assert.equal(exported.code, 0, exported.stderr);
    const logs = gw.proc.logs();
    await gw.stop();
    stopped = true;
    // Zero hits anywhere the gateway keeps data: store file and journal, audit export, process log.
    const kept = everyByte(gw.store.dataDir) + logs;
    assert.ok(kept.includes(literalRow!.ssn), 'the search reads the store');
    for (const secret of [INSERTED, UPDATED, LOOKED_UP]) assert.ok(!kept.includes(secret), secret);
    await gw.store.cleanup();
  });
});
