import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseAsciicast } from '../recording/asciicast.js';
import { SessionEvents } from '../store/session-events.js';
import { Sessions } from '../store/sessions.js';
import { DIALECTS } from '../testing/dialects.js';
import { apiKeys, type Gateway, startGateway } from '../testing/gateway.js';
import { sessionRow, statementEvent } from '../testing/session-rows.js';
import { recordTerminalSample, type TerminalSample } from '../testing/terminal-sample.js';

for (const dialect of DIALECTS) {
  describe(`GET /api/sessions/:id/recording (${dialect})`, () => {
    let gw: Gateway;
    let keys: Record<'alice' | 'bob' | 'sec', string>;
    let sample: TerminalSample;

    const get = async (id: string, token: string) => {
      const res = await fetch(`${gw.url}/api/sessions/${id}/recording`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
    };

    before(async () => {
      gw = await startGateway(dialect, {
        config: { identity: { roles: { admin: ['platform-admins'], auditor: ['security'] } } },
      });
      keys = await apiKeys(gw, { alice: ['staff'], bob: ['staff'], sec: ['security'] });
      const store = gw.openStore();
      try {
        sample = await recordTerminalSample(store, 'ssh-alice-1', { subject: 'alice' });
        await new Sessions(store).insert(sessionRow({ id: 'pg-alice-1', status: 'closed' }));
        await new SessionEvents(store).insert([
          statementEvent({ session_id: 'pg-alice-1', seq: 1, text: 'select 1' }),
        ]);
      } finally {
        await store.close();
      }
    });
    after(async () => gw?.close());

    it("returns a real shell's output to its owner as asciicast v2 the parser accepts", async () => {
      const res = await get('ssh-alice-1', keys.alice!);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.type, 'application/x-asciicast');
      const cast = parseAsciicast(res.text);
      assert.deepEqual([cast.header.width, cast.header.height], [80, 24]);
      assert.equal(cast.header.env?.TERM, 'xterm-256color');
      const output = cast.events.filter((e) => e[1] === 'o');
      assert.equal(output.map((e) => e[2]).join(''), sample.output);
      // Recorded from a pseudo-terminal: lines end as a terminal receives them, with "\r\n".
      assert.ok(
        sample.output.startsWith('\u001b[1;32mwarden\u001b[0m demo ✓\r\n'),
        JSON.stringify(sample.output),
      );
      assert.ok(sample.output.endsWith('\r\ndone\r\n'), JSON.stringify(sample.output));
      // The script sleeps before its last line: the replay keeps that pause (some, not a length).
      const done = output.find((e) => e[2].includes('done'))!;
      assert.ok(done[0] > output[0]![0], JSON.stringify(output));
    });

    it('lets an auditor read anyone’s recording', async () => {
      const res = await get('ssh-alice-1', keys.sec!);
      assert.equal(res.status, 200, res.text);
      assert.doesNotThrow(() => parseAsciicast(res.text));
    });

    it("answers another user's recording exactly like a missing session", async () => {
      const theirs = await get('ssh-alice-1', keys.bob!);
      const missing = await get('no-such-session', keys.bob!);
      assert.equal(theirs.status, 404);
      assert.equal(
        theirs.text.replaceAll('ssh-alice-1', '<id>'),
        missing.text.replaceAll('no-such-session', '<id>'),
      );
      assert.equal(JSON.parse(theirs.text).error.message, 'session ssh-alice-1 does not exist');
    });

    it('answers 404 for a session recorded as statements only (every PostgreSQL session)', async () => {
      const res = await get('pg-alice-1', keys.alice!);
      assert.equal(res.status, 404, res.text);
      const body = JSON.parse(res.text) as { error: { code: string; message: string } };
      assert.deepEqual(body.error, {
        code: 'not_found',
        message: 'session pg-alice-1 has no terminal recording',
      });
    });

    it('answers HEAD with whether there is a recording, without sending it', async () => {
      const head = (id: string) =>
        fetch(`${gw.url}/api/sessions/${id}/recording`, {
          method: 'HEAD',
          headers: { authorization: `Bearer ${keys.alice}` },
        });
      const found = await head('ssh-alice-1');
      assert.equal(found.status, 200);
      assert.equal(found.headers.get('content-type'), 'application/x-asciicast');
      assert.equal(await found.text(), '');
      assert.equal((await head('pg-alice-1')).status, 404);
      assert.equal(
        (
          await fetch(`${gw.url}/api/sessions/ssh-alice-1/recording`, {
            method: 'HEAD',
            headers: { authorization: `Bearer ${keys.bob}` },
          })
        ).status,
        404,
      );
    });

    it('documents the route and its media type in the OpenAPI document', async () => {
      const doc = (await gw.api('GET', '/api/openapi.json')).body as {
        paths: Record<
          string,
          { get?: { summary?: string; responses?: Record<string, { content?: Record<string, unknown> }> } }
        >;
      };
      const route = doc.paths['/api/sessions/{id}/recording']?.get;
      assert.ok(route, Object.keys(doc.paths).join(', '));
      assert.match(route.summary ?? '', /asciicast v2/);
      assert.deepEqual(Object.keys(route.responses ?? {}).sort(), ['200', '404']);
      assert.deepEqual(Object.keys(route.responses?.['200']?.content ?? {}), ['application/x-asciicast']);
    });
  });
}
