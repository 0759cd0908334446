// The console's only way to the server: Warden's public /api, with the signed-in person's
// short-lived Warden token. Errors carry the API's own code and message so pages can show them.

const TOKEN_KEY = 'warden.console.token';

export interface Credential {
  token: string;
  jti: string;
  expires_at: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let credential: Credential | null = readStored();
const signedOutListeners = new Set<() => void>();

function readStored(): Credential | null {
  try {
    const raw = sessionStorage.getItem(TOKEN_KEY);
    const c = raw ? (JSON.parse(raw) as Credential) : null;
    return c && Date.parse(c.expires_at) > Date.now() ? c : null;
  } catch {
    return null;
  }
}

export function currentCredential(): Credential | null {
  return credential;
}

export function storeCredential(c: Credential | null): void {
  credential = c;
  if (c) sessionStorage.setItem(TOKEN_KEY, JSON.stringify(c));
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Called when the server no longer accepts the token (expired, revoked, subject disabled). */
export function onSignedOut(fn: () => void): () => void {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

function authHeaders(bearer?: string): Record<string, string> {
  const token = bearer ?? credential?.token;
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function failure(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // Not JSON (a proxy's error page): the status line is all there is.
  }
  return new ApiError(res.status, code, message);
}

export interface RequestOptions {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
  signal?: AbortSignal;
  /** A credential other than the stored one (signing in with an API key or a provider token). */
  bearer?: string;
}

export async function request(path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...authHeaders(opts.bearer) };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method: opts.method ?? 'GET',
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'unreachable', `Warden did not answer: ${(err as Error).message}`);
  }
  if (!res.ok) {
    const error = await failure(res);
    if (res.status === 401 && !opts.bearer && credential) {
      storeCredential(null);
      for (const fn of signedOutListeners) fn();
    }
    throw error;
  }
  return res;
}

export async function api<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await request(path, opts);
  return (await res.json()) as T;
}

/** A query string from the set values of `params` (empty strings are left out). */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export interface StreamHandlers {
  onEvent: (event: string, data: unknown) => void;
  /** The stream is up (true) or lost and being retried (false). */
  onState?: (connected: boolean, error?: ApiError) => void;
}

/**
 * Reads a server-sent-events endpoint with fetch (EventSource cannot send a bearer token) and
 * reconnects with backoff until `signal` aborts; each reconnect gets a fresh snapshot.
 */
export async function stream(path: string, handlers: StreamHandlers, signal: AbortSignal): Promise<void> {
  let delay = 500;
  while (!signal.aborted) {
    try {
      const res = await request(path, { signal });
      handlers.onState?.(true);
      delay = 500;
      const finished = await readEvents(res, handlers.onEvent, signal);
      if (finished) return;
    } catch (err) {
      if (signal.aborted) return;
      const e = err instanceof ApiError ? err : new ApiError(0, 'stream_lost', (err as Error).message);
      handlers.onState?.(false, e);
      if (e.status === 401 || e.status === 403 || e.status === 404) return;
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}

/** True when the server ended the stream with `event: end` (nothing more will come). */
async function readEvents(
  res: Response,
  onEvent: (event: string, data: unknown) => void,
  signal: AbortSignal,
): Promise<boolean> {
  if (!res.body) return false;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return await readFrames(reader, onEvent);
  } finally {
    // One listener per connection, gone with it: a stream that reconnects all day holds one.
    signal.removeEventListener('abort', cancel);
  }
}

async function readFrames(
  reader: ReadableStreamDefaultReader<string>,
  onEvent: (event: string, data: unknown) => void,
): Promise<boolean> {
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += value;
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of frame.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length > 0) {
        onEvent(event, JSON.parse(data.join('\n')));
        if (event === 'end') return true;
      }
      cut = buffer.indexOf('\n\n');
    }
  }
}
