// `warden connections test` for PostgreSQL: the login a session would make (TCP, TLS, startup,
// authentication with the stored secret), the server_version the server reports, then Terminate.
import type { ProbeTarget } from '../../gateway/connection-probe.js';
import { Front, message } from './codec.js';
import { connectTarget } from './target.js';

/** How long the server gets to close after Terminate. */
const CLOSE_WAIT_MS = 2000;

export async function probePostgres(t: ProbeTarget): Promise<{ serverVersion: string }> {
  const { target } = t.connection;
  const s = await connectTarget({
    host: target.host,
    port: target.port,
    database: target.database ?? t.connection.name,
    // A session without a stored user logs in as its client's; with no client, the usual superuser.
    user: t.credentials.user ?? 'postgres',
    password: t.credentials.password,
    tls: target.tls,
    params: { application_name: 'warden connection test' },
    connectTimeoutMs: t.timeoutMs,
  });
  s.socket.on('error', () => undefined); // the server may close first; nothing more is read
  s.socket.end(message(Front.Terminate));
  s.socket.resume(); // read to the server's close, so the socket is released
  // A server that never closes its side does not keep the socket.
  setTimeout(() => s.socket.destroy(), CLOSE_WAIT_MS).unref();
  // PostgreSQL reports server_version at every startup: no query needed.
  const version = new Map(s.parameters).get('server_version');
  if (!version) throw new Error(`${target.host}:${target.port} did not report a server_version`);
  return { serverVersion: version };
}
