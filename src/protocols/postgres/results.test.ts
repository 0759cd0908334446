import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Back, Front, int16, int32, type Message, MessageFramer, message } from './codec.js';
import { ResultTracker } from './results.js';

/** A message as the framer would hand it over. */
const framed = (b: Buffer): Message => new MessageFramer().push(b)[0]!;

const field = (name: string, format = 0) => [
  name,
  int32(16384),
  int16(1),
  int32(25),
  int16(-1),
  int32(-1),
  int16(format),
];
const rowDescription = (...names: string[]) =>
  framed(message(Back.RowDescription, int16(names.length), ...names.flatMap((n) => field(n))));
const dataRow = framed(message(Back.DataRow, int16(1), int32(1), Buffer.from('x')));
const complete = (tag = 'SELECT 1') => framed(message(Back.CommandComplete, tag));
const ready = framed(message(Back.ReadyForQuery, Buffer.from('I')));
const error = framed(message(Back.ErrorResponse, Buffer.from('SERROR\0Mboom\0\0')));
const back = (type: number) => framed(message(type));

const query = (sql: string) => framed(message(Front.Query, sql));
const parse = (name: string, sql: string) => framed(message(Front.Parse, name, sql, int16(0)));
const bind = (portal: string, statement: string, formats: number[] = []) =>
  framed(
    message(Front.Bind, portal, statement, int16(0), int16(0), int16(formats.length), ...formats.map(int16)),
  );
const describeMsg = (kind: 'S' | 'P', name: string) =>
  framed(message(Front.Describe, Buffer.from(kind), name));
const execute = (portal: string) => framed(message(Front.Execute, portal, int32(0)));
const sync = framed(message(Front.Sync));

/** What each target message is for: `kind:command#statement[fields]`. */
function trace(t: ResultTracker<string>, ms: Message[]): string[] {
  return ms.map((m) => {
    const ev = t.received(m);
    if (ev.kind === 'other') return 'other';
    const f = ev.result.fields?.map((x) => `${x.name}/${x.format}`).join(',') ?? '?';
    return `${ev.kind}:${ev.result.command}#${ev.result.statement}[${f}]`;
  });
}

describe('result tracking: which command each result on the wire belongs to', () => {
  it('numbers the statements of a simple query by their CommandComplete and ends at ReadyForQuery', () => {
    const t = new ResultTracker<string>();
    t.sent(query('select a; set x = 1; select b'), 'q');
    assert.deepEqual(
      trace(t, [
        rowDescription('a'),
        dataRow,
        complete(),
        complete('SET'),
        rowDescription('b'),
        dataRow,
        complete(),
        ready,
      ]),
      [
        'fields:q#0[a/0]',
        'row:q#0[a/0]',
        'end:q#0[a/0]',
        'end:q#1[?]',
        'fields:q#2[b/0]',
        'row:q#2[b/0]',
        'end:q#2[b/0]',
        'other',
      ],
    );
    assert.equal(t.pending, 0);
  });

  it('gives Execute rows the shape of the portal Describe, with the formats Bind asked for', () => {
    const t = new ResultTracker<string>();
    for (const m of [parse('', 'select a'), bind('', '', [1]), describeMsg('P', ''), execute(''), sync]) {
      t.sent(m, m.type === Front.Parse ? 'p' : null);
    }
    const binaryDescription = framed(
      message(
        Back.RowDescription,
        int16(1),
        'a',
        int32(0),
        int16(0),
        int32(25),
        int16(-1),
        int32(-1),
        int16(1),
      ),
    );
    assert.deepEqual(
      trace(t, [
        back(Back.ParseComplete),
        back(Back.BindComplete),
        binaryDescription,
        dataRow,
        complete(),
        ready,
      ]),
      ['other', 'other', 'other', 'row:p#0[a/1]', 'end:p#0[a/1]', 'other'],
    );
    assert.equal(t.pending, 0);
  });

  it('serves pipelined Bind/Execute/Sync of a statement described once (pgbench -M prepared)', () => {
    const t = new ResultTracker<string>();
    t.sent(parse('s1', 'select a, b'), 's1');
    t.sent(describeMsg('S', 's1'), null);
    t.sent(sync, null);
    // The client pipelines before the description has even come back.
    for (let i = 0; i < 2; i++) for (const m of [bind('', 's1', [0, 1]), execute(''), sync]) t.sent(m, null);
    assert.deepEqual(
      trace(t, [
        back(Back.ParseComplete),
        back(Back.ParameterDescription),
        rowDescription('a', 'b'),
        ready,
        back(Back.BindComplete),
        dataRow,
        complete(),
        ready,
        back(Back.BindComplete),
        dataRow,
        back(Back.PortalSuspended),
        ready,
      ]),
      [
        'other',
        'other',
        'other',
        'other',
        'other',
        'row:s1#0[a/0,b/1]',
        'end:s1#0[a/0,b/1]',
        'other',
        'other',
        'row:s1#0[a/0,b/1]',
        'suspended:s1#0[a/0,b/1]',
        'other',
      ],
    );
    assert.equal(t.pending, 0);
  });

  it('drops what an extended batch expected after an error, up to its Sync', () => {
    const t = new ResultTracker<string>();
    for (const m of [parse('', 'bad'), bind('', ''), execute(''), sync])
      t.sent(m, m.type === Front.Parse ? 'bad' : null);
    t.sent(parse('', 'select a'), 'good');
    for (const m of [bind('', ''), describeMsg('P', ''), execute(''), sync]) t.sent(m, null);
    assert.deepEqual(
      trace(t, [
        error,
        ready,
        back(Back.ParseComplete),
        back(Back.BindComplete),
        rowDescription('a'),
        dataRow,
        complete(),
        ready,
      ]),
      ['error:bad#0[?]', 'other', 'other', 'other', 'other', 'row:good#0[a/0]', 'end:good#0[a/0]', 'other'],
    );
    assert.equal(t.pending, 0);
  });

  it('names the statement an ErrorResponse ends: a simple query’s current one, an Execute’s portal', () => {
    const t = new ResultTracker<string>();
    t.sent(query('select 1; select x'), 'q');
    t.sent(parse('', 'select y'), 'p');
    for (const m of [bind('', ''), execute(''), sync]) t.sent(m, null);
    assert.deepEqual(
      trace(t, [
        rowDescription('a'),
        dataRow,
        complete(),
        error,
        ready,
        back(Back.ParseComplete),
        back(Back.BindComplete),
        error,
        ready,
      ]),
      [
        'fields:q#0[a/0]',
        'row:q#0[a/0]',
        'end:q#0[a/0]',
        'error:q#1[?]',
        'other',
        'other',
        'other',
        'error:p#0[?]',
        'other',
      ],
    );
    assert.equal(t.pending, 0);
  });

  it('keeps a named portal’s result across Executes and forgets closed statements', () => {
    const t = new ResultTracker<string>();
    t.sent(parse('s', 'select a'), 's');
    for (const m of [bind('c', 's'), describeMsg('P', 'c'), execute('c'), execute('c'), sync])
      t.sent(m, null);
    t.received(back(Back.ParseComplete));
    t.received(back(Back.BindComplete));
    t.received(rowDescription('a'));
    const first = t.received(dataRow);
    t.received(back(Back.PortalSuspended));
    const second = t.received(dataRow);
    assert.ok(first.kind === 'row' && second.kind === 'row');
    assert.equal(first.result, second.result, 'one result object: a row limit spans fetches');
    t.received(complete());
    t.received(ready);
    t.sent(framed(message(Front.Close, Buffer.from('S'), 's')), null);
    t.sent(bind('', 's'), null);
    t.sent(execute(''), null);
    t.received(back(Back.CloseComplete));
    t.received(back(Back.BindComplete));
    assert.deepEqual(trace(t, [dataRow]), ['other']);
  });

  it('does not let the ReadyForQuery of a fast-path function call end the query sent after it', () => {
    const t = new ResultTracker<string>();
    t.sent(framed(message(Front.FunctionCall, int32(1234), int16(0), int16(0), int16(0))), null);
    t.sent(query('select a'), 'q');
    const fcResult = framed(message(0x56, int32(-1)));
    assert.deepEqual(trace(t, [fcResult, ready, rowDescription('a'), dataRow]), [
      'other',
      'other',
      'fields:q#0[a/0]',
      'row:q#0[a/0]',
    ]);
  });

  it('ends a judged function call at its FunctionCallResponse or error, and only its own ReadyForQuery', () => {
    const t = new ResultTracker<string>();
    const call = framed(message(Front.FunctionCall, int32(952), int16(0), int16(0), int16(0)));
    assert.ok(t.sent(call, 'f'), 'the call’s result, for the recording');
    t.sent(call, 'g');
    t.sent(query('select a'), 'q');
    const value = framed(message(Back.FunctionCallResponse, int32(1), Buffer.from('0')));
    assert.deepEqual(trace(t, [value, ready, error, ready, rowDescription('a')]), [
      'end:f#0[?]',
      'other',
      'error:g#0[?]',
      'other',
      'fields:q#0[a/0]',
    ]);
    assert.equal(t.pending, 1);
  });

  it('reports COPY OUT messages as part of the simple query’s result', () => {
    const t = new ResultTracker<string>();
    t.sent(query('copy t to stdout'), 'c');
    const copyOut = framed(message(Back.CopyOutResponse, Buffer.from([0]), int16(1), int16(0)));
    const copyData = framed(message(Back.CopyData, Buffer.from('1\n')));
    assert.deepEqual(trace(t, [copyOut, copyData, back(Back.CopyDone), complete('COPY 1'), ready]), [
      'copy:c#0[?]',
      'copy-data:c#0[?]',
      'other',
      'end:c#0[?]',
      'other',
    ]);
  });

  it('follows a sent statement until it is answered: queued behind an earlier one, running, done', () => {
    const t = new ResultTracker<string>();
    t.sent(query('select slow()'), 'first');
    assert.equal(t.lastCommand(), 'first');
    const first = t.newest()!;
    t.sent(parse('', 'select $1'), 'second');
    t.sent(bind('', ''), null);
    assert.equal(t.lastCommand(), null, 'a Bind is not a statement run');
    t.sent(execute(''), null);
    assert.equal(t.lastCommand(), 'second');
    const second = t.newest()!;
    t.sent(sync, null);
    assert.deepEqual([t.progress(first), t.progress(second)], ['running', 'queued']);
    trace(t, [rowDescription('a'), dataRow, complete(), ready]);
    // Parse and Bind still unanswered ahead of it take no time worth counting: it runs.
    assert.deepEqual([t.progress(first), t.progress(second)], ['done', 'running']);
    trace(t, [back(Back.ParseComplete), back(Back.BindComplete), dataRow, complete()]);
    assert.equal(t.progress(second), 'done');
  });
});
