// Reaching a connection's target as a session would, on an admin's request: the protocol's probe
// logs in with the stored credentials; this says how long it took, or what failed, never the secret.
import type { ConnectionView, Protocol } from '../config/connection.js';
import type { Connections } from '../store/connections.js';

/** What a protocol's probe is given: the connection, its credentials in clear, and its time limit. */
export interface ProbeTarget {
  connection: ConnectionView;
  credentials: { user: string | null; password: string | null };
  timeoutMs: number;
}

/** Connects, logs in and leaves; throws an Error whose message says what went wrong. */
export type Probe = (target: ProbeTarget) => Promise<{ serverVersion: string }>;

export type ProbeResult =
  | { ok: true; latency_ms: number; server_version: string }
  | { ok: false; latency_ms: number; error: string };

/** Tests a connection; a target failure is a result, not an exception. */
export type ConnectionProbe = (connection: ConnectionView) => Promise<ProbeResult>;

const DEFAULT_TIMEOUT_MS = 10_000;

/** A probe for every protocol in `probes`; the others answer that they cannot be tested yet. */
export function connectionProbe(
  connections: Connections,
  probes: Partial<Record<Protocol, Probe>>,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): ConnectionProbe {
  return async (connection) => {
    const probe = probes[connection.protocol];
    if (!probe) {
      return { ok: false, latency_ms: 0, error: `Warden cannot test ${connection.protocol} connections yet` };
    }
    const started = performance.now();
    const latency = () => Math.round(performance.now() - started);
    let timer: NodeJS.Timeout | undefined;
    // The probe has its own limit; this one holds even for a probe that forgets it.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer from the target within ${timeoutMs} ms`)),
        timeoutMs + 1000,
      );
    });
    let password: string | null = null;
    try {
      // Inside: a secret that cannot be unsealed is a failed test, reported and audited like one.
      const credentials = await connections.credentials(connection.name);
      password = credentials.password;
      const { serverVersion } = await Promise.race([probe({ connection, credentials, timeoutMs }), deadline]);
      return { ok: true, latency_ms: latency(), server_version: serverVersion };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, latency_ms: latency(), error: withoutSecret(message, password) };
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Probes never put the password in a message; should a server echo it back, it stops here. */
function withoutSecret(message: string, secret: string | null): string {
  return secret ? message.split(secret).join('[secret]') : message;
}
