import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { selfSignedCert } from '../testing/tls.js';
import { runCli, startWarden, type WardenProcess } from '../testing/warden-process.js';

describe('the API over TLS', () => {
  let dir: string;
  let proc: WardenProcess;
  let cert: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-tls-'));
    // A self-signed certificate for 127.0.0.1, as an operator's private CA would issue.
    const files = selfSignedCert(dir, 'warden-test');
    cert = files.cert;
    const key = files.key;
    proc = await startWarden({
      dir,
      config: { data_dir: join(dir, 'data'), api: { port: 0, tls: { cert, key } } },
    });
  });
  after(async () => {
    await proc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens with HTTPS only when api.tls is configured', async () => {
    assert.match(proc.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const plain = proc.url.replace('https:', 'http:');
    const res = await fetch(`${plain}/healthz`).catch((err: Error) => err);
    assert.ok(res instanceof Error || res.status !== 200, 'plain HTTP gets no answer from the API');
  });

  it('serves the CLI when the CA is trusted, and refuses it clearly when not', async () => {
    const admin = readFileSync(join(dir, 'data', 'admin.key'), 'utf8').trim();
    const trusted = await runCli(['whoami', '--json'], {
      env: { ...proc.env(admin), NODE_EXTRA_CA_CERTS: cert },
    });
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.equal(JSON.parse(trusted.stdout).subject, 'bootstrap-admin');

    const untrusted = await runCli(['whoami'], { env: { ...proc.env(admin), NODE_EXTRA_CA_CERTS: '' } });
    assert.notEqual(untrusted.code, 0);
    assert.match(
      untrusted.stderr,
      /^warden: cannot reach Warden at https:\/\/127\.0\.0\.1:\d+: \S*(CERT|SIGNATURE)\S*/,
    );
    assert.equal(untrusted.stderr.trim().split('\n').length, 1);
  });
});
