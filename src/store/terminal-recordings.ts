// The terminal_recordings repository: terminal sessions as asciicast v2 text, stored in bounded
// chunks in order (seq 0 the header line). The terminal recorder writes it; the API reads it.
import type { Store } from './store.js';

/** A run of whole asciicast lines of one session; chunk 0 is the header. */
export interface TerminalChunk {
  session_id: string;
  seq: number;
  /** Seconds from the session's start to the chunk's first event (0 for the header). */
  time: number;
  data: string;
}

/** Rows per INSERT: chunks are up to tens of KiB each, so a statement stays a few MiB. */
const ROWS_PER_INSERT = 100;

export class TerminalRecordings {
  constructor(private readonly store: Store) {}

  /** Writes chunks all or none; a chunk already stored (a retried batch) is not written twice. */
  async append(chunks: readonly TerminalChunk[]): Promise<void> {
    if (chunks.length === 0) return;
    await this.store.db.transaction().execute(async (tx) => {
      for (let i = 0; i < chunks.length; i += ROWS_PER_INSERT) {
        await tx
          .insertInto('terminal_recordings')
          .values(chunks.slice(i, i + ROWS_PER_INSERT).map((c) => ({ ...c })))
          .onConflict((oc) => oc.columns(['session_id', 'seq']).doNothing())
          .execute();
      }
    });
  }

  /** The session's recording as asciicast v2 text, or undefined when it has none. */
  async read(sessionId: string): Promise<string | undefined> {
    const parts: string[] = [];
    for await (const part of this.text(sessionId)) parts.push(part);
    return parts.length === 0 ? undefined : parts.join('');
  }

  /**
   * The recording's text in order, a page of chunks at a time: a 64 MiB recording is sent
   * without being held whole in memory.
   */
  async *text(sessionId: string, pageSize = 32): AsyncGenerator<string> {
    let after = -1;
    for (;;) {
      const rows = await this.store.db
        .selectFrom('terminal_recordings')
        .select(['seq', 'data'])
        .where('session_id', '=', sessionId)
        .where('seq', '>', after)
        .orderBy('seq', 'asc')
        .limit(pageSize)
        .execute();
      for (const r of rows) yield r.data;
      if (rows.length < pageSize) return;
      after = Number(rows.at(-1)!.seq);
    }
  }

  /** Whether the session has a recording, without reading it (its header is chunk 0). */
  async exists(sessionId: string): Promise<boolean> {
    const row = await this.store.db
      .selectFrom('terminal_recordings')
      .select('seq')
      .where('session_id', '=', sessionId)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** A session's chunks in order, for tests and tools that look at the storage itself. */
  async chunks(sessionId: string): Promise<TerminalChunk[]> {
    const rows = await this.store.db
      .selectFrom('terminal_recordings')
      .selectAll()
      .where('session_id', '=', sessionId)
      .orderBy('seq', 'asc')
      .execute();
    return rows.map((r) => ({ ...r, seq: Number(r.seq), time: Number(r.time) }));
  }
}
