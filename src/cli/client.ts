// The CLI's API client: WARDEN_URL + WARDEN_TOKEN (else the token `warden login` cached), JSON
// in and out, and one clear line for every failure (unreachable server, refused credential, …).
import { cachedLogin } from './credentials.js';
import { type ServerEvent, serverEvents } from './server-events.js';

export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  url?: string;
  token?: string;
}

/** The credential a command presents, and where it came from. */
export interface Credential {
  token: string;
  source: 'WARDEN_TOKEN' | 'login';
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;

  constructor(
    opts: ClientOptions = {},
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.baseUrl = (opts.url ?? (env.WARDEN_URL || 'http://127.0.0.1:8080')).replace(/\/+$/, '');
    this.token = opts.token ?? (env.WARDEN_TOKEN || undefined);
  }

  /** WARDEN_TOKEN when set (it always wins), else the live login cached for this Warden. */
  credential(): Credential {
    if (this.token) return { token: this.token, source: 'WARDEN_TOKEN' };
    const login = cachedLogin(this.baseUrl, this.env);
    if (!login) {
      throw new CliError(
        `no credential: set WARDEN_TOKEN to an API key or token (a fresh install writes one to .warden/admin.key), or run \`warden login\` to sign in to ${this.baseUrl}`,
      );
    }
    if (!(Date.parse(login.expires_at) > Date.now())) {
      throw new CliError(
        `your login to ${this.baseUrl} as ${login.subject} expired at ${login.expires_at}: run \`warden login\``,
      );
    }
    return { token: login.token, source: 'login' };
  }

  async raw(method: string, path: string, body?: unknown): Promise<Response> {
    const credential = this.credential();
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${credential.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach Warden at ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is \`warden serve\` running? set WARDEN_URL)`,
      );
    }
    if (!res.ok) {
      let message = `${res.status} ${res.statusText}`;
      try {
        const payload = (await res.json()) as { error?: { code?: string; message?: string } };
        if (payload.error?.message)
          message = `${res.status} ${payload.error.code ?? ''}: ${payload.error.message}`;
      } catch {
        // not JSON: the status line is all there is
      }
      // A cached login the server no longer takes (revoked, key rotated) is fixed the same way.
      if (res.status === 401 && credential.source === 'login') message += ': run `warden login`';
      throw new CliError(message);
    }
    return res;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    return (await res.json()) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** The events of a server-sent-events GET, as they come; ends when the server ends the stream. */
  async *events(path: string): AsyncGenerator<ServerEvent> {
    const res = await this.raw('GET', path);
    if (!res.body) return;
    yield* serverEvents(res.body);
  }
}

export function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
