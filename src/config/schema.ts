// The one schema for Warden's configuration. Every key has a default, so an empty file
// (or no file) runs everything embedded: SQLite store, generated keys, API on loopback.
import { z } from 'zod';
import { connectionFields } from './connection.js';
import { duration, durationAtLeast, limitDuration } from './duration.js';
import { ruleSet } from './rules.js';

/** A secret in the config file: inline (discouraged), from an environment variable, or from a file. */
export const secretSource = z.union([
  z.string().min(1),
  z.strictObject({ env: z.string().min(1) }),
  z.strictObject({ file: z.string().min(1) }),
]);
export type SecretSource = z.infer<typeof secretSource>;

const tlsFiles = z.strictObject({ cert: z.string().min(1), key: z.string().min(1) });

export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

const oidcIssuer = z
  .strictObject({
    issuer: z.url(),
    /** The `aud` a token must carry (one of, when a list). */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    groups_claim: z.string().min(1).default('groups'),
    subject_claim: z.string().min(1).default('sub'),
    /** Only asymmetric algorithms: HS* would let anyone holding the public key forge tokens. */
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).default(['RS256', 'ES256', 'EdDSA', 'PS256']),
    /** Kind of every identity from this issuer; by default a client-credentials token is a service, others human. */
    kind: z.enum(['human', 'service', 'agent']).optional(),
    /** Skip discovery and read keys from here. */
    jwks_uri: z.url().optional(),
    /** Least time between two JWKS fetches; a token with an unknown kid triggers a refetch after it. */
    jwks_refresh_cooldown: duration.prefault('30s'),
    /** A public client people sign in with (`warden login`); its id is published, so it holds no secret. */
    login: z
      .strictObject({
        client_id: z.string().min(1),
        scopes: z.string().min(1).default('openid profile email'),
        /**
         * RFC 8707 resource indicator: with it, Warden is given the access token minted for that
         * resource; without it, the ID token, whose audience is the client id.
         */
        resource: z.url().optional(),
      })
      .optional(),
  })
  .refine(
    (i) =>
      !i.login ||
      i.login.resource !== undefined ||
      (Array.isArray(i.audience) ? i.audience : [i.audience]).includes(i.login.client_id),
    {
      message:
        'login without a resource hands Warden the ID token, whose audience is the client id: add login.client_id to audience, or set login.resource',
      path: ['login'],
    },
  )
  .refine(
    (i) => !i.login || i.login.resource !== undefined || i.login.scopes.split(/\s+/).includes('openid'),
    {
      message:
        'login without a resource hands Warden the ID token, which only comes with the openid scope: add it to login.scopes',
      path: ['login', 'scopes'],
    },
  );
export type OidcIssuerConfig = z.infer<typeof oidcIssuer>;

const configConnection = z.strictObject({
  ...connectionFields,
  credentials: z
    .strictObject({ user: z.string().min(1).optional(), password: secretSource.optional() })
    .prefault({}),
});
export type ConfigConnection = z.infer<typeof configConnection>;

/** What a review notifier may be told of: `requested`, then `approval` (one of several), then the outcome. */
export const REVIEW_EVENTS = [
  'requested',
  'approval',
  'approved',
  'denied',
  'expired',
  'cancelled',
  'break_glass',
] as const;
export type ReviewEvent = (typeof REVIEW_EVENTS)[number];

const notifierFields = {
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
  events: z
    .array(z.enum(REVIEW_EVENTS))
    .min(1)
    .default([...REVIEW_EVENTS]),
  /** One HTTP request, from connecting to the end of the response headers. */
  timeout: durationAtLeast(100, '100ms').prefault('5s'),
  /** Network errors, 5xx and 429 are retried, waiting initial_backoff, then twice as long each time. */
  retry: z
    .strictObject({
      attempts: z.number().int().min(1).max(20).default(5),
      initial_backoff: durationAtLeast(1, '1ms').prefault('500ms'),
      max_backoff: durationAtLeast(1, '1ms').prefault('30s'),
    })
    .prefault({}),
};

const webhookNotifier = z
  .strictObject({
    kind: z.literal('webhook'),
    ...notifierFields,
    /** The HMAC key, read from this file or environment variable: never written in the config file. */
    secret_file: z.string().min(1).optional(),
    secret_env: z.string().min(1).optional(),
  })
  .refine((n) => (n.secret_file === undefined) !== (n.secret_env === undefined), {
    message:
      'a webhook needs exactly one of secret_file or secret_env (the key its deliveries are signed with)',
    path: ['secret_file'],
  });
export type WebhookNotifierConfig = z.infer<typeof webhookNotifier>;

const slackNotifier = z.strictObject({ kind: z.literal('slack'), ...notifierFields });
export type SlackNotifierConfig = z.infer<typeof slackNotifier>;
export type NotifierConfig = WebhookNotifierConfig | SlackNotifierConfig;

export const configSchema = z.strictObject({
  data_dir: z.string().min(1).default('./.warden'),
  log: z
    .strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info') })
    .prefault({}),
  api: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      /** Largest accepted request body in bytes. */
      body_limit: z
        .number()
        .int()
        .min(1024)
        .default(1024 * 1024),
      tls: tlsFiles.optional(),
    })
    .prefault({}),
  store: z
    .strictObject({
      /** postgres://… for PostgreSQL; omitted (or a file path) for the embedded SQLite store. */
      url: z
        .string()
        .min(1)
        .refine(
          (u) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(u) || /^(postgres|postgresql|sqlite|file):\/\//i.test(u),
          {
            message:
              'expected a postgres:// or postgresql:// URL, or a SQLite file path (plain, or sqlite:///path)',
          },
        )
        .optional(),
    })
    .prefault({}),
  keys: z
    .strictObject({
      /** The sealing key, never stored in the database. Default: <data_dir>/seal.key, generated. */
      seal_key_file: z.string().min(1).optional(),
      /** Ed25519 key signing Warden tokens and audit checkpoints. Default: <data_dir>/signing.key. */
      signing_key_file: z.string().min(1).optional(),
    })
    .prefault({}),
  identity: z
    .strictObject({
      /** `iss` of the tokens Warden mints. */
      issuer: z.string().min(1).default('warden'),
      token_ttl: durationAtLeast(1000, '1s').prefault('15m'),
      token_max_ttl: durationAtLeast(1000, '1s').prefault('12h'),
      clock_skew: duration.prefault('30s'),
      /**
       * How long what a login read is used again by the next ones: a credential's verification (API
       * key row, token signature and lineage) and the record of the connection it opens, so that
       * reconnecting clients skip those reads; `off` reads them every time. A change through this
       * gateway (a revocation, an edited connection) applies at once, one through another gateway
       * sharing the store within this time.
       */
      login_cache: limitDuration
        .prefault('1s')
        .pipe(
          z
            .number()
            .max(60_000, 'must be at most 60s (or off: no cache), so revocations elsewhere apply soon'),
        ),
      /** How many delegates a chain may hold (RFC 8693 token exchange, `POST /oauth/token`). */
      max_delegation_depth: z.number().int().min(1).max(32).default(5),
      oidc: z.array(oidcIssuer).default([]),
      roles: z
        .strictObject({
          admin: z.array(z.string().min(1)).default([]),
          auditor: z.array(z.string().min(1)).default([]),
          approver: z.array(z.string().min(1)).default([]),
        })
        .prefault({}),
    })
    .refine((i) => i.token_ttl <= i.token_max_ttl, {
      message: 'token_ttl must not be longer than token_max_ttl',
      path: ['token_ttl'],
    })
    .prefault({}),
  listeners: z
    .strictObject({
      /** Stock PostgreSQL clients connect here; the startup `database` names the connection. */
      postgres: z
        .strictObject({
          enabled: z.boolean().default(true),
          host: z.string().min(1).default('127.0.0.1'),
          /** 0 picks a free port (logged). */
          port: z.number().int().min(0).max(65535).default(15432),
          tls: tlsFiles.optional(),
          /**
           * Ask for the credential over a plaintext socket even on a non-loopback host (it is then
           * readable on the network). Loopback-only listeners always may.
           */
          allow_plaintext_password: z.boolean().default(false),
          /** A client that has not finished startup and authentication by then is dropped. */
          login_timeout: durationAtLeast(100, '100ms').prefault('60s'),
          /** Largest protocol message accepted from either side, in bytes. */
          max_message: z
            .number()
            .int()
            .min(64 * 1024)
            .default(64 * 1024 * 1024),
          /** Parked server connections of connections with `pool: session`. */
          pool: z
            .strictObject({
              /** Most idle server connections kept per connection (and startup parameters). */
              max_idle: z.number().int().min(1).default(20),
              /** An idle server connection unused for this long is closed. */
              idle_timeout: durationAtLeast(100, '100ms').prefault('5m'),
            })
            .prefault({}),
        })
        .prefault({}),
    })
    .prefault({}),
  connections: z.array(configConnection).default([]),
  /**
   * How long a session may live. A connection's own `sessions` overrides any of these; 0 or `off`
   * switches a limit off.
   */
  sessions: z
    .strictObject({
      /** No client message (and no statement running or held) for this long ends the session. */
      idle_timeout: limitDuration.prefault('1h'),
      /** A session this old ends, busy or not. */
      max_duration: limitDuration.prefault('12h'),
      /**
       * A session opened with a token minted in another session (`X-Warden-Session`) ends when
       * that parent session ends. Off: it goes on, flagged as an orphan.
       */
      end_with_parent: z.boolean().default(true),
      /** How often each gateway checks its live sessions against these limits and their parents. */
      check_interval: durationAtLeast(100, '100ms').prefault('1s'),
      /** How often each gateway tells the store it is alive. */
      gateway_heartbeat: durationAtLeast(100, '100ms').prefault('5s'),
      /**
       * A gateway silent for this long is taken for gone: another ends its sessions (status `lost`),
       * so their rows stop reading active and their child sessions are found orphaned.
       */
      gateway_timeout: durationAtLeast(300, '300ms').prefault('30s'),
    })
    .refine((s) => s.gateway_timeout >= 3 * s.gateway_heartbeat, {
      message: 'gateway_timeout must be at least three gateway_heartbeat intervals',
      path: ['gateway_timeout'],
    })
    .prefault({}),
  /** W3C trace context: what callers send is recorded on their sessions and continued to targets. */
  tracing: z
    .strictObject({
      /**
       * Append a sqlcommenter-style `/*traceparent='…'*\/` to every SQL statement of a session that
       * came with a trace, so the database's own logs join the trace. Off: it changes statement text.
       */
      sql_comments: z.boolean().default(false),
    })
    .prefault({}),
  policy: z
    .strictObject({
      /** What happens to a command no rule decides: `allow` (recorded either way) or `deny`. */
      default: z.enum(['allow', 'deny']).default('allow'),
      /** Rules from this file; `warden policy apply` adds a versioned set stored in the database. */
      rules: ruleSet.default([]),
      /** How soon a gateway sees rules another gateway on the same store applied. */
      refresh_interval: durationAtLeast(100, '100ms').prefault('2s'),
    })
    .prefault({}),
  audit: z
    .strictObject({
      checkpoint_every: z.number().int().min(1).default(1000),
      checkpoint_interval: durationAtLeast(1000, '1s').prefault('60s'),
    })
    .prefault({}),
  recording: z
    .strictObject({
      /** Result rows kept per recorded statement, masked exactly as the client got them; 0: none. */
      result_rows: z.number().int().min(0).max(10_000).default(100),
    })
    .prefault({}),
  reviews: z
    .strictObject({
      /** Base of the approve and deny links in notifications (`<console_url>/reviews/<id>?action=…`). */
      console_url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
      /** Where every review this gateway opens or changes is announced. */
      notify: z.array(z.discriminatedUnion('kind', [webhookNotifier, slackNotifier])).default([]),
    })
    .prefault({}),
  /** Just-in-time access to connections with `access: jit`. */
  access: z
    .strictObject({
      /**
       * Groups whose members may grant, deny and revoke access requests, besides everyone with the
       * approver role (admins included). Never the requester nor an agent acting for them.
       */
      approvers: z.array(z.string().min(1)).default([]),
      /** How long live sessions under a grant that expired or was revoked go on before they are ended. */
      grace: duration.prefault('30s'),
      /** The longest access anyone may ask for or be granted. */
      max_duration: durationAtLeast(1000, '1s').prefault('8h'),
      /** How often each gateway looks for grants that ran out or were revoked through another gateway. */
      poll_interval: durationAtLeast(100, '100ms').prefault('1s'),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
