// The shape of a connection (a target Warden reaches on behalf of callers), shared by the
// config file and the API so both validate names, targets and TLS settings the same way.
import { z } from 'zod';
import { limitDuration } from './duration.js';

export const PROTOCOLS = ['postgres', 'mysql', 'ssh', 'kubernetes', 'http'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const TLS_MODES = ['disable', 'require', 'verify-full'] as const;

/** DNS-label-like: lowercase letters, digits and inner hyphens, 1 to 63 characters. */
export const connectionName = z
  .string()
  .regex(
    /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    'expected a DNS-label-like name: lowercase letters, digits and inner hyphens, at most 63 characters',
  );

export const targetTls = z.strictObject({
  mode: z.enum(TLS_MODES).default('disable'),
  /** PEM text or a path to a PEM file with the CA bundle used for verify-full. */
  ca: z.string().optional(),
  server_name: z.string().optional(),
});
export type TargetTls = z.infer<typeof targetTls>;

export const target = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  database: z.string().min(1).optional(),
  /** `tls: verify-full` is shorthand for `tls: { mode: verify-full }`. */
  tls: z
    .union([z.enum(TLS_MODES).transform((mode): TargetTls => ({ mode })), targetTls])
    .default({ mode: 'disable' }),
});
export type Target = z.infer<typeof target>;

const tag = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.:-]{0,62}$/, 'expected a tag of lowercase letters, digits, _ . : -');

/** A connection's own session limits; a key left out follows the global `sessions` config. */
export const sessionOverrides = z.strictObject({
  idle_timeout: limitDuration.optional(),
  max_duration: limitDuration.optional(),
  end_with_parent: z.boolean().optional(),
});
/** Limits in milliseconds (0: off), as stored. */
export type SessionOverrides = z.infer<typeof sessionOverrides>;

/** Everything about a connection except its secret. */
export const connectionFields = {
  name: connectionName,
  protocol: z.enum(PROTOCOLS),
  target,
  access: z.enum(['open', 'jit']).default('open'),
  /** What happens to a command no rule decides here; omitted: the global `policy.default`. */
  policy_default: z.enum(['allow', 'deny']).optional(),
  /**
   * `session`: a server connection a client leaves idle is reset (DISCARD ALL) and reused by the
   * next session instead of logging in again (PostgreSQL only). `none`: one per session.
   */
  pool: z.enum(['none', 'session']).default('none'),
  /** Overrides of the global `sessions` limits for sessions on this connection. */
  sessions: sessionOverrides.optional(),
  tags: z.array(tag).default([]),
  description: z.string().max(1000).default(''),
};

/** As sent to the API: the password travels once, in the request body, and is sealed on arrival. */
export const connectionInput = z.strictObject({
  ...connectionFields,
  credentials: z
    .strictObject({ user: z.string().min(1).optional(), password: z.string().min(1).optional() })
    .default({}),
});
export type ConnectionInput = z.infer<typeof connectionInput>;

/** As patched through the API: every field optional; `password: null` removes the secret. */
export const connectionPatch = z.strictObject({
  protocol: z.enum(PROTOCOLS).optional(),
  target: target.optional(),
  access: z.enum(['open', 'jit']).optional(),
  /** `null`: back to the global `policy.default`. */
  policy_default: z.enum(['allow', 'deny']).nullable().optional(),
  pool: z.enum(['none', 'session']).optional(),
  /** Replaces the connection's session limit overrides; `null`: the global `sessions` limits. */
  sessions: sessionOverrides.nullable().optional(),
  tags: z.array(tag).optional(),
  description: z.string().max(1000).optional(),
  credentials: z
    .strictObject({
      user: z.string().min(1).nullable().optional(),
      password: z.string().min(1).nullable().optional(),
    })
    .optional(),
});
export type ConnectionPatch = z.infer<typeof connectionPatch>;

/** The target as the API shows it (no input shorthands, so responses can be serialized). */
const targetView = z.object({
  host: z.string(),
  port: z.number().int(),
  database: z.string().optional(),
  tls: z.object({ mode: z.enum(TLS_MODES), ca: z.string().optional(), server_name: z.string().optional() }),
});

/** As shown by the API and CLI: never the secret, only whether one is held. */
export const connectionView = z.object({
  name: z.string(),
  protocol: z.enum(PROTOCOLS),
  target: targetView,
  access: z.enum(['open', 'jit']),
  policy_default: z.enum(['allow', 'deny']).nullable(),
  pool: z.enum(['none', 'session']),
  /** Overrides of the global `sessions` limits ("90s", "12h", `off`); null: none. */
  sessions: z
    .object({
      idle_timeout: z.string().optional(),
      max_duration: z.string().optional(),
      end_with_parent: z.boolean().optional(),
    })
    .nullable(),
  tags: z.array(z.string()),
  description: z.string(),
  credentials: z.object({ user: z.string().nullable(), has_password: z.boolean() }),
  source: z.enum(['api', 'config']),
  created_at: z.string(),
  updated_at: z.string(),
});
export type ConnectionView = z.infer<typeof connectionView>;
