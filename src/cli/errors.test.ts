import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Sessions } from '../store/sessions.js';
import { DIALECTS } from '../testing/dialects.js';
import { type Gateway, startGateway, stderrLines } from '../testing/gateway.js';
import { sessionRow } from '../testing/session-rows.js';
import type { CliResult } from '../testing/warden-process.js';

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function assertOneLineFailure(res: CliResult, line: RegExp): void {
  assert.notEqual(res.code, 0, `exited 0: ${res.stdout}`);
  assert.equal(res.stdout, '');
  assert.deepEqual(stderrLines(res).length, 1, res.stderr);
  assert.match(res.stderr, line);
  assert.ok(!/\n\s+at /.test(res.stderr), `a stack trace: ${res.stderr}`);
}

for (const dialect of DIALECTS) {
  describe(`CLI errors and JSON output (${dialect})`, () => {
    let gw: Gateway;
    let user: string;

    before(async () => {
      gw = await startGateway(dialect);
      const res = await gw.api('POST', '/api/keys', { body: { name: 'dev', groups: ['developers'] } });
      assert.equal(res.status, 201, res.text);
      user = gw.credential((res.body as { key: string }).key);
      const store = gw.openStore();
      try {
        await new Sessions(store).insert(
          sessionRow({ id: 's-dev-1', subject: 'dev', kind: 'service', root_subject: 'dev' }),
        );
      } finally {
        await store.close();
      }
    });
    after(async () => gw?.close());

    it('says in one line that WARDEN_TOKEN is missing', async () => {
      const res = await gw.cli(['connections', 'ls'], { token: null });
      assertOneLineFailure(res, /^warden: no credential: set WARDEN_TOKEN to an API key or token/);
    });

    it('says in one line that WARDEN_URL cannot be reached', async () => {
      const port = await closedPort();
      const res = await gw.cli(['whoami'], { env: { WARDEN_URL: `http://127.0.0.1:${port}` } });
      assertOneLineFailure(
        res,
        new RegExp(
          `^warden: cannot reach Warden at http://127\\.0\\.0\\.1:${port}: ECONNREFUSED \\(is \`warden serve\` running\\? set WARDEN_URL\\)\\n$`,
        ),
      );
    });

    it('says in one line which role a refused command needs', async () => {
      const res = await gw.cli(['keys', 'ls'], { token: user });
      assertOneLineFailure(res, /^warden: 403 forbidden: this needs the admin role; you have user\n$/);
    });

    it('says in one line that a credential was refused', async () => {
      const forged = gw.credential(`wdn_0123456789abcdef_${'x'.repeat(43)}`);
      const res = await gw.cli(['whoami'], { token: forged });
      assertOneLineFailure(res, /^warden: 401 unauthenticated: unknown API key\n$/);
    });

    it('prints every list as JSON with --json', async () => {
      const minted = await gw.cli(['token', 'create', '--ttl', '5m'], { token: user });
      assert.equal(minted.code, 0, minted.stderr);
      gw.credential(minted.stdout.trim());

      const lists: Array<[string[], string | undefined, (item: Record<string, unknown>) => unknown]> = [
        [['connections', 'ls', '--json'], undefined, (c) => c.name],
        [['keys', 'ls', '--json'], undefined, (k) => k.name],
        [['token', 'ls', '--json'], user, (t) => t.subject],
        [['sessions', 'ls', '--json'], user, (s) => s.id],
      ];
      const seen: unknown[] = [];
      for (const [args, token, pick] of lists) {
        const res = await gw.cli(args, { token });
        assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`);
        const parsed = JSON.parse(res.stdout) as Array<Record<string, unknown>>;
        assert.ok(Array.isArray(parsed), `${args.join(' ')} did not print a JSON array`);
        seen.push(parsed.map(pick));
      }
      assert.deepEqual(seen, [[], ['bootstrap-admin', 'dev'], ['dev'], ['s-dev-1']]);
    });

    it('lets no key or token reach the process log or stderr', async () => {
      await gw.stop();
      assert.deepEqual(await gw.leaks(), []);
    });
  });
}
