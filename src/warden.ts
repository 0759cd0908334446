// The composition root: opens the store and keys named by the config, wires identity, audit
// and the API together, and returns a handle that closes them in the right order.

import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ApiContext } from './api/context.js';
import { Metrics } from './api/metrics.js';
import { buildApi } from './api/server.js';
import { Checkpointer } from './audit/checkpoints.js';
import { AuditLog } from './audit/log.js';
import { SYSTEM_ACTOR } from './audit/record.js';
import type { LoadedConfig } from './config/load.js';
import { Keyring, sealKeySource } from './crypto/seal.js';
import { writeSecretFile } from './crypto/secret-file.js';
import { loadSigningKey, type SigningKey } from './crypto/signing.js';
import { connectionProbe } from './gateway/connection-probe.js';
import { watchLiveSessions } from './gateway/live-session-watch.js';
import { LiveSessions } from './gateway/live-sessions.js';
import { ApiKeys } from './identity/api-keys.js';
import { Authenticator } from './identity/authenticate.js';
import { BUILTIN_ROLE_GROUPS } from './identity/identity.js';
import { OidcVerifier } from './identity/oidc.js';
import { WardenTokens } from './identity/warden-tokens.js';
import { loadAnalyzers } from './policy/analyze.js';
import { RulesInForce } from './policy/in-force.js';
import { preflight } from './preflight.js';
import { type PostgresListener, startPostgresListener } from './protocols/postgres/listener.js';
import { probePostgres } from './protocols/postgres/probe.js';
import { Recorder } from './recording/recorder.js';
import { AccessGrants } from './reviews/access-grants.js';
import { Approvals } from './reviews/approvals.js';
import { GrantedSessions } from './reviews/granted-sessions.js';
import { Notifications } from './reviews/notify.js';
import { PreapprovalDesk } from './reviews/preapproval-desk.js';
import { Connections } from './store/connections.js';
import { DisabledSubjects } from './store/disabled-subjects.js';
import { Gateways } from './store/gateways.js';
import { Grants } from './store/grants.js';
import { Meta } from './store/meta.js';
import { PolicyVersions } from './store/policy-versions.js';
import { Preapprovals } from './store/preapprovals.js';
import { Reviews } from './store/reviews.js';
import { SessionEvents } from './store/session-events.js';
import { Sessions } from './store/sessions.js';
import { Store } from './store/store.js';
import { TerminalRecordings } from './store/terminal-recordings.js';
import { loadTokenizeKey } from './store/tokenize-key.js';

export interface Warden {
  ctx: ApiContext;
  api: FastifyInstance;
  /** Base URL of the API once listening. */
  url: string;
  /** Where stock PostgreSQL clients connect, when that listener is enabled. */
  postgres: { host: string; port: number } | null;
  close(): Promise<void>;
}

export interface Runtime {
  dataDir: string;
  keyring: Keyring;
  store: Store;
}

/** Opens what every command that touches local state needs: data dir, seal keyring, store. */
export async function openRuntime(
  loaded: LoadedConfig,
  env: NodeJS.ProcessEnv,
  log?: Logger,
): Promise<Runtime> {
  const { config } = loaded;
  const dataDir = resolve(config.data_dir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const keyring = new Keyring(
    sealKeySource({ env, configuredFile: config.keys.seal_key_file, defaultFile: join(dataDir, 'seal.key') }),
  );
  const store = await Store.open({
    url: config.store.url,
    dataDir,
    onBackgroundError: (err) => log?.warn({ err: err.message }, 'store connection error'),
  });
  return { dataDir, keyring, store };
}

export async function startWarden(
  loaded: LoadedConfig,
  opts: { env: NodeJS.ProcessEnv; log: Logger },
): Promise<Warden> {
  const { config } = loaded;
  const { log, env } = opts;
  // Everything checkable without the store fails here, before anything is created or written.
  const { connections: entries, notifySecrets } = preflight(loaded, env);
  const { dataDir, keyring, store } = await openRuntime(loaded, env, log);
  let signingKey: SigningKey;
  let tokenizeKey: Buffer;
  try {
    signingKey = await loadSigningKey(
      config.keys.signing_key_file ? resolve(config.keys.signing_key_file) : join(dataDir, 'signing.key'),
      config.keys.signing_key_file === undefined,
    );
    await bindKeysToStore(store, keyring, signingKey);
    tokenizeKey = await loadTokenizeKey(new Meta(store), keyring);
  } catch (err) {
    await store.close();
    throw err;
  }
  const metrics = new Metrics();
  await loadAnalyzers();

  let checkpointer: Checkpointer | undefined;
  const spoolFile = join(dataDir, 'audit-spool.jsonl');
  const audit = new AuditLog(store, {
    spoolFile,
    onWritten: ({ count, lastSeq }) => {
      metrics.auditRecords.inc(count);
      checkpointer?.noteWritten(lastSeq);
    },
    onError: (err, queued) => log.warn({ err: err.message, queued }, 'audit write failed; retrying'),
  });
  checkpointer = new Checkpointer(store, signingKey, {
    every: config.audit.checkpoint_every,
    intervalMs: config.audit.checkpoint_interval,
    witnessFile: join(dataDir, 'audit-witness.json'),
    vouch: (from, to) => audit.vouches(from, to),
    onError: (err) => log.warn({ err: err.message }, 'audit checkpoint failed'),
  });

  const connections = new Connections(store, keyring, { recentMs: config.identity.login_cache });
  // Another gateway starting from the same config at the same moment may create a row between
  // this one's read and write; the second pass sees it and has nothing left to do.
  const synced = await connections
    .syncFromConfig(entries)
    .catch(() => new Promise((r) => setTimeout(r, 250)).then(() => connections.syncFromConfig(entries)));

  const apiKeys = new ApiKeys(store, config.identity.roles);
  const tokens = new WardenTokens(store, signingKey, config.identity);
  const disabledSubjects = new DisabledSubjects(store);
  const authenticator = new Authenticator(
    apiKeys,
    tokens,
    new OidcVerifier(config.identity.oidc, config.identity.clock_skew, config.identity.roles),
    disabledSubjects,
    { cacheTtlMs: config.identity.login_cache },
  );

  // Events a previous run could not write before it stopped go first, exactly once.
  const replayed = await audit.replaySpool();
  if (replayed > 0) log.info({ replayed }, 'wrote audit events spooled at the last shutdown');
  await audit.append({
    type: 'config.loaded',
    actor: SYSTEM_ACTOR,
    target: loaded.file ?? '(defaults)',
    outcome: 'info',
    payload: {
      store: store.dialect,
      oidc_issuers: config.identity.oidc.map((o) => o.issuer),
      connections: { total: entries.length, ...synced },
      seal_key: keyring.source.kind,
      signing_key_id: signingKey.kid,
    },
  });
  await bootstrapAdminKey(apiKeys, audit, dataDir, log);
  checkpointer.start();

  const policyVersions = new PolicyVersions(store);
  const policy = new RulesInForce(config.policy.rules, policyVersions, ({ version, shadowed }) => {
    log.info({ version }, 'policy rules loaded');
    if (shadowed.length > 0) {
      log.warn({ version, shadowed }, 'API rules ignored: the config file defines rules with the same names');
    }
  });
  await policy.refresh();
  policy.watch(config.policy.refresh_interval, (err) =>
    log.warn({ err: err.message }, 'policy refresh failed; the rules in force stay'),
  );

  const live = new LiveSessions();
  const grants = new Grants(store);
  const access = new AccessGrants(grants, connections, audit, {
    approvers: config.access.approvers,
    onError: (err) => log.warn({ err: err.message }, 'a grant-end listener failed'),
  });
  const grantedSessions = new GrantedSessions(access, grants, live, audit, {
    graceMs: config.access.grace,
    pollMs: config.access.poll_interval,
    onError: (err) => log.warn({ err: err.message }, 'cannot check access grants in the store'),
  });
  grantedSessions.start();
  const reviews = new Reviews(store);
  const preapprovals = new Preapprovals(store);
  const preapprovalDesk = new PreapprovalDesk(preapprovals, reviews, audit);
  const approvals = new Approvals(reviews, preapprovalDesk, audit, {
    onError: (err) => log.warn({ err: err.message }, 'cannot read review decisions from the store'),
    onAlert: (r) =>
      log.error(
        { review: r.id, requester: r.requester.subject, connection: r.connection, reason: r.reason },
        'break-glass: a command ran before anyone approved it; approvers must review it after the fact',
      ),
  });
  let lastNotifyDropLog = 0;
  const notifications = new Notifications(
    config.reviews.notify,
    notifySecrets,
    config.reviews.console_url,
    audit,
    {
      onOutcome: (o) => {
        metrics.reviewNotifications.inc({ kind: o.kind, outcome: o.outcome });
        metrics.reviewNotificationAttempts.inc({ kind: o.kind }, o.attempts);
        // The receiver's host only: a Slack webhook URL is itself a credential.
        const about = { notifier: o.kind, host: o.host, review: o.review, event: o.event };
        if (o.outcome === 'failed') {
          log.warn({ ...about, attempts: o.attempts, err: o.error }, 'review notification failed');
        } else if (o.outcome === 'dropped') {
          // Thousands may go at once (a receiver down for long): one line a second says enough.
          if (Date.now() - lastNotifyDropLog < 1000) return;
          lastNotifyDropLog = Date.now();
          log.warn({ ...about, err: o.error }, 'review notifications dropped unsent');
        } else if (o.attempts > 1) {
          log.info({ ...about, attempts: o.attempts }, 'review notification sent after retries');
        }
      },
    },
  );
  if (config.reviews.notify.length > 0) approvals.onChange((r) => notifications.notify(r));
  const sessionEvents = new SessionEvents(store);
  let lastDropLog = 0;
  const recorder = new Recorder(sessionEvents, {
    terminals: new TerminalRecordings(store),
    onError: (err, queued) => {
      metrics.recorderWriteFailures.inc();
      log.warn({ err: err.message, queued }, 'session recording write failed; retrying');
    },
    // Loud but not once per event: new sessions are refused meanwhile (Session.open checks `healthy`).
    onDropped: (dropped) => {
      metrics.recorderDropped.inc();
      if (Date.now() - lastDropLog < 1000) return;
      lastDropLog = Date.now();
      log.error(
        { dropped },
        'session recording queue is full: statement events or terminal output dropped, new sessions refused',
      );
    },
  });
  const ctx: ApiContext = {
    live,
    config,
    store,
    audit,
    checkpointer,
    keyring,
    signingKey,
    connections,
    probeConnection: connectionProbe(connections, { postgres: probePostgres }),
    policy,
    policyVersions,
    tokenizeKey,
    sessions: new Sessions(store),
    sessionEvents,
    reviews,
    preapprovals,
    preapprovalDesk,
    approvals,
    grants,
    access,
    recorder,
    apiKeys,
    tokens,
    authenticator,
    disabledSubjects,
    metrics,
    log,
  };
  const watches = watchLiveSessions({
    live,
    sessions: ctx.sessions,
    audit,
    apiKeys,
    tokens,
    disabledSubjects,
    gateways: new Gateways(store),
    intervals: {
      lifetimeMs: config.sessions.check_interval,
      heartbeatMs: config.sessions.gateway_heartbeat,
      gatewayTimeoutMs: config.sessions.gateway_timeout,
    },
    warn: (err, what) => log.warn({ err: err.message }, what),
  });
  let postgres: PostgresListener | null = null;
  if (config.listeners.postgres.enabled) {
    postgres = await startPostgresListener({
      config,
      authenticator,
      connections,
      audit,
      log,
      live,
      access: { grants: access, sessions: grantedSessions },
      session: {
        policy,
        audit,
        sessions: ctx.sessions,
        tokenizeKey,
        policyDefault: config.policy.default,
        recorder,
        resultRows: config.recording.result_rows,
        approvals,
        gatewayId: watches.gatewayId,
      },
    });
    log.info({ host: postgres.host, port: postgres.port }, 'postgres listening');
  }
  const api = await buildApi(ctx);
  const url = await api.listen({ host: config.api.host, port: config.api.port });
  log.info({ url, store: store.dialect, data_dir: dataDir }, 'api listening');
  audit.record({
    type: 'gateway.started',
    actor: SYSTEM_ACTOR,
    target: url,
    outcome: 'info',
    payload: { pid: process.pid, gateway: watches.gatewayId },
  });

  return {
    ctx,
    api,
    url,
    postgres: postgres ? { host: postgres.host, port: postgres.port } : null,
    async close() {
      policy.stop();
      await watches.stop();
      grantedSessions.stop();
      await postgres?.close();
      await approvals.stop();
      await api.close();
      // After approvals.stop(): the reviews it cancels are announced too.
      await notifications.close(2_000);
      const lost = await recorder.close(5_000);
      if (lost > 0) log.error({ lost }, 'store unreachable at shutdown: statement events not recorded');
      audit.record({
        type: 'gateway.stopped',
        actor: SYSTEM_ACTOR,
        target: url,
        outcome: 'info',
        payload: {},
      });
      checkpointer.stop();
      const { spooled } = await audit.close(5_000);
      if (spooled > 0) {
        log.warn(
          { spooled, file: spoolFile },
          'store unreachable at shutdown: audit events kept for the next start',
        );
      }
      // Sign the final tail so nothing written before shutdown can be cut off unseen.
      await checkpointer
        .checkpoint()
        .catch((err: Error) => log.warn({ err: err.message }, 'final checkpoint failed'));
      await checkpointer.idle();
      await store.close();
    },
  };
}

/** warden_meta keys recording which keys the store's secrets and signatures belong to. */
export const SEAL_KEY_META = 'seal_key_id';
export const SIGNING_KEY_META = 'signing_key_id';

/**
 * Every gateway sharing a store must hold the same keys: secrets sealed by one must open on
 * another, and tokens and checkpoints signed by one must verify on another. The first gateway
 * records its key ids in the store; any other with different keys refuses to start.
 */
async function bindKeysToStore(store: Store, keyring: Keyring, signingKey: SigningKey): Promise<void> {
  const meta = new Meta(store);
  const sealId = await meta.claim(SEAL_KEY_META, keyring.currentId);
  if (!keyring.has(sealId)) {
    throw new KeyMismatchError(
      `the store's secrets are sealed under key ${sealId}, but this gateway's seal key is ${keyring.currentId}: ` +
        'every gateway sharing a store needs the same keys.seal_key_file (or WARDEN_SEAL_KEY)',
    );
  }
  const kid = await meta.claim(SIGNING_KEY_META, signingKey.kid);
  if (kid !== signingKey.kid) {
    throw new KeyMismatchError(
      `the store's tokens and audit checkpoints are signed by key ${kid}, but this gateway's signing key is ` +
        `${signingKey.kid}: every gateway sharing a store needs the same keys.signing_key_file`,
    );
  }
}

export class KeyMismatchError extends Error {
  override name = 'KeyMismatchError';
}

/**
 * On a store with no API keys, creates one admin key and writes it to a 0600 file in the
 * data directory (never to the log), so a fresh install can be administered.
 */
async function bootstrapAdminKey(
  apiKeys: ApiKeys,
  audit: AuditLog,
  dataDir: string,
  log: Logger,
): Promise<void> {
  const file = join(dataDir, 'admin.key');
  if ((await apiKeys.list({ includeRevoked: true })).length > 0) return;
  let created: Awaited<ReturnType<ApiKeys['create']>>;
  try {
    created = await apiKeys.create({
      name: 'bootstrap-admin',
      kind: 'service',
      groups: [BUILTIN_ROLE_GROUPS.admin],
      createdBy: 'warden',
      expiresAt: null,
    });
  } catch {
    return; // another gateway sharing the store created it first
  }
  if (existsSync(file)) log.warn({ file }, 'replacing a stale bootstrap admin key file');
  writeSecretFile(file, `${created.key}\n`);
  await audit.append({
    type: 'key.created',
    actor: SYSTEM_ACTOR,
    target: `api_key:${created.view.id}`,
    outcome: 'success',
    payload: {
      name: created.view.name,
      kind: created.view.kind,
      groups: created.view.groups,
      bootstrap: true,
    },
  });
  log.info({ file }, 'created the bootstrap admin API key; it is in this file (mode 0600)');
}
