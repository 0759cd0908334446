// `audit trace`: the tree of one delegation lineage, from the credential at its root down through
// every token minted from it, each with the sessions opened with it and their commands in order.
import type { Store } from '../store/store.js';

export interface TraceCommand {
  seq: number;
  time: string;
  decision: string;
  text: string;
  rows: number | null;
  duration_ms: number | null;
  error: string | null;
}

export interface TraceSession {
  id: string;
  subject: string;
  chain: string[];
  connection: string;
  protocol: string;
  status: string;
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
  parent_session_id: string | null;
  application: string | null;
  traceparent: string | null;
  client_addr: string | null;
  commands: TraceCommand[];
  /** More commands were recorded than the trace shows. */
  commands_truncated: boolean;
}

/** A credential in the lineage: an API key, or a Warden token and what it was minted from. */
export interface TraceNode {
  kind: 'api_key' | 'token';
  id: string;
  /** Who holds it: the key's name, or the token's holder (the last actor of its chain). */
  subject: string;
  holder_kind: string;
  /** Delegates from the root to the holder (empty for the root's own credential). */
  chain: string[];
  scope: string[];
  issued_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  /** How the root token was obtained (`oidc:<issuer>`, `api_key:<id>`); null below the root. */
  minted_from: string | null;
  /** The session the token was minted in, when the minter named or used one. */
  parent_session_id: string | null;
  sessions: TraceSession[];
  children: TraceNode[];
}

export interface Trace {
  /** The identity at the root of the chain: the human or service that started it. */
  root_subject: string;
  root: TraceNode;
  /** What the trace was asked for (a session, token or API key id). */
  from: { kind: 'session' | 'token' | 'api_key'; id: string };
  /** The trace hit its size bounds and leaves some credentials or sessions out. */
  truncated: boolean;
}

const MAX_NODES = 500;
const MAX_SESSIONS = 1000;
const MAX_COMMANDS_PER_SESSION = 200;
/** Characters of a command's text a trace shows (the session's recording has it whole). */
const MAX_TEXT = 1000;

interface Budget {
  nodes: number;
  sessions: number;
  truncated: boolean;
  /** Credential ids from the root down to what was asked for. */
  path: string[];
}

/** The node with credential `id` in the tree under `n`, if any. */
export function findNode(n: TraceNode, id: string): TraceNode | undefined {
  if (n.id === id) return n;
  for (const c of n.children) {
    const hit = findNode(c, id);
    if (hit) return hit;
  }
  return undefined;
}

/** Whether the tree under `n` holds credential or session `id`. */
export function holds(n: TraceNode, id: string): boolean {
  return (
    findNode(n, id) !== undefined ||
    n.sessions.some((s) => s.id === id) ||
    n.children.some((c) => holds(c, id))
  );
}

export class TraceNotFound extends Error {
  override name = 'TraceNotFound';
}

export class Tracer {
  constructor(private readonly store: Store) {}

  /** The lineage `id` (a session, token jti or API key id) belongs to, whole, from its root. */
  async trace(id: string): Promise<Trace> {
    const from = await this.locate(id);
    let credential = from.credential;
    // Up to the token (or API key) the lineage starts with, keeping the way back down: the
    // credentials on it are drawn first, so the size bounds never cut out what was asked for.
    const path = [credential.id];
    for (let hops = 0; credential.kind === 'token'; hops++) {
      const row = await this.tokenRow(credential.id);
      if (!row || hops > 64) break;
      if (row.parent_jti) {
        credential = { kind: 'token', id: row.parent_jti };
        path.unshift(credential.id);
        continue;
      }
      if (row.issued_via.startsWith('api_key:')) {
        const keyId = row.issued_via.slice('api_key:'.length);
        if (await this.keyRow(keyId)) {
          credential = { kind: 'api_key', id: keyId };
          path.unshift(keyId);
        }
      }
      break;
    }
    const budget = { nodes: 0, sessions: 0, truncated: false, path };
    const root = await this.node(credential, budget);
    if (!root) throw new TraceNotFound(`no token or API key ${credential.id} to trace from`);
    const rootSubject =
      root.kind === 'token' ? ((await this.tokenRow(root.id))?.root_subject ?? root.subject) : root.subject;
    return { root_subject: rootSubject, root, from: from.asked, truncated: budget.truncated };
  }

  private async locate(id: string): Promise<{
    asked: Trace['from'];
    credential: { kind: 'token' | 'api_key'; id: string };
  }> {
    const session = await this.store.db
      .selectFrom('sessions')
      .select(['token_id'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (session) {
      if (!session.token_id)
        throw new TraceNotFound(`session ${id} ran on a credential Warden does not track`);
      const kind = (await this.tokenRow(session.token_id)) ? 'token' : 'api_key';
      if (kind === 'api_key' && !(await this.keyRow(session.token_id))) {
        throw new TraceNotFound(`session ${id} ran on an OIDC token, which has no lineage to trace`);
      }
      return { asked: { kind: 'session', id }, credential: { kind, id: session.token_id } };
    }
    if (await this.tokenRow(id)) return { asked: { kind: 'token', id }, credential: { kind: 'token', id } };
    if (await this.keyRow(id)) return { asked: { kind: 'api_key', id }, credential: { kind: 'api_key', id } };
    throw new TraceNotFound(`${id} is not a session, token or API key known to this Warden`);
  }

  private async node(
    c: { kind: 'token' | 'api_key'; id: string },
    budget: Budget,
  ): Promise<TraceNode | undefined> {
    if (budget.nodes >= MAX_NODES) {
      budget.truncated = true;
      return undefined;
    }
    budget.nodes++;
    let node: TraceNode;
    let childTokens: string[];
    if (c.kind === 'api_key') {
      const key = await this.keyRow(c.id);
      if (!key) return undefined;
      node = {
        kind: 'api_key',
        id: key.id,
        subject: key.name,
        holder_kind: key.kind,
        chain: [],
        scope: ['*'],
        issued_at: key.created_at,
        expires_at: key.expires_at,
        revoked_at: key.revoked_at,
        minted_from: null,
        parent_session_id: null,
        sessions: [],
        children: [],
      };
      childTokens = await this.tokensWhere('issued_via', `api_key:${c.id}`, true);
    } else {
      const t = await this.tokenRow(c.id);
      if (!t) return undefined;
      node = {
        kind: 'token',
        id: t.jti,
        subject: t.subject,
        holder_kind: t.kind,
        chain: JSON.parse(t.chain_json),
        scope: JSON.parse(t.scope_json),
        issued_at: t.issued_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
        minted_from: t.parent_jti ? null : t.issued_via,
        parent_session_id: t.parent_session_id,
        sessions: [],
        children: [],
      };
      childTokens = await this.tokensWhere('parent_jti', t.jti, false);
    }
    if (childTokens.length > MAX_NODES) {
      budget.truncated = true;
      childTokens.length = MAX_NODES;
    }
    const next = budget.path[budget.path.indexOf(c.id) + 1];
    if (budget.path.includes(c.id) && next !== undefined) {
      childTokens = [next, ...childTokens.filter((j) => j !== next)];
    }
    node.sessions = await this.sessionsOf(node.id, budget);
    for (const jti of childTokens) {
      const child = await this.node({ kind: 'token', id: jti }, budget);
      if (child) node.children.push(child);
    }
    return node;
  }

  private async sessionsOf(credentialId: string, budget: Budget): Promise<TraceSession[]> {
    const room = MAX_SESSIONS - budget.sessions;
    const rows = await this.store.db
      .selectFrom('sessions')
      .selectAll()
      .where('token_id', '=', credentialId)
      .orderBy('started_at')
      .limit(Math.max(0, room) + 1)
      .execute();
    if (rows.length > room) {
      budget.truncated = true;
      rows.length = Math.max(0, room);
    }
    budget.sessions += rows.length;
    const out: TraceSession[] = [];
    for (const s of rows) {
      const events = await this.store.db
        .selectFrom('session_events')
        .select(['seq', 'time', 'decision', 'text', 'rows', 'duration_ms', 'error'])
        .where('session_id', '=', s.id)
        .orderBy('seq')
        .limit(MAX_COMMANDS_PER_SESSION + 1)
        .execute();
      out.push({
        id: s.id,
        subject: s.subject,
        chain: JSON.parse(s.chain_json),
        connection: s.connection_name,
        protocol: s.protocol,
        status: s.status,
        started_at: s.started_at,
        ended_at: s.ended_at,
        end_reason: s.end_reason,
        parent_session_id: s.parent_session_id,
        application: s.application,
        traceparent: s.traceparent,
        client_addr: s.client_addr,
        commands: events
          .slice(0, MAX_COMMANDS_PER_SESSION)
          .map((e) => (e.text.length > MAX_TEXT ? { ...e, text: `${e.text.slice(0, MAX_TEXT)}…` } : e)),
        commands_truncated: events.length > MAX_COMMANDS_PER_SESSION,
      });
    }
    return out;
  }

  private async tokensWhere(column: 'issued_via' | 'parent_jti', value: string, rootsOnly: boolean) {
    let q = this.store.db.selectFrom('tokens').select('jti').where(column, '=', value);
    if (rootsOnly) q = q.where('parent_jti', 'is', null);
    // One more than a node may show, so the caller knows it cut.
    const rows = await q
      .orderBy('issued_at')
      .limit(MAX_NODES + 1)
      .execute();
    return rows.map((r) => r.jti);
  }

  private tokenRow(jti: string) {
    return this.store.db.selectFrom('tokens').selectAll().where('jti', '=', jti).executeTakeFirst();
  }

  private keyRow(id: string) {
    return this.store.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  }
}
