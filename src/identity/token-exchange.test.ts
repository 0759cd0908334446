import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { type Gateway, startGateway } from '../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { psqlVia } from '../testing/run.js';
import type { TokenView } from './warden-tokens.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';

interface Issued {
  access_token: string;
  issued_token_type: string;
  token_type: string;
  expires_in: number;
  scope: string;
}
interface Refused {
  error: string;
  error_description: string;
}
interface SessionRow {
  subject: string;
  root_subject: string;
  chain: string[];
  token_id: string | null;
  connection: string;
}

describe('token exchange (RFC 8693): delegated tokens for nested agents, through the PostgreSQL listener', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;
  const keys = { 'agent-a': '', 'agent-b': '', 'agent-c': '' };

  /** POST /oauth/token form-encoded, as OAuth clients send it; the response headers included. */
  const exchange = async (params: Record<string, string>) => {
    const res = await fetch(`${gw.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString(),
    });
    return { status: res.status, cacheControl: res.headers.get('cache-control'), body: await res.json() };
  };
  const issued = async (params: Record<string, string>): Promise<Issued> => {
    const res = await exchange({ grant_type: GRANT, ...params });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body as Issued;
    gw.credential(body.access_token);
    return body;
  };
  const refused = async (params: Record<string, string>, error: string, pattern: RegExp) => {
    const res = await exchange({ grant_type: GRANT, ...params });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.cacheControl, 'no-store');
    const body = res.body as Refused;
    assert.equal(body.error, error, body.error_description);
    assert.match(body.error_description, pattern);
    return body;
  };
  const fromA = <T extends Record<string, string | number>>(more: T) => ({
    subject_token: keys['agent-a'],
    subject_token_type: ACCESS,
    ...more,
  });
  const select = (password: string, database: string) =>
    psqlVia({ port, password, database, user: 'agent' }, ['-c', 'select count(*) from items'], {
      timeoutMs: 60_000,
    });
  const sessionOf = async (tokenId: string): Promise<SessionRow> => {
    for (let i = 0; i < 100; i++) {
      const res = await gw.api('GET', '/api/sessions?limit=500');
      assert.equal(res.status, 200, res.text);
      const s = (res.body as { sessions: SessionRow[] }).sessions.find((x) => x.token_id === tokenId);
      if (s) return s;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no session recorded for token ${tokenId}`);
  };
  const jtiOf = (token: string) => decodeJwt(token).jti as string;

  before(async () => {
    db = await createThrowawayDb();
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query('create table items (id int primary key)');
    await direct.query('insert into items select generate_series(1, 3)');
    await direct.end();
    gw = await startGateway('sqlite', {
      config: {
        connections: [pgConnection(db.name, 'shop'), pgConnection(db.name, 'books')],
        identity: { max_delegation_depth: 2 },
      },
    });
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    for (const name of Object.keys(keys) as Array<keyof typeof keys>) {
      const created = await gw.cli([
        'keys',
        'create',
        '--name',
        name,
        '--kind',
        name === 'agent-a' ? 'service' : 'agent',
        '--groups',
        'dev',
      ]);
      assert.equal(created.code, 0, created.stderr);
      keys[name] = gw.credential(created.stdout.trim());
    }
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
  });

  it('gives agent B (proving itself with its API key) a token for one connection, with sub = A and act = B', async () => {
    const res = await exchange({
      grant_type: GRANT,
      ...fromA({ actor_token: keys['agent-b'], actor_token_type: ACCESS, scope: 'shop', ttl: '10m' }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.cacheControl, 'no-store');
    const body = res.body as Issued;
    gw.credential(body.access_token);
    assert.equal(body.issued_token_type, JWT);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.scope, 'shop');
    assert.ok(body.expires_in > 500 && body.expires_in <= 600, `expires_in ${body.expires_in}`);
    const claims = decodeJwt(body.access_token);
    assert.equal(claims.sub, 'agent-a');
    assert.deepEqual(claims.act, { sub: 'agent-b' });
    assert.equal(claims.scope, 'shop');

    const me = await gw.api('GET', '/api/whoami', { token: body.access_token });
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(
      (({ subject, kind, root_subject, chain, roles }) => ({ subject, kind, root_subject, chain, roles }))(
        me.body as Record<string, unknown>,
      ),
      { subject: 'agent-b', kind: 'agent', root_subject: 'agent-a', chain: ['agent-b'], roles: ['user'] },
    );

    const ok = await select(body.access_token, 'shop');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), '3');
    const session = await sessionOf(claims.jti as string);
    assert.equal(session.subject, 'agent-b');
    assert.equal(session.root_subject, 'agent-a');
    assert.deepEqual(session.chain, ['agent-b']);
    assert.equal(session.connection, 'shop');

    const outside = await select(body.access_token, 'books');
    assert.notEqual(outside.code, 0, 'a connection outside the scope is refused');

    const audit = await gw.waitForAudit('token.exchanged', (r) => r.payload.jti === claims.jti);
    assert.equal(audit.actor.subject, 'agent-a');
    assert.deepEqual(
      (({ root, chain, holder, actor_verified, scope, parent_jti }) => ({
        root,
        chain,
        holder,
        actor_verified,
        scope,
        parent_jti,
      }))(audit.payload),
      {
        root: 'agent-a',
        chain: ['agent-b'],
        holder: 'agent-b',
        actor_verified: true,
        scope: ['shop'],
        parent_jti: null,
      },
    );
  });

  it('names a child that has no credential with the Warden-specific actor parameter (JSON body)', async () => {
    const res = await gw.api('POST', '/oauth/token', {
      token: null,
      body: { grant_type: GRANT, ...fromA({ actor: 'helper-7', scope: 'books', expires_in: 120 }) },
    });
    assert.equal(res.status, 200, res.text);
    const body = res.body as Issued;
    gw.credential(body.access_token);
    assert.ok(body.expires_in > 60 && body.expires_in <= 120);
    const claims = decodeJwt(body.access_token);
    assert.deepEqual([claims.sub, claims.act, claims.kind], ['agent-a', { sub: 'helper-7' }, 'agent']);
    await gw.waitForAudit(
      'token.exchanged',
      (r) => r.payload.jti === claims.jti && r.payload.actor_verified === false,
    );
  });

  it('refuses a child wider or longer-lived than its parent, and a chain deeper than max_delegation_depth', async () => {
    const b = await issued(fromA({ actor: 'helper-b', scope: 'shop', ttl: '10m' }));
    const asB = { subject_token: b.access_token, subject_token_type: JWT };
    await refused({ ...asB, actor: 'helper-c', scope: 'books' }, 'invalid_scope', /books.*wider/);
    await refused({ ...asB, actor: 'helper-c', scope: 'shop *' }, 'invalid_scope', /\*/);
    await refused({ ...asB, actor: 'helper-c', scope: 'sh*' }, 'invalid_scope', /sh\*/);
    await refused(
      { ...asB, actor: 'helper-c', ttl: '1h' },
      'invalid_request',
      /after the subject token expires/,
    );
    await refused({ ...asB, actor: 'helper-c', expires_in: '601' }, 'invalid_request', /at most \d+s/);
    await refused({ ...fromA({ actor: 'helper-b', ttl: '13h' }) }, 'invalid_request', /token_max_ttl/);
    await refused(fromA({ actor: 'agent-b' }), 'invalid_request', /name of an API key.*actor_token/);
    await gw.waitForAudit(
      'token.exchange_refused',
      (r) => r.actor.subject === 'helper-b' && r.payload.error === 'invalid_scope',
    );

    const c = await issued({ ...asB, actor: 'helper-c' });
    assert.equal(c.scope, 'shop', 'with no scope asked, the child gets its parent’s');
    await refused(
      { subject_token: c.access_token, subject_token_type: JWT, actor: 'helper-d' },
      'invalid_request',
      /max_delegation_depth is 2/,
    );
  });

  it('nests a three-level chain A → B → C as act {sub: C, act: {sub: B}} and records it on C’s session', async () => {
    const b = await issued(
      fromA({ actor_token: keys['agent-b'], actor_token_type: ACCESS, scope: 'shop books', ttl: '10m' }),
    );
    const c = await issued({
      subject_token: b.access_token,
      subject_token_type: JWT,
      actor_token: keys['agent-c'],
      actor_token_type: ACCESS,
      scope: 'shop',
      ttl: '5m',
    });
    const claims = decodeJwt(c.access_token);
    assert.equal(claims.sub, 'agent-a');
    assert.deepEqual(claims.act, { sub: 'agent-c', act: { sub: 'agent-b' } });

    const ok = await select(c.access_token, 'shop');
    assert.equal(ok.code, 0, ok.stderr);
    const session = await sessionOf(claims.jti as string);
    assert.deepEqual(
      [session.subject, session.root_subject, session.chain],
      ['agent-c', 'agent-a', ['agent-b', 'agent-c']],
    );

    const audit = await gw.waitForAudit('token.exchanged', (r) => r.payload.jti === claims.jti);
    assert.equal(audit.payload.parent_jti, jtiOf(b.access_token));
    assert.deepEqual(audit.actor.chain, ['agent-b']);
    assert.equal(audit.actor.root, 'agent-a');
  });

  it('revoking a parent (from the CLI, as the agent that delegated it) kills its descendants', async () => {
    const b = await issued(
      fromA({ actor_token: keys['agent-b'], actor_token_type: ACCESS, scope: 'shop', ttl: '10m' }),
    );
    const c = await issued({ subject_token: b.access_token, subject_token_type: JWT, actor: 'helper-c' });
    assert.equal((await select(c.access_token, 'shop')).code, 0);

    const listed = await gw.cli(['token', 'ls', '--json'], { token: b.access_token });
    assert.equal(listed.code, 0, listed.stderr);
    const mine = JSON.parse(listed.stdout) as TokenView[];
    assert.ok(mine.some((t) => t.jti === jtiOf(b.access_token) && t.subject === 'agent-b'));

    const revoked = await gw.cli(['token', 'revoke', jtiOf(b.access_token)], { token: keys['agent-a'] });
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`revoked 2 token\\(s\\).*${jtiOf(c.access_token)}`));

    await refused(
      { subject_token: c.access_token, subject_token_type: JWT, actor: 'helper-d' },
      'invalid_grant',
      /subject_token: token was revoked/,
    );
    const dead = await select(c.access_token, 'shop');
    assert.notEqual(dead.code, 0, 'a descendant of a revoked token no longer connects');
    const other = await gw.cli(['token', 'revoke', jtiOf(b.access_token)], { token: keys['agent-c'] });
    assert.notEqual(other.code, 0, 'an unrelated agent cannot revoke it');
  });

  it('`warden token delegate` exchanges WARDEN_TOKEN for a child token and prints it for an environment', async () => {
    const actorFile = join(gw.store.dataDir, 'agent-b.key');
    writeFileSync(actorFile, `${keys['agent-b']}\n`, { mode: 0o600 });
    const res = await gw.cli(
      [
        'token',
        'delegate',
        '--to',
        'agent-b',
        '--actor-token-file',
        actorFile,
        '--connections',
        'shop',
        '--ttl',
        '5m',
        '--env',
      ],
      { token: keys['agent-a'] },
    );
    assert.equal(res.code, 0, res.stderr);
    const m = /^WARDEN_TOKEN=(\S+)$/.exec(res.stdout.trim());
    assert.ok(m?.[1], res.stdout);
    const token = gw.credential(m[1]);
    assert.deepEqual(decodeJwt(token).act, { sub: 'agent-b' });
    const me = await gw.cli(['whoami', '--json'], { token });
    assert.equal(me.code, 0, me.stderr);
    assert.deepEqual((JSON.parse(me.stdout) as { chain: string[] }).chain, ['agent-b']);

    const wider = await gw.cli(['token', 'delegate', '--to', 'helper-c', '--connections', 'books'], {
      token,
    });
    assert.equal(wider.code, 1);
    assert.match(wider.stderr, /invalid_scope: scope books is wider/);
  });

  it('answers malformed requests with OAuth errors', async () => {
    await refused(
      { grant_type: 'client_credentials' } as Record<string, string>,
      'unsupported_grant_type',
      /token-exchange/,
    );
    await refused({ actor: 'x' }, 'invalid_request', /subject_token/);
    await refused(
      { subject_token: 'not-a-token', subject_token_type: JWT, actor: 'x' },
      'invalid_grant',
      /subject_token/,
    );
    await refused({ ...fromA({ actor: 'x' }), subject_token_type: JWT }, 'invalid_request', /access_token/);
    await refused(fromA({}), 'invalid_request', /name the delegate/);
    await refused(
      fromA({ actor: 'x', requested_token_type: ACCESS }),
      'invalid_request',
      /requested_token_type/,
    );
    await refused(fromA({ actor: 'x', audience: 'elsewhere' }), 'invalid_target', /audience/);
    await refused(
      fromA({ actor: 'x', resource: 'https://db.example/shop' }),
      'invalid_target',
      /^resource is not supported: name connections in scope$/,
    );
    await refused(
      fromA({ actor_token: keys['agent-b'], actor_token_type: ACCESS, actor: 'helper-x' }),
      'invalid_request',
      /^actor "helper-x" is not who the actor_token belongs to$/,
    );
    await refused(
      fromA({ actor: 'x', actor_token_type: ACCESS }),
      'invalid_request',
      /^actor_token_type without actor_token$/,
    );
    await refused(
      fromA({ actor_token: keys['agent-a'], actor_token_type: ACCESS }),
      'invalid_request',
      /^the delegate must not be agent-a itself$/,
    );
    await refused(
      fromA({ actor: 'bad name!' }),
      'invalid_request',
      /^actor must be 1-128 letters, digits or \. _ @ : -$/,
    );
    await refused(
      fromA({ actor: 'x', scope: Array.from({ length: 65 }, (_, i) => `shop${i}`).join(' ') }),
      'invalid_scope',
      /^at most 64 scope entries of 200 characters$/,
    );
    await refused(
      fromA({ actor: 'x', expires_in: '60', ttl: '1m' }),
      'invalid_request',
      /^give expires_in or ttl, not both$/,
    );
    await refused(
      fromA({ actor: 'x', expires_in: '1.5' }),
      'invalid_request',
      /^expires_in must be a whole number of seconds, at least 1$/,
    );
    const repeated = await fetch(`${gw.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=${encodeURIComponent(GRANT)}&scope=a&scope=b`,
    });
    assert.equal(repeated.status, 400);
    assert.equal(((await repeated.json()) as Refused).error, 'invalid_request');
    assert.deepEqual(await gw.leaks(), []);
  });
});
