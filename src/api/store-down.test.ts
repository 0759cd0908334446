import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorOf, type Gateway, startProxiedGateway } from '../testing/gateway.js';
import type { TcpProxy } from '../testing/tcp-proxy.js';

// Only PostgreSQL can go away under a running gateway; SQLite is a file in the process.
describe('the PostgreSQL store going away and coming back', () => {
  let proxy: TcpProxy;
  let gw: Gateway;
  let lastSeqBeforeCut: number;

  before(async () => {
    // Every request checks its credential in the store, so a cut store shows on every path (with
    // the cache on, a credential checked within the last second is taken without the store).
    ({ gw, proxy } = await startProxiedGateway({ identity: { login_cache: 'off' } }));
  });
  after(async () => {
    await gw?.close();
    await proxy?.close();
  });

  const stillUp = () => assert.equal(gw.proc.child.exitCode, null, `warden exited:\n${gw.proc.logs()}`);

  it('is ready while the store is reachable', async () => {
    const ready = await gw.api('GET', '/readyz', { token: null });
    assert.equal(ready.status, 200, ready.text);
    assert.deepEqual(
      [(ready.body as { status: string }).status, (ready.body as { store: string }).store],
      ['ready', 'postgres'],
    );
    const audit = await gw.api('GET', '/api/audit?tail=true&limit=1');
    lastSeqBeforeCut = (audit.body as { last_seq: number }).last_seq;
  });

  it('stays healthy but not ready, and answers 503 store_unavailable, when the store is cut', async () => {
    // Cut with queries in flight: a connection dying mid-query must fail that request, not the process.
    const inFlight = Array.from({ length: 20 }, () => gw.api('GET', '/api/audit?limit=1000'));
    await new Promise((r) => setTimeout(r, 5));
    await proxy.cut();
    for (const res of await Promise.all(inFlight)) {
      assert.ok(res.status === 200 || errorOf(res).code === 'store_unavailable', res.text);
    }
    const health = await gw.api('GET', '/healthz', { token: null });
    assert.deepEqual([health.status, health.body], [200, { status: 'ok' }]);

    const ready = await gw.api('GET', '/readyz', { token: null });
    assert.equal(ready.status, 503, ready.text);
    const body = ready.body as { status: string; reason: string };
    assert.equal(body.status, 'unavailable');
    assert.match(body.reason, /^store: /);

    for (const path of ['/api/connections', '/api/whoami']) {
      const res = await gw.api('GET', path);
      assert.equal(res.status, 503, res.text);
      assert.deepEqual(errorOf(res), {
        code: 'store_unavailable',
        message: 'the store is not reachable; try again shortly',
      });
    }
    stillUp();
  });

  it('still refuses a bad credential with 401 while the store is down', async () => {
    const res = await gw.api('GET', '/api/sessions', { token: 'wdn_forged-while-the-store-is-down' });
    assert.equal(res.status, 401, res.text);
    assert.deepEqual(errorOf(res), { code: 'unauthenticated', message: 'malformed API key' });
    assert.equal((await gw.api('GET', '/healthz', { token: null })).status, 200);
    stillUp();
  });

  it('answers 503 for a well-formed key it cannot check, and keeps the attempt for the audit trail', async () => {
    const key = `wdn_0123456789abcdef_${'k'.repeat(43)}`;
    const res = await gw.api('GET', '/api/connections', { token: key });
    assert.equal(res.status, 503, res.text);
    assert.equal(errorOf(res).code, 'store_unavailable');
    stillUp();
  });

  it('writes the held refusal to the audit trail once the store is back', async () => {
    await proxy.restore();
    const event = await gw.waitForAudit(
      'auth.refused',
      (r) => r.seq > lastSeqBeforeCut && r.target === 'GET /api/sessions',
    );
    assert.deepEqual(
      [event.outcome, event.payload.reason, event.payload.credential_kind],
      ['denied', 'malformed', 'api_key'],
    );
    const unchecked = await gw.waitForAudit(
      'auth.failed',
      (r) => r.seq > lastSeqBeforeCut && r.target === 'GET /api/connections',
    );
    assert.deepEqual([unchecked.outcome, unchecked.payload.reason], ['failure', 'store_unavailable']);
    const ready = await gw.api('GET', '/readyz', { token: null });
    assert.equal(ready.status, 200, ready.text);
    assert.equal((await gw.api('GET', '/api/connections')).status, 200);

    const verify = await gw.api('GET', '/api/audit/verify');
    assert.equal((verify.body as { ok: boolean }).ok, true, verify.text);
    stillUp();
  });

  it('lets no key reach the process log', async () => {
    await gw.stop();
    assert.deepEqual(await gw.leaks(), []);
  });
});
