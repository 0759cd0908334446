// A pg client session through a Warden PostgreSQL listener, as tests of live-session control use it:
// its Warden session id (read on the target) and the error Warden ends it with, if it does.
import pg from 'pg';

export interface PgSession {
  c: pg.Client;
  /** The Warden session id, from `current_setting('warden.session')`. */
  id: string;
  /** Resolves with the error the session ends with (a FATAL from Warden, a lost connection). */
  ended: Promise<pg.DatabaseError>;
}

export async function openPgSession(
  port: number,
  password: string,
  opts: { database?: string; options?: string; applicationName?: string } = {},
): Promise<PgSession> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port,
    database: opts.database ?? 'shop',
    user: 'x',
    password,
    ...(opts.options ? { options: opts.options } : {}),
    ...(opts.applicationName ? { application_name: opts.applicationName } : {}),
  });
  const ended = new Promise<pg.DatabaseError>((resolve) =>
    c.on('error', (e) => resolve(e as pg.DatabaseError)),
  );
  await c.connect();
  const id = (await c.query<{ id: string }>("select current_setting('warden.session') as id")).rows[0]!.id;
  return { c, id, ended };
}
