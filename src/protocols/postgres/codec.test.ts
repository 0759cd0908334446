import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Back,
  dataRow,
  errorResponse,
  Front,
  int16,
  int32,
  MessageFramer,
  message,
  negotiateProtocolVersion,
  ProtocolError,
  ROW_RUN,
  RowRun,
  readNoticeFields,
  readParse,
  readQuery,
  readStartupParams,
  readyForQuery,
} from './codec.js';

describe('postgres codec', () => {
  const q = message(Front.Query, 'SELECT 1');
  const p = message(Front.Parse, 's1', 'SELECT $1::int', int16(1), int32(23));

  it('frames messages split at every byte and keeps the tail for the next chunk', () => {
    const both = Buffer.concat([q, p]);
    for (let cut = 0; cut <= both.length; cut++) {
      const framer = new MessageFramer();
      const got = [...framer.push(both.subarray(0, cut)), ...framer.push(both.subarray(cut))];
      assert.deepEqual(
        got.map((m) => m.type),
        [Front.Query, Front.Parse],
      );
      assert.equal(framer.pending, 0);
      assert.deepEqual(got[0]?.raw, q, 'the raw bytes forward untouched');
    }
  });

  it('frames DataRows back to back as runs on the target side, whole rows at every cut', () => {
    const rows = [1, 22, 333, 4444, 55555].map((n) => dataRow([Buffer.from(String(n)), null]));
    const complete = message(Back.CommandComplete, 'SELECT 5');
    const stream = Buffer.concat([rows[0]!, rows[1]!, q, ...rows.slice(2), complete]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const framer = new MessageFramer(undefined, true);
      const got = [...framer.push(stream.subarray(0, cut)), ...framer.push(stream.subarray(cut))];
      // Every message and every row exactly once, in order, whichever way the runs fell.
      const flat = got.flatMap((m) => (m instanceof RowRun ? m.rows() : [m]));
      assert.deepEqual(
        flat.map((m) => m.raw),
        [rows[0], rows[1], q, ...rows.slice(2), complete],
        `cut at ${cut}`,
      );
      for (const m of got) {
        if (!(m instanceof RowRun)) continue;
        assert.equal(m.type, ROW_RUN, 'a run is never typed as one DataRow');
        assert.ok(m.count >= 2);
        assert.equal(m.rows().length, m.count);
        assert.equal(m.raw.length, m.end - m.start);
      }
      assert.equal(framer.pending, 0);
    }
    // Uncut: the rows before the Query are one run, the three after it another.
    const whole = new MessageFramer(undefined, true).push(stream);
    assert.deepEqual(
      whole.map((m) => (m instanceof RowRun ? `run of ${m.count}` : m.type)),
      ['run of 2', Front.Query, 'run of 3', Back.CommandComplete],
    );
    // A framer not asked for runs frames each row alone.
    assert.equal(new MessageFramer().push(stream).length, 7);
    // COPY OUT rows likewise; a change of type ends a run.
    const copy = ['1\n', '2\n', '3\n'].map((line) => message(Back.CopyData, line));
    const mixed = new MessageFramer(undefined, true).push(Buffer.concat([...copy, rows[0]!, rows[1]!]));
    assert.deepEqual(
      mixed.map((m) => (m instanceof RowRun ? `${m.count} of ${m.rowType}` : m.type)),
      [`3 of ${Back.CopyData}`, `2 of ${Back.DataRow}`],
    );
    assert.deepEqual(
      (mixed[0] as RowRun).rows().map((m) => [m.type, m.raw]),
      copy.map((raw) => [Back.CopyData, raw]),
    );
  });

  it('reads Query and Parse bodies', () => {
    const [mq, mp] = new MessageFramer().push(Buffer.concat([q, p]));
    assert.equal(readQuery(mq!.body), 'SELECT 1');
    assert.deepEqual(readParse(mp!.body), { name: 's1', text: 'SELECT $1::int', paramTypes: [23] });
  });

  it('refuses a length below 4 or above the cap instead of waiting for 1 GiB', () => {
    const huge = Buffer.from([Front.Query, 0x40, 0, 0, 0]);
    assert.throws(() => new MessageFramer(1024).push(huge), ProtocolError);
    assert.throws(
      () => new MessageFramer().push(Buffer.from([Front.Query, 0, 0, 0, 3])),
      /invalid message length 3/,
    );
    assert.throws(() => readParse(message(Front.Parse, 's', 'x', int16(5))), /ends early/);
  });

  it('builds ErrorResponse and ReadyForQuery as PostgreSQL does', () => {
    const e = errorResponse({ severity: 'FATAL', code: '28P01', message: 'bad password' });
    const [m] = new MessageFramer().push(e);
    assert.equal(m?.type, Back.ErrorResponse);
    const fields = readNoticeFields(m!.body);
    assert.deepEqual([fields.get('S'), fields.get('C'), fields.get('M')], ['FATAL', '28P01', 'bad password']);
    assert.deepEqual(readyForQuery('I'), Buffer.from([0x5a, 0, 0, 0, 5, 0x49]));
  });

  it('reads startup parameters and refuses a packet without its final terminator', () => {
    const payload = Buffer.from('user\0alice\0database\0db\0\0');
    assert.deepEqual(readStartupParams(payload), [
      ['user', 'alice'],
      ['database', 'db'],
    ]);
    assert.throws(() => readStartupParams(payload.subarray(0, -1)), /expected terminator as last byte/);
    assert.throws(() => readStartupParams(Buffer.from('user\0alice\0\0extra')), /expected terminator/);
  });

  it('builds NegotiateProtocolVersion with the ignored options', () => {
    const [m] = new MessageFramer().push(negotiateProtocolVersion(196608, ['_pq_.x']));
    assert.equal(m?.type, Back.NegotiateProtocolVersion);
    assert.deepEqual(m?.body, Buffer.from([0, 3, 0, 0, 0, 0, 0, 1, ...Buffer.from('_pq_.x\0')]));
  });
});
