import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Rule, ruleSet } from '../config/rules.js';
import { Decider, type DecisionContext, decide, frozenContext } from './decide.js';
import type { Facts, SqlFacts, SqlStatementFacts } from './facts.js';
import { globMatch } from './glob.js';

const ctx = (
  over: Partial<DecisionContext['caller']> = {},
  conn: Partial<DecisionContext['connection']> = {},
) => ({
  connection: {
    name: 'orders-db',
    tags: ['prod', 'pii'],
    protocol: 'postgres',
    default: 'allow' as const,
    ...conn,
  },
  caller: { subject: 'alice', groups: ['dev'], kind: 'human', chain: [], ...over },
});

function stmt(over: Partial<SqlStatementFacts>): SqlStatementFacts {
  return {
    kind: 'select',
    tables_read: [],
    tables_written: [],
    functions: [],
    where_absent: false,
    changes: [],
    program: false,
    file_access: false,
    binary_output: false,
    opaque: false,
    outputs: [],
    flows: [],
    values: [],
    ...over,
  };
}
const sql = (...statements: SqlStatementFacts[]): SqlFacts => ({
  protocol_kind: 'sql',
  dialect: 'postgres',
  statements,
  multi_statement: statements.length > 1,
  unparseable: null,
  fingerprint: 'f',
});

const rules: Rule[] = ruleSet.parse([
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
    name: 'ssn',
    when: { sql: { tables: ['users'] } },
    effect: 'mask',
    mask: { columns: ['users.ssn'], style: 'redact' },
  },
  {
    name: 'agents-row-cap',
    match: { kinds: ['agent'] },
    effect: 'limit',
    limit: { rows: 1000, duration: '30s' },
  },
  {
    name: 'deep-agents-read-only',
    match: { chain_depth: { min: 2 } },
    when: { sql: { statements: ['insert', 'update', 'delete'] } },
    effect: 'deny',
  },
]);

describe('decide()', () => {
  it('denies with the rule and its message, naming every rule that matched', () => {
    const d = decide(
      rules,
      ctx(),
      sql(stmt({ kind: 'drop', object: 'table', tables_written: [{ schema: null, name: 'users' }] })),
    );
    assert.equal(d.action, 'deny');
    assert.equal(d.decidedBy, 'no-drop');
    assert.equal(d.message, 'Dropping objects in production needs a change request.');
    assert.deepEqual(d.rules, ['no-drop', 'pii', 'ssn']);
  });

  it('finds the dangerous statement anywhere in a multi-statement string', () => {
    const d = decide(
      rules,
      ctx(),
      sql(stmt({}), stmt({ kind: 'truncate', tables_written: [{ schema: 'public', name: 'orders' }] })),
    );
    assert.equal(d.action, 'deny');
  });

  it('matches a rule on a statement kind against the data-changing statements a statement holds', () => {
    const noDeletes: Rule[] = ruleSet.parse([
      {
        name: 'no-delete',
        when: { sql: { statements: ['delete'] } },
        effect: 'deny',
        message: 'No deletes.',
      },
    ]);
    // WITH gone AS (DELETE … WHERE …) SELECT …: a select that deletes, with a WHERE.
    const hidden = decide(noDeletes, ctx(), sql(stmt({ kind: 'select', changes: ['delete'] })));
    assert.deepEqual([hidden.action, hidden.decidedBy], ['deny', 'no-delete']);
    const plain = decide(noDeletes, ctx(), sql(stmt({ kind: 'select', changes: ['insert'] })));
    assert.equal(plain.action, 'allow');
    // A WHERE-less UPDATE is an update, not a delete: "No deletes." would be the wrong refusal.
    const update = decide(
      noDeletes,
      ctx(),
      sql(stmt({ kind: 'update', where_absent: true, changes: ['update'] })),
    );
    assert.equal(update.action, 'allow');
  });

  it('holds an unbounded write for review with the rule’s approvers, and deny outranks review', () => {
    const d = decide(
      rules,
      ctx(),
      sql(stmt({ kind: 'delete', where_absent: true, tables_written: [{ schema: null, name: 'orders' }] })),
    );
    assert.deepEqual(
      [d.action, d.decidedBy, d.review?.approvers, d.review?.hold],
      ['review', 'review-unbounded-writes', ['dba'], 300_000],
    );
    const both = decide(
      rules,
      ctx({ chain: ['planner', 'helper'] }),
      sql(stmt({ kind: 'delete', where_absent: true })),
    );
    assert.deepEqual([both.action, both.decidedBy], ['deny', 'deep-agents-read-only']);
  });

  it('allows a bounded write, accumulating masks and the tightest limits', () => {
    const d = decide(
      rules,
      ctx({ kind: 'agent', chain: ['planner'] }),
      sql(
        stmt({
          kind: 'update',
          tables_read: [{ schema: 'public', name: 'users' }],
          tables_written: [{ schema: 'public', name: 'users' }],
        }),
      ),
    );
    assert.equal(d.action, 'allow');
    assert.deepEqual(
      d.masks.map((m) => m.rule),
      ['pii', 'ssn'],
    );
    assert.deepEqual(d.limits, { rows: 1000, durationMs: 30_000 });
  });

  it('applies mask rules on what a statement reads to FETCH and EXECUTE, whose query it cannot see', () => {
    const scoped = ruleSet.parse([
      {
        name: 'mask-code',
        match: { tags: ['pii'] },
        when: { sql: { tables: ['secrets'], statements: ['select'] } },
        effect: 'mask',
        mask: { columns: ['secrets.code'] },
      },
      { name: 'cap', when: { sql: { tables: ['big'] } }, effect: 'limit', limit: { rows: 10 } },
      { name: 'no-secrets', when: { sql: { tables: ['secrets'] } }, effect: 'deny' },
      {
        name: 'single-only',
        when: { sql: { multi_statement: true } },
        effect: 'mask',
        mask: { columns: ['*.x'] },
      },
    ]);
    for (const kind of ['fetch', 'execute']) {
      const d = decide(scoped, ctx(), sql(stmt({ kind })));
      assert.equal(d.action, 'allow', `${kind}: a deny rule still needs the tables it names`);
      assert.deepEqual(
        d.masks.map((m) => m.rule),
        ['mask-code'],
        kind,
      );
      // A limit on one table's rows would cut every cursor's FETCH: not carried over.
      assert.deepEqual([d.limits.rows, d.rowLimitRule], [null, null], kind);
    }
    // A rule's conditions on who and where, and those not about a statement, still count.
    const elsewhere = decide(scoped, ctx({}, { tags: [] }), sql(stmt({ kind: 'fetch' })));
    assert.deepEqual(
      elsewhere.masks.map((m) => m.rule),
      [],
    );
    const two = decide(scoped, ctx(), sql(stmt({ kind: 'fetch' }), stmt({ kind: 'select' })));
    assert.deepEqual(
      two.masks.map((m) => m.rule),
      ['mask-code', 'single-only'],
    );
    // Other statements are judged on their own facts, as before.
    assert.deepEqual(decide(scoped, ctx(), sql(stmt({ kind: 'select' }))).masks, []);
  });

  it('names the rule that set the tightest row limit, for the notice a stopped result carries', () => {
    const limits = ruleSet.parse([
      { name: 'loose', effect: 'limit', limit: { rows: 100 } },
      { name: 'tight', effect: 'limit', limit: { rows: 5 } },
      { name: 'time-only', effect: 'limit', limit: { duration: '1s' } },
    ]);
    const d = decide(limits, ctx(), sql(stmt({ kind: 'select' })));
    assert.deepEqual([d.limits.rows, d.rowLimitRule], [5, 'tight']);
  });

  it('denies binary COPY output where a row limit or a value-scanning mask applies, and nowhere else', () => {
    const rules = ruleSet.parse([
      { name: 'cap', match: { tags: ['capped'] }, effect: 'limit', limit: { rows: 10 } },
      { name: 'slow', match: { tags: ['capped'] }, effect: 'limit', limit: { duration: '1s' } },
      { name: 'cards', match: { tags: ['scanned'] }, effect: 'mask', mask: { detectors: ['card'] } },
      { name: 'ssn-only', match: { tags: ['named'] }, effect: 'mask', mask: { columns: ['users.ssn'] } },
    ]);
    const binary = sql(stmt({ kind: 'copy', binary_output: true }));
    const text = sql(stmt({ kind: 'copy' }));
    const on = (tag: string) => ctx({}, { tags: [tag] });
    const capped = decide(rules, on('capped'), binary);
    assert.equal(capped.action, 'deny');
    assert.equal(capped.decidedBy, 'cap');
    assert.match(
      capped.message ?? '',
      /binary format carries no types.*cannot count its rows.*FORMAT text or csv/,
    );
    const scanned = decide(rules, on('scanned'), binary);
    assert.deepEqual([scanned.action, scanned.decidedBy], ['deny', 'cards']);
    assert.match(scanned.message ?? '', /cannot scan its values for masking/);
    // Column masks follow COPY through lineage (COPY of users.ssn is denied there); a duration
    // limit needs no reading of rows; text COPY can be scanned and counted.
    assert.equal(decide(rules, on('named'), binary).action, 'allow');
    assert.equal(decide(rules, on('capped'), text).action, 'allow');
    assert.equal(decide(rules, on('scanned'), text).action, 'allow');
    assert.equal(decide(rules, on('other'), binary).action, 'allow');
  });

  it('names the rule that set the tightest duration limit, for the error a stopped statement gets', () => {
    const limits = ruleSet.parse([
      { name: 'slow', effect: 'limit', limit: { rows: 10, duration: '30s' } },
      { name: 'quick', effect: 'limit', limit: { duration: '300ms' } },
      { name: 'rows-only', effect: 'limit', limit: { rows: 5 } },
    ]);
    const d = decide(limits, ctx(), sql(stmt({ kind: 'select' })));
    assert.deepEqual([d.limits.durationMs, d.durationLimitRule], [300, 'quick']);
    assert.deepEqual([d.limits.rows, d.rowLimitRule], [5, 'rows-only']);
    const none = decide([], ctx(), sql(stmt({ kind: 'select' })));
    assert.deepEqual([none.limits.durationMs, none.durationLimitRule], [null, null]);
  });

  it('matches schema-qualified and unqualified table names both ways', () => {
    const only = ruleSet.parse([{ name: 'r', when: { sql: { tables: ['public.users'] } }, effect: 'deny' }]);
    assert.equal(
      decide(only, ctx(), sql(stmt({ tables_read: [{ schema: null, name: 'users' }] }))).action,
      'deny',
    );
    assert.equal(
      decide(only, ctx(), sql(stmt({ tables_read: [{ schema: 'archive', name: 'users' }] }))).action,
      'allow',
    );
  });

  it('denies unparseable SQL unless a rule explicitly allows it, and honours a connection default of deny', () => {
    const bad: Facts = { ...sql(), unparseable: 'syntax error at or near "SELEC"', fingerprint: null };
    const d = decide(rules, ctx(), bad);
    assert.equal(d.action, 'deny');
    assert.match(d.message ?? '', /could not be parsed.*SELEC/);
    const allowed = ruleSet.parse([{ name: 'raw', when: { sql: { unparseable: true } }, effect: 'allow' }]);
    assert.equal(decide(allowed, ctx(), bad).action, 'allow');
    const closed = decide([], ctx({}, { default: 'deny' }), sql(stmt({})));
    assert.equal(closed.action, 'deny');
    assert.match(closed.message ?? '', /default is deny/);
  });

  it('matches shell, Kubernetes and HTTP facts with their own conditions only', () => {
    const r = ruleSet.parse([
      { name: 'no-rm-rf', when: { shell: { programs: ['rm'], flags: ['-r'] } }, effect: 'deny' },
      {
        name: 'no-exec-prod',
        when: {
          k8s: { verbs: ['create'], resources: ['pods'], subresources: ['exec'], namespaces: ['prod-*'] },
        },
        effect: 'review',
      },
      { name: 'admin-api', when: { http: { methods: ['delete'], paths: ['/admin/**'] } }, effect: 'deny' },
    ]);
    const shell: Facts = {
      protocol_kind: 'shell',
      commands: [{ program: 'rm', args: ['-r', '/tmp/x'], flags: ['-r'] }],
      pipeline: false,
      redirections: [],
      subshell: false,
      opaque: false,
      unparseable: null,
    };
    assert.equal(decide(r, ctx(), shell).decidedBy, 'no-rm-rf');
    const k8s: Facts = {
      protocol_kind: 'k8s',
      verb: 'create',
      api_group: '',
      api_version: 'v1',
      resource: 'pods',
      subresource: 'exec',
      namespace: 'prod-eu',
      name: 'web-0',
      is_resource_request: true,
      path: '/api/v1/namespaces/prod-eu/pods/web-0/exec',
    };
    assert.equal(decide(r, ctx(), k8s).action, 'review');
    assert.equal(decide(r, ctx(), { ...k8s, namespace: 'staging' }).action, 'allow');
    const http: Facts = { protocol_kind: 'http', method: 'DELETE', path: '/admin/users/7', query: {} };
    assert.equal(decide(r, ctx(), http).decidedBy, 'admin-api');
    assert.equal(
      decide(r, ctx(), sql(stmt({ kind: 'delete' }))).action,
      'allow',
      'a shell rule never fires on SQL',
    );
  });

  it('caches a decision per facts object and caller, and never across callers', () => {
    const decider = new Decider(rules);
    const facts = sql(stmt({ kind: 'delete', where_absent: true }));
    const first = decider.decide(ctx(), facts);
    assert.equal(decider.decide(ctx(), facts), first, 'the same facts and caller hit the cache');
    assert.ok(Object.isFrozen(first));
    const deep = decider.decide(ctx({ chain: ['planner', 'helper'] }), facts);
    assert.notEqual(deep, first);
    assert.deepEqual([first.action, deep.action], ['review', 'deny']);
  });

  it('never shares a cached decision between a group named "a,x" and the groups a and x', () => {
    const denyX = ruleSet.parse([{ name: 'deny-x', match: { groups: ['x'] }, effect: 'deny' }]);
    const facts = sql(stmt({ kind: 'select' }));
    for (const order of [
      [['a,x'], ['a', 'x']],
      [['a', 'x'], ['a,x']],
    ]) {
      const decider = new Decider(denyX);
      const [first, second] = order.map(
        (groups) => decider.decide(frozenContext(ctx({ groups })), facts).action,
      );
      const expected = order.map((groups) => (groups.includes('x') ? 'deny' : 'allow'));
      assert.deepEqual([first, second], expected, JSON.stringify(order));
    }
  });

  it('keys a frozen context once, and a context that changed between calls anew', () => {
    const decider = new Decider(rules);
    const facts = sql(stmt({ kind: 'delete', where_absent: true }));
    const frozen = frozenContext(ctx());
    const first = decider.decide(frozen, facts);
    assert.equal(decider.decide(frozen, facts), first);
    assert.throws(() => (frozen.caller.chain as string[]).push('helper'), TypeError);
    // Not frozen: a caller that changes it between calls is judged as it is now.
    const open = ctx();
    assert.equal(decider.decide(open, facts).action, 'review');
    open.caller.chain = ['planner', 'helper'];
    assert.equal(decider.decide(open, facts).action, 'deny');
  });

  it('globs: * stays within a path segment, ** crosses them, case-insensitively', () => {
    assert.ok(globMatch('orders-*', 'ORDERS-db'));
    assert.ok(!globMatch('/admin/*', '/admin/users/7'));
    assert.ok(globMatch('/admin/**', '/admin/users/7'));
    assert.ok(!globMatch('users', 'users2'));
  });

  it('refuses rules with unknown keys, bad names, duplicate names and empty limits', () => {
    assert.throws(
      () => ruleSet.parse([{ name: 'x', effect: 'deny', when: { sql: { statment: ['drop'] } } }]),
      /statment/,
    );
    assert.throws(() => ruleSet.parse([{ name: 'No Spaces', effect: 'allow' }]), /rule name/);
    assert.throws(
      () =>
        ruleSet.parse([
          { name: 'a', effect: 'allow' },
          { name: 'a', effect: 'deny' },
        ]),
      /duplicate rule name/,
    );
    assert.throws(
      () => ruleSet.parse([{ name: 'l', effect: 'limit', limit: {} }]),
      /a limit needs rows or duration/,
    );
  });
});
