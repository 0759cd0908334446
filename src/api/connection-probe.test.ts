import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DIALECTS } from '../testing/dialects.js';
import { errorOf, type Gateway, mintKeys, startGateway, stderrLines } from '../testing/gateway.js';
import { CA_PEM, preparePasswordAuth, ROLES } from '../testing/pg-auth.js';
import { ADMIN_URL } from '../testing/postgres.js';

const WRONG_PASSWORD = 'Wr0ng-probe-9d4e1c7b';
const pg = new URL(ADMIN_URL);

interface TestResult {
  name: string;
  ok: boolean;
  latency_ms: number;
  server_version?: string;
  error?: string;
}

const connection = (name: string, port: number, password: string, tls: Record<string, unknown> = {}) => ({
  name,
  protocol: 'postgres',
  target: { host: pg.hostname, port, database: 'postgres', tls: { mode: 'disable', ...tls } },
  credentials: { user: 'warden_scram', password },
});

for (const dialect of DIALECTS) {
  describe(`testing a connection: log in to its target as a session would (${dialect})`, () => {
    let gw: Gateway;
    let alice: string;
    const test = async (name: string, token?: string) => {
      const res = await gw.api('POST', `/api/connections/${name}/test`, token ? { token } : {});
      return { status: res.status, body: res.body as TestResult, res };
    };

    before(async () => {
      await preparePasswordAuth();
      gw = await startGateway(dialect);
      gw.secret(ROLES.scram);
      gw.secret(WRONG_PASSWORD);
      ({ alice } = await mintKeys(gw, { alice: 'dev' }));
      const port = Number(pg.port || 5432);
      for (const c of [
        connection('good', port, ROLES.scram),
        connection('good-tls', port, ROLES.scram, { mode: 'verify-full', ca: readFileSync(CA_PEM, 'utf8') }),
        connection('wrong', port, WRONG_PASSWORD),
        // Port 1 on loopback: nothing listens, so the connect is refused at once.
        connection('unreachable', 1, ROLES.scram),
      ]) {
        const created = await gw.api('POST', '/api/connections', { body: c });
        assert.equal(created.status, 201, created.text);
      }
    });
    after(async () => gw?.close());

    it('reports ok with the server version for the stored password, over TLS too', async () => {
      for (const name of ['good', 'good-tls']) {
        const { status, body } = await test(name);
        assert.equal(status, 200);
        assert.deepEqual(Object.keys(body).sort(), ['latency_ms', 'name', 'ok', 'server_version']);
        assert.equal(body.name, name);
        assert.equal(body.ok, true);
        assert.match(body.server_version ?? '', /^\d/);
        assert.ok(Number.isInteger(body.latency_ms) && body.latency_ms >= 0);
      }
      const audit = await gw.waitForAudit('connection.test', (r) => r.target === 'connection:good');
      assert.equal(audit.outcome, 'success');
      assert.equal(audit.actor.subject, 'bootstrap-admin');
    });

    it("reports a wrong password as not ok with PostgreSQL's own words, audited as a failure", async () => {
      const { status, body } = await test('wrong');
      assert.equal(status, 200);
      assert.deepEqual(Object.keys(body).sort(), ['error', 'latency_ms', 'name', 'ok']);
      assert.equal(body.ok, false);
      assert.match(body.error ?? '', /password authentication failed for user "warden_scram"/);
      const audit = await gw.waitForAudit('connection.test', (r) => r.target === 'connection:wrong');
      assert.equal(audit.outcome, 'failure');
      assert.match(String((audit.payload as { error: string }).error), /password authentication failed/);
    });

    it('reports an unreachable target as refused, without waiting for the time limit', async () => {
      const { status, body } = await test('unreachable');
      assert.equal(status, 200);
      assert.equal(body.ok, false);
      assert.match(body.error ?? '', /ECONNREFUSED/);
      assert.doesNotMatch(body.error ?? '', /timed out/);
    });

    it('answers that a protocol without a probe cannot be tested yet', async () => {
      const created = await gw.api('POST', '/api/connections', {
        body: { name: 'shop-mysql', protocol: 'mysql', target: { host: '127.0.0.1', port: 3306 } },
      });
      assert.equal(created.status, 201, created.text);
      const { status, body } = await test('shop-mysql');
      assert.equal(status, 200);
      assert.deepEqual(body, {
        name: 'shop-mysql',
        ok: false,
        latency_ms: 0,
        error: 'Warden cannot test mysql connections yet',
      });
    });

    it('refuses a non-admin with 403 and answers an unknown connection with 404', async () => {
      const refused = await test('good', alice);
      assert.equal(refused.status, 403);
      const missing = await test('nope');
      assert.equal(missing.status, 404);
      assert.match(errorOf(missing.res).message, /connection "nope" does not exist/);
    });

    it('prints the result from the CLI and exits 1 when the target refuses', async () => {
      const good = await gw.cli(['connections', 'test', 'good']);
      assert.equal(good.code, 0, good.stderr);
      assert.match(good.stdout, /^ok: connection good answered in \d+ ms, server version \d.*\n$/);

      const wrong = await gw.cli(['connections', 'test', 'wrong']);
      assert.equal(wrong.code, 1);
      assert.equal(wrong.stdout, '');
      const [line, ...more] = stderrLines(wrong);
      assert.deepEqual(more, []);
      assert.match(
        line ?? '',
        /^warden: connection wrong failed after \d+ ms: .*password authentication failed for user "warden_scram"$/,
      );

      const json = await gw.cli(['connections', 'test', 'unreachable', '--json']);
      assert.equal(json.code, 1);
      const parsed = JSON.parse(json.stdout) as TestResult;
      assert.deepEqual([parsed.name, parsed.ok], ['unreachable', false]);
    });

    it('never puts the stored or the wrong password in a response, log or audit record', async () => {
      assert.deepEqual(await gw.leaks(), []);
    });
  });
}
