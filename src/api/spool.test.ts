import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord } from '../audit/record.js';
import { type Gateway, startProxiedGateway } from '../testing/gateway.js';
import type { TcpProxy } from '../testing/tcp-proxy.js';
import { api, startWarden, type WardenProcess } from '../testing/warden-process.js';

// A gateway stopped while its PostgreSQL store is unreachable keeps the audit events it could
// not write in a spool file beside its keys, and the next start writes them, each once.
describe('audit events across a shutdown while the store is down', () => {
  let proxy: TcpProxy;
  let gw: Gateway;
  let second: WardenProcess | undefined;
  let storeUrl: string;
  const attempts = 12;

  before(async () => {
    ({ gw, proxy, storeUrl } = await startProxiedGateway());
  });
  after(async () => {
    await second?.stop();
    await gw?.close();
    await proxy?.close();
  });

  it('spools what it could not write when stopped, and writes it at the next start', async () => {
    await proxy.cut();
    for (let i = 0; i < attempts; i++) {
      const key = `wdn_${i.toString(16).padStart(16, '0')}_${'s'.repeat(43)}`;
      const res = await gw.api('GET', '/api/connections', { token: key });
      assert.equal(res.status, 503, res.text);
    }
    await gw.stop();
    assert.equal(gw.proc.child.exitCode, 0, gw.proc.logs());
    const spool = join(gw.store.dataDir, 'audit-spool.jsonl');
    const lines = readFileSync(spool, 'utf8').trim().split('\n');
    assert.ok(lines.length >= attempts + 1, `every attempt and the stop are spooled (${lines.length})`);
    assert.match(gw.proc.logs(), /audit events kept for the next start/);

    await proxy.restore();
    second = await startWarden({
      dir: gw.store.dataDir,
      config: { data_dir: gw.store.dataDir, store: { url: storeUrl } },
    });
    assert.ok(!existsSync(spool), 'the spool is removed once written');
    const res = await api(second.url, 'GET', '/api/audit?limit=1000', { token: gw.adminKey });
    const records = (res.body as { records: AuditRecord[] }).records;
    const failed = records.filter((r) => r.type === 'auth.failed');
    assert.equal(failed.length, attempts, 'each attempt exactly once');
    assert.ok(failed.every((r) => r.payload.reason === 'store_unavailable'));
    assert.equal(records.filter((r) => r.type === 'gateway.stopped').length, 1);
    const ids = new Set(records.map((r) => r.id));
    assert.equal(ids.size, records.length, 'no event written twice');
    const verify = await api(second.url, 'GET', '/api/audit/verify', { token: gw.adminKey });
    assert.equal((verify.body as { ok: boolean }).ok, true, verify.text);
  });
});
