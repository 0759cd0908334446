import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Back,
  errorResponse,
  Front,
  int16,
  int32,
  MessageFramer,
  message,
  negotiateProtocolVersion,
  ProtocolError,
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
