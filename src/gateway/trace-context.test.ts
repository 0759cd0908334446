import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { traceFromStartup } from '../protocols/postgres/startup-trace.js';
import {
  commentedParse,
  commentedQuery,
  traceComment,
  withComment,
} from '../protocols/postgres/trace-comment.js';
import { parseTraceparent } from './trace-context.js';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('W3C traceparent', () => {
  it('reads a valid traceparent and continues it under a span of its own', () => {
    const t = parseTraceparent(TP.toUpperCase());
    assert.ok(t);
    assert.equal(t.received, TP);
    assert.equal(t.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    const [version, trace, span, flags] = t.outgoing.split('-');
    assert.equal(version, '00');
    assert.equal(trace, t.traceId);
    assert.match(span ?? '', /^[0-9a-f]{16}$/);
    assert.notEqual(span, '00f067aa0ba902b7', 'Warden is a span of its own, not the caller');
    assert.equal(flags, '01');
  });

  it('ignores malformed values: bad version, zero ids, wrong lengths, extra fields in version 00', () => {
    for (const bad of [
      '',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
      'not a trace',
    ]) {
      assert.equal(parseTraceparent(bad), undefined, bad);
    }
    // A later version may carry more fields; the first four are still read.
    assert.ok(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more'));
  });

  it('takes a traceparent out of PostgreSQL startup options, keeping every other setting', () => {
    const { trace, params } = traceFromStartup({
      user: 'x',
      options: `-c search_path=a\\ b -c traceparent=${TP} --work_mem=64MB`,
    });
    assert.equal(trace?.received, TP);
    assert.equal(params.options, '-c search_path=a\\ b --work_mem=64MB');
    const only = traceFromStartup({ options: `-cwarden.traceparent=${TP}` });
    assert.equal(only.trace?.received, TP);
    assert.equal(only.params.options, undefined, 'nothing left to forward');
  });

  it('takes a traceparent out of application_name', () => {
    const { trace, params } = traceFromStartup({ application_name: `etl-job traceparent=${TP}` });
    assert.equal(trace?.received, TP);
    assert.equal(params.application_name, 'etl-job');
    const none = traceFromStartup({ application_name: 'psql', options: '-c statement_timeout=5s' });
    assert.equal(none.trace, undefined);
    assert.deepEqual(none.params, { application_name: 'psql', options: '-c statement_timeout=5s' });
  });

  it('puts the sqlcommenter comment inside the statement it names', () => {
    const c = traceComment(TP);
    assert.equal(c, `/*traceparent='${TP}'*/`);
    const add = (text: string) => withComment(Buffer.from(text), c).toString();
    assert.equal(add('select 1'), `select 1 ${c}`);
    assert.equal(add('select 1;\n'), `select 1 ${c};\n`);
    assert.equal(add('select 1 -- why'), `select 1 -- why\n${c}`);
    assert.equal(add('select 1 -- why\nfrom t'), `select 1 -- why\nfrom t ${c}`);
  });

  it('adds the comment to the bytes the client sent, whatever their encoding, and keeps Parse parameter types', () => {
    const c = traceComment(TP);
    // 'café' in LATIN1: the é is one byte that is not valid UTF-8 on its own.
    const latin1 = Buffer.from("insert into t values ('café')", 'latin1');
    const query = commentedQuery(Buffer.concat([latin1, Buffer.from([0])]), c);
    assert.equal(query[0], 0x51);
    assert.equal(query.readInt32BE(1), query.length - 1);
    assert.equal(query.subarray(5).toString('latin1'), `insert into t values ('café') ${c}\0`);
    const body = Buffer.concat([
      Buffer.from('s1\0', 'latin1'),
      latin1,
      Buffer.from([0, 0, 1, 0, 0, 0, 0x17]), // one parameter type: int4
    ]);
    const parse = commentedParse(body, c);
    assert.equal(parse[0], 0x50);
    assert.equal(parse.readInt32BE(1), parse.length - 1);
    assert.deepEqual(
      parse.subarray(5),
      Buffer.concat([
        Buffer.from(`s1\0insert into t values ('café') ${c}`, 'latin1'),
        Buffer.from([0, 0, 1, 0, 0, 0, 0x17]),
      ]),
    );
  });
});
