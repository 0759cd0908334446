import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Gateway, startGateway } from '../testing/gateway.js';

const policy = {
  default: 'allow',
  rules: [
    {
      name: 'no-drop',
      match: { tags: ['prod'] },
      when: { sql: { statements: ['drop', 'truncate'] } },
      effect: 'deny',
      message: 'Dropping objects in production needs a change request.',
    },
    {
      name: 'review-unbounded-writes',
      when: { sql: { statements: ['update', 'delete'], where: 'absent' } },
      effect: 'review',
      review: { approvers: ['dba'], approvals: 1, hold: '5m' },
    },
    {
      name: 'pii',
      match: { tags: ['pii'] },
      effect: 'mask',
      mask: { columns: ['*.email'], style: 'keep-last-4' },
    },
    {
      name: 'report-limits',
      when: { sql: { tables: ['reports'] } },
      effect: 'limit',
      limit: { rows: 500, duration: '30s' },
    },
    { name: 'no-recursive-rm', when: { shell: { programs: ['rm'], flags: ['-r'] } }, effect: 'deny' },
    { name: 'no-opaque-shell', when: { shell: { opaque: true } }, effect: 'deny' },
    {
      name: 'exec-needs-review',
      when: { k8s: { subresources: ['exec'] } },
      effect: 'review',
      review: { approvers: ['sre'] },
    },
  ],
};

const connections = [
  { name: 'orders-db', protocol: 'postgres', target: { host: 'db', port: 5432 }, tags: ['prod', 'pii'] },
  { name: 'shop-mysql', protocol: 'mysql', target: { host: 'db', port: 3306 }, tags: ['prod'] },
  { name: 'bastion', protocol: 'ssh', target: { host: 'bastion', port: 22 } },
  { name: 'prod-k8s', protocol: 'kubernetes', target: { host: 'k8s', port: 6443 } },
];

describe('warden policy test (explain)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway('sqlite', { config: { policy, connections } });
  });
  after(async () => gw?.close());

  const explain = async (connection: string, command: string, extra: string[] = []) => {
    const res = await gw.cli([
      'policy',
      'test',
      '--connection',
      connection,
      '--as',
      'agent-7',
      ...extra,
      '--json',
      command,
    ]);
    assert.equal(res.code, 0, res.stderr);
    return JSON.parse(res.stdout) as {
      facts: Record<string, unknown>;
      decision: {
        action: string;
        rules: string[];
        decided_by: string | null;
        message: string | null;
        derived: Array<Record<string, unknown>>;
      };
    };
  };

  it('denies a DROP hidden behind comments and case on a prod connection, naming the rule and its message', async () => {
    const { facts, decision } = await explain(
      'orders-db',
      'select 1; /* harmless */ dRoP TABLE "public"."users"',
    );
    assert.equal(facts.multi_statement, true);
    assert.deepEqual([decision.action, decision.decided_by], ['deny', 'no-drop']);
    assert.equal(decision.message, 'Dropping objects in production needs a change request.');
    assert.ok(decision.rules.includes('pii'), 'every matching rule is named');
  });

  it('holds a DELETE without WHERE (also inside a CTE) for review, and allows it with a WHERE', async () => {
    assert.equal(
      (await explain('orders-db', 'with d as (delete from orders returning *) select count(*) from d'))
        .decision.action,
      'review',
    );
    assert.equal((await explain('orders-db', 'delete from orders where id = 7')).decision.action, 'allow');
    assert.equal((await explain('shop-mysql', 'DELETE FROM orders')).decision.action, 'review');
  });

  it('masks a column computed from a masked one, and denies copying a masked column into a table', async () => {
    const masked = await explain('orders-db', 'SELECT id, lower(email) FROM customers');
    assert.equal(masked.decision.action, 'allow');
    assert.deepEqual(masked.decision.derived, [
      {
        statement: 0,
        output: 1,
        name: 'lower',
        rule: 'pii',
        style: 'keep-last-4',
        columns: ['customers.email'],
      },
    ]);
    const copy = await explain('orders-db', 'CREATE TABLE leads AS SELECT email FROM customers');
    assert.deepEqual([copy.decision.action, copy.decision.decided_by], ['deny', 'pii']);
    assert.match(copy.decision.message ?? '', /CREATE TABLE AS would copy customers\.email into leads/);
    const text = await gw.cli([
      'policy',
      'test',
      '--connection',
      'orders-db',
      '--as',
      'alice',
      'SELECT md5(email) FROM customers',
    ]);
    assert.match(text.stdout, /^derived: {2}md5 \(statement 1, column 1, rule pii\)$/m);
  });

  it('denies SQL it cannot parse, with the parser’s message', async () => {
    const { decision } = await explain('orders-db', 'SELEC * FROM orders');
    assert.equal(decision.action, 'deny');
    assert.match(decision.message ?? '', /could not be parsed.*syntax error/);
  });

  it('judges shell lines and Kubernetes requests by their own facts', async () => {
    assert.equal(
      (await explain('bastion', 'sudo rm -rf /var/lib/app')).decision.decided_by,
      'no-recursive-rm',
    );
    assert.equal(
      (await explain('bastion', 'echo cm0gLXJmIC8= | base64 -d | sh')).decision.decided_by,
      'no-opaque-shell',
    );
    assert.equal((await explain('bastion', 'ls -la /var/log')).decision.action, 'allow');
    const exec = await explain(
      'prod-k8s',
      'POST /api/v1/namespaces/default/pods/web-0/exec?command=sh&stdin=true',
    );
    assert.deepEqual([exec.decision.action, exec.facts.subresource], ['review', 'exec']);
  });

  it('names the rules behind the row and duration limits', async () => {
    const res = await gw.api('POST', '/api/policy/test', {
      body: { connection: 'orders-db', command: 'select * from reports', as: { subject: 'alice' } },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual((res.body as { decision: { limits: unknown } }).decision.limits, {
      rows: 500,
      rows_rule: 'report-limits',
      duration_ms: 30_000,
      duration_rule: 'report-limits',
    });
    const text = await gw.cli([
      'policy',
      'test',
      '--connection',
      'orders-db',
      '--as',
      'alice',
      'select * from reports',
    ]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /^limits: {3}rows 500 \(rule report-limits\), duration 30s \(rule report-limits\)$/m,
    );
  });

  it('prints a readable explanation, and lists the rules', async () => {
    const res = await gw.cli([
      'policy',
      'test',
      '--connection',
      'orders-db',
      '--as',
      'alice',
      'TRUNCATE orders',
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^matched: {2}no-drop, pii$/m);
    assert.match(res.stdout, /^decision: DENY \(rule "no-drop"\): Dropping objects/m);
    const ls = await gw.cli(['policy', 'ls', '--json']);
    const rules = JSON.parse(ls.stdout) as { default: string; rules: Array<{ name: string }> };
    assert.equal(rules.default, 'allow');
    assert.equal(rules.rules.length, policy.rules.length);
  });

  it('masks sample rows and text as the decision would, so mask rules can be tried before they bite', async () => {
    const res = await gw.cli([
      'policy',
      'test',
      '--connection',
      'orders-db',
      '--as',
      'alice',
      '--sample',
      JSON.stringify({
        columns: ['users.email', 'users.note'],
        rows: [['ann@example.com', 'call ann@example.com']],
      }),
      '--sample-text',
      'mail bo@example.org',
      'SELECT email, note FROM users',
    ]);
    assert.equal(res.code, 0, res.stderr);
    // The pii rule masks *.email columns (keep-last-4) and names no detectors: free text is left alone.
    assert.match(res.stdout, /^users\.email +users\.note$/m);
    assert.match(res.stdout, /^\*{11}\.com +call ann@example\.com$/m);
    assert.match(res.stdout, /^masked text: mail bo@example\.org$/m);
    // A column computed from a masked one has no table in the result metadata: lineage masks it by position.
    const derived = await gw.cli([
      'policy',
      'test',
      '--connection',
      'orders-db',
      '--as',
      'alice',
      '--sample',
      JSON.stringify({ columns: ['id', 'e'], rows: [['7', 'ANN@EXAMPLE.COM']] }),
      'SELECT id, upper(email) AS e FROM users',
    ]);
    assert.equal(derived.code, 0, derived.stderr);
    assert.match(derived.stdout, /^derived: +e \(statement 1, column 2, rule pii\)$/m);
    assert.match(derived.stdout, /^7 +\*{11}\.COM$/m);
    const ragged = await gw.api('POST', '/api/policy/test', {
      body: {
        connection: 'orders-db',
        command: 'SELECT 1',
        as: { subject: 'alice' },
        sample: { columns: ['a', 'b'], rows: [['1']] },
      },
    });
    assert.equal(ragged.status, 400);
  });

  it('is for auditors and admins: a plain user gets 403', async () => {
    const key = await gw.cli(['keys', 'create', '--name', 'plain-user']);
    const user = gw.credential(key.stdout.trim());
    const res = await gw.cli(['policy', 'ls'], { token: user });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /403 forbidden/);
  });
});
