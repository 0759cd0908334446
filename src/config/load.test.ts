import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../testing/warden-process.js';
import { ConfigError, loadConfig } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('configuration', () => {
  it('runs on embedded defaults without a file', () => {
    const { config, file: f } = loadConfig(undefined, {});
    assert.equal(f, undefined);
    assert.equal(config.data_dir, './.warden');
    assert.deepEqual([config.api.host, config.api.port], ['127.0.0.1', 8080]);
    assert.equal(config.store.url, undefined);
    assert.equal(config.identity.token_ttl, 15 * 60_000);
    assert.equal(config.audit.checkpoint_interval, 60_000);
  });

  it('reads durations and applies WARDEN_* overrides over the file', () => {
    const f = file(
      'ok.yaml',
      'api:\n  port: 9000\nidentity:\n  token_ttl: 5m\naudit:\n  checkpoint_interval: 90s\n',
    );
    const { config } = loadConfig(f, { WARDEN_API_PORT: '9100', WARDEN_DATA_DIR: '/var/lib/warden' });
    assert.equal(config.api.port, 9100);
    assert.equal(config.data_dir, '/var/lib/warden');
    assert.equal(config.identity.token_ttl, 300_000);
    assert.equal(config.audit.checkpoint_interval, 90_000);
  });

  it('fills duration defaults in milliseconds when a section is only partly written', () => {
    const f = file(
      'partial.yaml',
      'identity:\n  roles: { admin: [platform] }\n  oidc:\n    - { issuer: "https://login.example.com", audience: warden }\naudit:\n  checkpoint_every: 10\n',
    );
    const { config } = loadConfig(f, {});
    assert.equal(config.identity.token_ttl, 15 * 60_000);
    assert.equal(config.identity.token_max_ttl, 12 * 3_600_000);
    assert.equal(config.identity.clock_skew, 30_000);
    assert.equal(config.identity.login_cache, 1_000);
    for (const [text, ms] of [
      ['off', 0],
      ['0', 0],
      ['250ms', 250],
      ['1m', 60_000],
    ] as const) {
      const f2 = file('login-cache.yaml', `identity:\n  login_cache: ${text}\n`);
      assert.equal(loadConfig(f2, {}).config.identity.login_cache, ms, text);
    }
    assert.equal(config.identity.oidc[0]?.jwks_refresh_cooldown, 30_000);
    assert.equal(config.audit.checkpoint_interval, 60_000);
  });

  it('reads session limits: defaults, `off` or 0 to switch one off, and per-connection overrides', () => {
    const defaults = loadConfig(undefined, {}).config.sessions;
    assert.deepEqual(defaults, {
      idle_timeout: 3_600_000,
      max_duration: 12 * 3_600_000,
      end_with_parent: true,
      check_interval: 1000,
      gateway_heartbeat: 5000,
      gateway_timeout: 30_000,
    });
    const f = file(
      'sessions.yaml',
      [
        'sessions: { idle_timeout: "off", max_duration: 0, end_with_parent: false }',
        'connections:',
        '  - name: orders',
        '    protocol: postgres',
        '    target: { host: db, port: 5432 }',
        '    sessions: { idle_timeout: 15m, max_duration: "off" }',
        '',
      ].join('\n'),
    );
    const { config } = loadConfig(f, {});
    assert.deepEqual([config.sessions.idle_timeout, config.sessions.max_duration], [0, 0]);
    assert.equal(config.sessions.end_with_parent, false);
    assert.deepEqual(config.connections[0]?.sessions, { idle_timeout: 900_000, max_duration: 0 });
    assert.throws(
      () =>
        loadConfig(
          file('fast-timeout.yaml', 'sessions: { gateway_heartbeat: 10s, gateway_timeout: 20s }\n'),
          {},
        ),
      /gateway_timeout must be at least three gateway_heartbeat intervals/,
    );
    assert.throws(
      () => loadConfig(file('bad-sessions.yaml', 'sessions:\n  idle_timeout: forever\n'), {}),
      /sessions\.idle_timeout: .*expected a duration/,
    );
  });

  it('refuses values that would misbehave at run time', () => {
    const cases: Array<[string, RegExp]> = [
      [
        'store:\n  url: "postgress://warden@db/warden"\n',
        /store\.url: expected a postgres:\/\/ or postgresql:\/\/ URL/,
      ],
      ['store:\n  url: "mysql://root@db/warden"\n', /store\.url: expected a postgres/],
      ['audit:\n  checkpoint_interval: 0\n', /audit\.checkpoint_interval: must be at least 1s/],
      ['identity:\n  token_ttl: 0s\n', /identity\.token_ttl: must be at least 1s/],
      [
        'identity:\n  token_ttl: 2h\n  token_max_ttl: 1h\n',
        /identity\.token_ttl: token_ttl must not be longer than token_max_ttl/,
      ],
      ['identity:\n  login_cache: 5m\n', /identity\.login_cache: must be at most 60s/],
    ];
    for (const [text, expected] of cases) {
      assert.throws(() => loadConfig(file('runtime.yaml', text), {}), expected, text);
    }
    for (const ok of ['/var/lib/warden/w.db', 'sqlite:///var/lib/warden/w.db', 'postgresql://w@db/w']) {
      assert.equal(loadConfig(file('ok-store.yaml', `store:\n  url: "${ok}"\n`), {}).config.store.url, ok);
    }
  });

  it('reads policy rules and names the path of a bad one', () => {
    const good = file(
      'policy.yaml',
      [
        'policy:',
        '  default: allow',
        '  rules:',
        '    - name: no-drop',
        '      match: { tags: [prod] }',
        '      when: { sql: { statements: [drop, truncate] } }',
        '      effect: deny',
        '      message: Dropping objects in production needs a change request.',
        '    - name: review-unbounded-writes',
        '      when: { sql: { statements: [update, delete], where: absent } }',
        '      effect: review',
        '      review: { approvers: [dba], approvals: 1, hold: 5m }',
        '',
      ].join('\n'),
    );
    const { config } = loadConfig(good, {});
    assert.deepEqual(
      config.policy.rules.map((r) => [r.name, r.effect]),
      [
        ['no-drop', 'deny'],
        ['review-unbounded-writes', 'review'],
      ],
    );
    const bad = file(
      'policy-bad.yaml',
      'policy:\n  rules:\n    - name: x\n      effect: deny\n      when: { sql: { statment: [drop] } }\n',
    );
    assert.throws(() => loadConfig(bad, {}), /policy\.rules\[0\]\.when\.sql: unknown key "statment"/);
  });

  it('names the file, line, key path and what was expected for a bad value', () => {
    const f = file('bad.yaml', 'api:\n  host: 0.0.0.0\n  port: "eighty"\n');
    assert.throws(
      () => loadConfig(f, {}),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(
          err.message,
          new RegExp(`${f.replaceAll('/', '\\/')}:3:9: api\\.port: .*expected number`),
        );
        return true;
      },
    );
  });

  it('rejects unknown keys and bad enum values with the accepted values', () => {
    const f = file('unknown.yaml', 'apii:\n  port: 1\nlog:\n  level: loud\n');
    assert.throws(
      () => loadConfig(f, {}),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /unknown key "apii"/);
        assert.match(
          err.message,
          /log\.level: expected one of "trace", "debug", "info", "warn", "error", "silent"/,
        );
        return true;
      },
    );
  });

  it('reads an OIDC login client and refuses one whose ID token Warden would not accept', () => {
    const ok = file(
      'login.yaml',
      'identity:\n  oidc:\n    - issuer: "https://login.example.com"\n      audience: [warden, warden-cli]\n      login: { client_id: warden-cli }\n',
    );
    assert.deepEqual(loadConfig(ok, {}).config.identity.oidc[0]?.login, {
      client_id: 'warden-cli',
      scopes: 'openid profile email',
    });
    const bad = file(
      'login-bad.yaml',
      'identity:\n  oidc:\n    - issuer: "https://login.example.com"\n      audience: warden\n      login: { client_id: warden-cli }\n',
    );
    assert.throws(
      () => loadConfig(bad, {}),
      /identity\.oidc\[0\]\.login: login without a resource hands Warden the ID token, whose audience is the client id: add login\.client_id to audience, or set login\.resource/,
    );
    const noOpenid = file(
      'login-scopes.yaml',
      'identity:\n  oidc:\n    - issuer: "https://login.example.com"\n      audience: [warden, warden-cli]\n      login: { client_id: warden-cli, scopes: "profile email" }\n',
    );
    assert.throws(
      () => loadConfig(noOpenid, {}),
      /identity\.oidc\[0\]\.login\.scopes: .*add it to login\.scopes/,
    );
  });

  it('names the environment variable when an override is wrong', () => {
    assert.throws(
      () => loadConfig(undefined, { WARDEN_API_PORT: 'abc' }),
      /WARDEN_API_PORT: api\.port: expected a number/,
    );
    assert.throws(
      () => loadConfig(undefined, { WARDEN_API_PORT: '70000' }),
      /WARDEN_API_PORT: api\.port: .*65535/,
    );
  });

  it('validates connection names as DNS labels and refuses duplicates', () => {
    const base = 'protocol: postgres\n    target: { host: db, port: 5432 }\n';
    const bad = file('name.yaml', `connections:\n  - name: Orders_DB\n    ${base}`);
    assert.throws(() => loadConfig(bad, {}), /connections\[0\]\.name: expected a DNS-label-like name/);
    const dup = file('dup.yaml', `connections:\n  - name: orders\n    ${base}  - name: orders\n    ${base}`);
    assert.throws(() => loadConfig(dup, {}), /duplicate connection name "orders"/);
  });

  it('reads review notifiers with their defaults and refuses a webhook whose secret is in the file', () => {
    assert.deepEqual(loadConfig(undefined, {}).config.reviews, { notify: [] });
    const ok = file(
      'notify.yaml',
      [
        'reviews:',
        '  console_url: https://warden.example.com',
        '  notify:',
        '    - { kind: webhook, url: https://hooks.example.com/warden, secret_env: HOOK_KEY, events: [requested] }',
        '    - { kind: slack, url: https://hooks.slack.com/services/T/B/x, retry: { attempts: 2 } }',
        '',
      ].join('\n'),
    );
    const [hook, slack] = loadConfig(ok, {}).config.reviews.notify;
    assert.deepEqual(hook?.events, ['requested']);
    assert.deepEqual(
      [hook?.timeout, hook?.retry],
      [5_000, { attempts: 5, initial_backoff: 500, max_backoff: 30_000 }],
    );
    assert.deepEqual(slack?.events, [
      'requested',
      'approval',
      'approved',
      'denied',
      'expired',
      'cancelled',
      'break_glass',
    ]);
    assert.equal(slack?.retry.attempts, 2);

    const inline = file(
      'inline-secret.yaml',
      'reviews:\n  notify:\n    - { kind: webhook, url: https://h.example.com/, secret: hunter2 }\n',
    );
    assert.throws(() => loadConfig(inline, {}), /unknown key "secret"/);
    assert.throws(() => loadConfig(inline, {}), /exactly one of secret_file or secret_env/);
    const ftp = file('ftp.yaml', 'reviews:\n  notify:\n    - { kind: slack, url: "ftp://h.example.com/" }\n');
    assert.throws(
      () => loadConfig(ftp, {}),
      /reviews\.notify\[0\]\.url: expected an http:\/\/ or https:\/\/ URL/,
    );
  });

  it('reports YAML syntax errors with their position', () => {
    const f = file('syntax.yaml', 'api:\n  port: [1, 2\n');
    assert.throws(() => loadConfig(f, {}), new RegExp(`${f.replaceAll('/', '\\/')}:\\d+:\\d+`));
  });

  it('`warden config check` reports problems and exits non-zero without starting', async () => {
    const f = file('check.yaml', 'api:\n  port: -1\n');
    const bad = await runCli(['config', 'check', '--config', f]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid configuration:/);
    assert.match(bad.stderr, /api\.port/);
    const good = await runCli(['config', 'check', '--config', file('fine.yaml', 'api:\n  port: 9999\n')]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /^OK: .*api 127\.0\.0\.1:9999, store sqlite/);
  });

  it('`config check` also catches what only shows when starting: secrets, TLS files, key files', async () => {
    const f = file(
      'preflight.yaml',
      [
        'api:',
        '  tls: { cert: /nonexistent/tls.crt, key: /nonexistent/tls.key }',
        'keys:',
        '  seal_key_file: /nonexistent/seal.key',
        'connections:',
        '  - name: orders',
        '    protocol: postgres',
        '    target: { host: db, port: 5432 }',
        '    credentials: { user: app, password: { env: WARDEN_TEST_UNSET_PW } }',
        'reviews:',
        '  notify:',
        '    - { kind: webhook, url: https://h.example.com/, secret_file: /nonexistent/webhook.secret }',
        '',
      ].join('\n'),
    );
    const res = await runCli(['config', 'check', '--config', f], { env: { WARDEN_TEST_UNSET_PW: '' } });
    assert.equal(res.code, 2, res.stdout);
    assert.match(
      res.stderr,
      /WARDEN_TEST_UNSET_PW: connections\[0\]\.credentials\.password: environment variable WARDEN_TEST_UNSET_PW is not set/,
    );
    assert.match(res.stderr, /api\.tls\.cert: cannot read \/nonexistent\/tls\.crt/);
    assert.match(res.stderr, /api\.tls\.key: cannot read \/nonexistent\/tls\.key/);
    assert.match(res.stderr, /keys\.seal_key_file: \/nonexistent\/seal\.key does not exist/);
    assert.match(res.stderr, /reviews\.notify\[0\]\.secret_file: cannot read secret file/);

    const served = await runCli(['serve', '--config', f], { env: { WARDEN_TEST_UNSET_PW: '' } });
    assert.equal(served.code, 2, 'serve refuses the same config the same way');
    assert.equal(served.stderr, res.stderr);
  });

  it('`warden serve` refuses to start on a bad config, naming the problem', async () => {
    const f = file('serve.yaml', `data_dir: ${join(dir, 'never')}\nidentity:\n  token_ttl: soon\n`);
    const res = await runCli(['serve', '--config', f]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /serve\.yaml:3:\d+: identity\.token_ttl: expected a duration like "30s"/);
    assert.ok(!existsSync(join(dir, 'never')), 'nothing was created');
  });
});
