import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord } from '../audit/record.js';
import { DIALECTS } from '../testing/dialects.js';
import { errorOf, type Gateway, startGateway } from '../testing/gateway.js';
import { api, startWarden } from '../testing/warden-process.js';

const configPolicy = {
  default: 'allow',
  rules: [{ name: 'no-drop', when: { sql: { statements: ['drop'] } }, effect: 'deny' }],
};

const connections = [
  { name: 'orders-db', protocol: 'postgres', target: { host: 'db', port: 5432 }, tags: ['prod'] },
  {
    name: 'vault-db',
    protocol: 'postgres',
    target: { host: 'db', port: 5432 },
    policy_default: 'deny',
  },
];

const V1 = `# rules managed through the API
rules:
  - name: no-truncate
    description: Truncating needs a change request.
    match: { tags: [prod] }
    when: { sql: { statements: [truncate] } }
    effect: deny
    message: TRUNCATE on prod needs a change request.
  - name: reads-on-vault
    match: { connections: [vault-*] }
    when: { sql: { statements: [select] } }
    effect: allow
`;

/** V1 with one message changed, one rule removed and one added. */
const V2 = `- name: no-truncate
  match: { tags: [prod] }
  when: { sql: { statements: [truncate] } }
  effect: deny
  message: TRUNCATE is off on prod.
- name: review-deletes
  when: { sql: { statements: [delete] } }
  effect: review
  review: { approvers: [dba], hold: 2m }
`;

interface Explained {
  decision: { action: string; rules: string[]; decided_by: string | null; message: string | null };
}

for (const dialect of DIALECTS) {
  describe(`warden policy apply: versioned rules from the API (${dialect})`, () => {
    let gw: Gateway;
    const file = (name: string, text: string) => {
      const path = join(gw.store.dataDir, name);
      writeFileSync(path, text);
      return path;
    };
    const explain = async (connection: string, sql: string) => {
      const res = await gw.cli([
        'policy',
        'test',
        '--connection',
        connection,
        '--as',
        'alice',
        '--json',
        sql,
      ]);
      assert.equal(res.code, 0, res.stderr);
      return (JSON.parse(res.stdout) as Explained).decision;
    };
    const changes = async () =>
      (await gw.api('GET', '/api/audit?type=policy.changed&limit=100')).body as { records: AuditRecord[] };

    before(async () => {
      gw = await startGateway(dialect, { config: { policy: configPolicy, connections } });
    });
    after(async () => gw?.close());

    it('enforces an applied rule at once, next to the config file’s rules, and audits the diff', async () => {
      assert.equal((await explain('orders-db', 'TRUNCATE orders')).action, 'allow');
      const res = await gw.cli(['policy', 'apply', '-f', file('v1.yaml', V1), '-m', 'first cut']);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^\+ no-truncate \(deny\)$/m);
      assert.match(res.stdout, /^applied version 1 \(\+2 -0 ~0\)$/m);

      const d = await explain('orders-db', 'TRUNCATE orders');
      assert.deepEqual(
        [d.action, d.decided_by, d.message],
        ['deny', 'no-truncate', 'TRUNCATE on prod needs a change request.'],
      );
      assert.equal((await explain('orders-db', 'DROP TABLE orders')).decided_by, 'no-drop');

      const ls = JSON.parse((await gw.cli(['policy', 'ls', '--json'])).stdout) as {
        version: number;
        rules: Array<{ name: string; source: string }>;
      };
      assert.equal(ls.version, 1);
      assert.deepEqual(
        ls.rules.map((r) => `${r.name}:${r.source}`),
        ['no-drop:config', 'no-truncate:api', 'reads-on-vault:api'],
      );

      const [event] = (await changes()).records;
      assert.ok(event, 'a policy.changed event');
      assert.equal(event.target, 'policy:v1');
      const payload = event.payload as {
        version: number;
        comment: string;
        diff: { added: Array<{ name: string }>; removed: unknown[] };
      };
      assert.deepEqual(
        [payload.version, payload.comment, payload.diff.added.map((r) => r.name), payload.diff.removed],
        [1, 'first cut', ['no-truncate', 'reads-on-vault'], []],
      );
      assert.equal((event.actor as { subject: string }).subject, 'bootstrap-admin');
    });

    it('makes no new version when nothing changed', async () => {
      const res = await gw.cli(['policy', 'apply', '-f', file('v1-again.yaml', V1)]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /no change; version 1 stays in force/);
      assert.equal((await changes()).records.length, 1);
    });

    it('previews a change with --dry-run, then applies it as version 2 with changed fields named', async () => {
      const v2 = file('v2.yaml', V2);
      const dry = await gw.cli(['policy', 'apply', '-f', v2, '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^~ no-truncate: description, message$/m);
      assert.match(dry.stdout, /^- reads-on-vault \(allow\)$/m);
      assert.match(dry.stdout, /dry run: would apply \+1 -1 ~1 on top of version 1/);
      assert.equal((await explain('orders-db', 'DELETE FROM orders WHERE id = 1')).action, 'allow');

      const stale = await gw.cli(['policy', 'apply', '-f', v2, '--if-version', '0']);
      assert.notEqual(stale.code, 0);
      assert.match(stale.stderr, /409 conflict.*changed since version 0 \(now version 1\)/);

      const res = await gw.cli(['policy', 'apply', '-f', v2, '--if-version', '1']);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /applied version 2 \(\+1 -1 ~1\)/);
      const held = await explain('orders-db', 'DELETE FROM orders WHERE id = 1');
      assert.deepEqual([held.action, held.decided_by], ['review', 'review-deletes']);
      assert.equal((await explain('orders-db', 'TRUNCATE orders')).message, 'TRUNCATE is off on prod.');

      const v2event = (await changes()).records.find((r) => r.target === 'policy:v2');
      assert.ok(v2event, 'a policy.changed event for version 2');
      const { changed } = (
        v2event.payload as {
          diff: { changed: Array<{ name: string; fields: string[]; after: { message: string } }> };
        }
      ).diff;
      assert.deepEqual(
        changed.map((c) => [c.name, c.fields, c.after.message]),
        [['no-truncate', ['description', 'message'], 'TRUNCATE is off on prod.']],
      );
    });

    it('keeps the history: who applied what, and each version’s rules and diff', async () => {
      const history = await gw.cli(['policy', 'history']);
      assert.equal(history.code, 0, history.stderr);
      assert.match(history.stdout, /^2 +\S+ +bootstrap-admin +2 +-$/m);
      assert.match(history.stdout, /^1 +\S+ +bootstrap-admin +2 +first cut$/m);
      const show = JSON.parse((await gw.cli(['policy', 'show', '1', '--json'])).stdout) as {
        rule_set: Array<{ name: string }>;
        diff: { added: unknown[] };
      };
      assert.deepEqual(
        show.rule_set.map((r) => r.name),
        ['no-truncate', 'reads-on-vault'],
      );
      assert.equal(show.diff.added.length, 2);
      const missing = await gw.cli(['policy', 'show', '9']);
      assert.match(missing.stderr, /404 not_found.*policy version 9 does not exist/);
    });

    it('names the file, line and key of a mistake and applies nothing', async () => {
      const bad = file(
        'bad.yaml',
        'rules:\n  - name: ok-rule\n    effect: allow\n  - name: Bad Name\n    effect: deny\n  - name: x\n    effect: explode\n',
      );
      const res = await gw.cli(['policy', 'apply', '-f', bad]);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /bad\.yaml:4:\d+: rules\[1\]\.name: expected a rule name/);
      assert.match(res.stderr, /bad\.yaml:7:\d+: rules\[2\]\.effect/);
      const direct = await gw.api('PUT', '/api/policy/rules', {
        body: { rules: [{ name: 'x', effect: 'deny', when: { sql: { statments: ['drop'] } } }] },
      });
      assert.equal(direct.status, 400);
      assert.match(errorOf(direct).message, /rules\[0\]\.when\.sql: unknown key "statments"/);
      assert.equal((await changes()).records.length, 2, 'no version was added');
    });

    it('refuses a rule named like a config-file rule, and applying for anyone but admins', async () => {
      const clash = await gw.api('PUT', '/api/policy/rules', {
        body: { rules: [{ name: 'no-drop', effect: 'allow' }] },
      });
      assert.equal(clash.status, 409);
      assert.match(errorOf(clash).message, /"no-drop" already defined in the config file/);
      const key = await gw.cli(['keys', 'create', '--name', 'sec-team', '--groups', 'warden:auditor']);
      const auditor = gw.credential(key.stdout.trim());
      const res = await gw.cli(['policy', 'apply', '-f', file('v1-auditor.yaml', V1)], { token: auditor });
      assert.match(res.stderr, /403 forbidden/);
      assert.equal((await gw.cli(['policy', 'history'], { token: auditor })).code, 0);
    });

    it('gives each connection its own default for commands no rule decides', async () => {
      const vault = await explain('vault-db', 'UPDATE secrets SET v = 1 WHERE id = 2');
      assert.equal(vault.action, 'deny');
      assert.match(
        vault.message ?? '',
        /no rule allows this on connection "vault-db" \(its default is deny\)/,
      );
      assert.equal((await explain('orders-db', 'UPDATE t SET v = 1 WHERE id = 2')).action, 'allow');

      const added = await gw.cli([
        'connections',
        'add',
        'ledger-db',
        '--protocol',
        'postgres',
        '--host',
        'db',
        '--port',
        '5432',
        '--policy-default',
        'deny',
      ]);
      assert.equal(added.code, 0, added.stderr);
      assert.match((await gw.cli(['connections', 'show', 'ledger-db'])).stdout, /^policy: +deny$/m);
      assert.equal((await explain('ledger-db', 'SELECT 1')).action, 'deny');
      const patched = await gw.api('PATCH', '/api/connections/ledger-db', { body: { policy_default: null } });
      assert.equal(patched.status, 200, patched.text);
      assert.equal((await explain('ledger-db', 'SELECT 1')).action, 'allow');
    });

    it('keeps the applied version across a restart; a config rule of the same name wins and is reported', async () => {
      await gw.stop();
      const rules = [...configPolicy.rules, { name: 'no-truncate', effect: 'allow' }];
      const again = await startWarden({
        dir: gw.store.dataDir,
        config: {
          data_dir: gw.store.dataDir,
          ...(gw.store.url ? { store: { url: gw.store.url } } : {}),
          policy: { ...configPolicy, rules },
          connections,
        },
      });
      try {
        const res = await api(again.url, 'GET', '/api/policy/rules', { token: gw.adminKey });
        const body = res.body as {
          version: number;
          rules: Array<{ name: string; source: string }>;
          shadowed: string[];
        };
        assert.equal(body.version, 2);
        assert.deepEqual(body.shadowed, ['no-truncate']);
        assert.deepEqual(
          body.rules.map((r) => `${r.name}:${r.source}`),
          ['no-drop:config', 'no-truncate:config', 'review-deletes:api'],
        );
        assert.match(await again.waitForLog(/API rules ignored/), /"shadowed":\["no-truncate"\]/);
      } finally {
        await again.stop();
      }
    });

    it('leaks no credential', async () => assert.deepEqual(await gw.leaks(), []));
  });
}
