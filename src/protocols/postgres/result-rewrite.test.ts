import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { rule } from '../../config/rules.js';
import type { Command } from '../../gateway/session.js';
import { analyzeCommand } from '../../policy/analyze.js';
import { loadPostgresAnalyzer } from '../../policy/analyzers/postgres.js';
import { type DecisionContext, decide } from '../../policy/decide.js';
import { MaskSet } from '../../policy/mask/mask-set.js';
import { REDACTED } from '../../policy/mask/styles.js';
import { ChunkOutput } from './chunk-output.js';
import {
  Back,
  dataRow,
  type FieldDescription,
  MessageFramer,
  message,
  RowRun,
  readCommandTag,
  readDataRow,
  readNoticeFields,
} from './codec.js';
import { ResultRewriter, type TableResolver } from './result-rewrite.js';
import type { Result } from './results.js';

const ctx: DecisionContext = {
  connection: { name: 'db', tags: [], protocol: 'postgres', default: 'allow' },
  caller: { subject: 'alice', groups: [], kind: 'human', chain: [] },
};
const command = (text: string, rules: unknown[]): Command => {
  const facts = analyzeCommand('postgres', text);
  return {
    text,
    facts,
    decision: decide(
      rules.map((r) => rule.parse(r)),
      ctx,
      facts,
    ),
  };
};
const framed = (b: Buffer) => new MessageFramer().push(b)[0]!;
const f = (name: string, tableOid: number): FieldDescription => ({
  name,
  tableOid,
  column: 1,
  typeOid: 25,
  format: 0,
});
const row = (...v: string[]) => framed(dataRow(v.map((x) => Buffer.from(x))));
const values = (b: Buffer) => readDataRow(b.subarray(5)).map((v) => v?.toString() ?? null);

function rewriter(resolveTables?: TableResolver) {
  const warnings: string[] = [];
  const r = new ResultRewriter({
    masksFor: (d) => (d.masks.length ? new MaskSet(d.masks) : null),
    ...(resolveTables ? { resolveTables } : {}),
    warn: (m) => warnings.push(m),
  });
  return { r, warnings };
}

const maskSsn = { name: 'hide-ssn', effect: 'mask', mask: { columns: ['users.ssn'], style: 'redact' } };

describe('result rewriting: masks and limits for one result', () => {
  before(() => loadPostgresAnalyzer());

  it('asks the catalog for table names a table-qualified rule needs, then masks only that table’s column', async () => {
    const asked: number[][] = [];
    const { r } = rewriter(async (oids) => {
      asked.push(oids);
      return new Map([
        [10, 'public.users'],
        [20, 'public.audit'],
      ]);
    });
    const c = command('select u.ssn, a.ssn from users u, audit a', [maskSsn]);
    const result: Result<Command> = { command: c, statement: 0, fields: [f('ssn', 10), f('ssn', 20)] };
    const description = framed(message(Back.RowDescription, Buffer.alloc(2)));
    const waited = r.rewrite(description, { kind: 'fields', result });
    assert.ok(waited instanceof Promise, 'rows wait for the lookup');
    assert.equal(await waited, description.raw);
    assert.deepEqual(asked, [[10, 20]]);
    const out = r.rewrite(row('1', '2'), { kind: 'row', result });
    assert.ok(Buffer.isBuffer(out));
    assert.deepEqual(values(out), [REDACTED, '2']);
  });

  it('fails closed when the catalog cannot answer: every field named like a masked column is masked', async () => {
    const { r, warnings } = rewriter(async () => {
      throw new Error('connection refused');
    });
    const c = command('select ssn, name from audit', [maskSsn]);
    const result: Result<Command> = { command: c, statement: 0, fields: [f('ssn', 20), f('name', 20)] };
    const out = await r.rewrite(row('123-45-6789', 'Ada'), { kind: 'row', result });
    assert.deepEqual(values(out), [REDACTED, 'Ada']);
    assert.match(warnings.join('\n'), /cannot resolve result table names/);
  });

  it('takes a run of rows whole up to exactly the limit, masking each; past it, leaves the run to go row by row', async () => {
    const { r } = rewriter();
    const c = command('select ssn, name from users', [
      { name: 'hide-ssn', effect: 'mask', mask: { columns: ['*.ssn'], style: 'redact' } },
      { name: 'five', effect: 'limit', limit: { rows: 5 } },
    ]);
    const result: Result<Command> = { command: c, statement: 0, fields: [f('ssn', 0), f('name', 0)] };
    const ev = { kind: 'row', result } as const;
    const runOf = (...names: string[]) => {
      const [run] = new MessageFramer(undefined, true).push(
        Buffer.concat(names.map((n) => dataRow([Buffer.from(`ssn-${n}`), Buffer.from(n)]))),
      );
      assert.ok(run instanceof RowRun);
      return run;
    };
    // The plan is made with the result's first row, on the row-by-row path.
    const first = await r.rewrite(row('ssn-a', 'a'), ev);
    assert.deepEqual(values(first), [REDACTED, 'a']);
    const out = new ChunkOutput();
    const run = runOf('b', 'c', 'd', 'e');
    out.begin([run]);
    const sent = r.runInto(ev, run, out);
    const bytes = out.take();
    assert.equal(sent, bytes.length);
    // Rows 2 to 5: the limit is reached exactly, every value masked.
    assert.deepEqual(
      new MessageFramer().push(bytes).map((m) => values(m.raw)),
      ['b', 'c', 'd', 'e'].map((n) => [REDACTED, n]),
    );
    // A sixth row is past the limit: the run is not taken, nothing is written, nothing counted.
    const late = runOf('f', 'g');
    out.begin([late]);
    assert.equal(r.runInto(ev, late, out), -1);
    assert.equal(out.take().length, 0);
    assert.deepEqual(r.rewrite(row('ssn-f', 'f'), ev), Buffer.alloc(0), 'dropped on the row-by-row path');
  });

  it('forwards rows untouched when the decision masks nothing this result holds', () => {
    const { r } = rewriter(async () => new Map());
    const c = command('select id, name from orders', [
      { name: 'hide-email', effect: 'mask', mask: { columns: ['*.email'], style: 'redact' } },
    ]);
    const result: Result<Command> = { command: c, statement: 0, fields: [f('id', 5), f('name', 5)] };
    const m = row('1', 'x');
    assert.equal(r.rewrite(m, { kind: 'row', result }), m.raw);
  });

  it('plans a statement run again anew when its fields change, and counts each result’s rows from zero', () => {
    const { r } = rewriter();
    // One command, as a statement repeated with new constants shares its facts and decision.
    const c = command('select * from users', [
      { name: 'hide-email', effect: 'mask', mask: { columns: ['*.email'], style: 'redact' } },
      { name: 'one', effect: 'limit', limit: { rows: 1 } },
    ]);
    const run = (fields: FieldDescription[], ...rows: string[][]) => {
      const result: Result<Command> = { command: c, statement: 0, fields };
      return rows.map((v) => {
        const sent = r.rewrite(row(...v), { kind: 'row', result }) as Buffer;
        return sent.length === 0 ? [] : values(sent);
      });
    };
    // No email column yet: the row passes as it is, and the limit drops the second.
    assert.deepEqual(run([f('id', 7), f('name', 7)], ['1', 'ada'], ['2', 'bob']), [['1', 'ada'], []]);
    // The table gained an email column: the same statement now describes other fields.
    assert.deepEqual(run([f('id', 7), f('name', 7), f('email', 7)], ['1', 'ada', 'a@x.io']), [
      ['1', 'ada', REDACTED],
    ]);
    // The same fields again: masked the same way, and counted from zero.
    assert.deepEqual(
      run([f('id', 7), f('name', 7), f('email', 7)], ['2', 'bob', 'b@x.io'], ['3', 'cy', 'c@x.io']),
      [['2', 'bob', REDACTED], []],
    );
  });

  it('drops rows past the limit and ends the result with a notice and the row count it kept', () => {
    const { r } = rewriter();
    const c = command('select id from t', [{ name: 'two', effect: 'limit', limit: { rows: 2 } }]);
    const result: Result<Command> = { command: c, statement: 0, fields: [f('id', 0)] };
    const sent = ['1', '2', '3', '4'].map((v) => r.rewrite(row(v), { kind: 'row', result }) as Buffer);
    assert.deepEqual(
      sent.map((b) => b.length > 0),
      [true, true, false, false],
    );
    const end = r.rewrite(framed(message(Back.CommandComplete, 'SELECT 4')), {
      kind: 'end',
      result,
    }) as Buffer;
    const [notice, done] = new MessageFramer().push(end);
    assert.equal(notice?.type, Back.NoticeResponse);
    assert.equal(
      readNoticeFields(notice!.body).get('M'),
      'result stopped after 2 rows by rule "two" (warden)',
    );
    assert.equal(readCommandTag(done!.body), 'SELECT 2');
  });
});

describe('result rewriting into one output per received chunk', () => {
  before(() => loadPostgresAnalyzer());

  /** Every row of a stream, read in chunks cut at `cuts`, through rewriteInto; and each row through rewrite. */
  function both(rules: unknown[], rows: Buffer[], cuts: number[]) {
    const make = () =>
      new ResultRewriter({
        masksFor: (d) => (d.masks.length ? new MaskSet(d.masks, Buffer.from('k')) : null),
        warn: () => {},
      });
    const c = command('select id, email, note from users', rules);
    const fields = [f('id', 0), f('email', 0), f('note', 0)];
    const stream = Buffer.concat([...rows, message(Back.CommandComplete, `SELECT ${rows.length}`)]);
    const whole: Result<Command> = { command: c, statement: 0, fields };
    const one = make();
    const expected = Buffer.concat(
      new MessageFramer().push(stream).map((m) => {
        const ev = m.type === Back.DataRow ? ('row' as const) : ('end' as const);
        return one.rewrite(m, { kind: ev, result: whole }) as Buffer;
      }),
    );
    const into = make();
    const result: Result<Command> = { command: c, statement: 0, fields };
    const framer = new MessageFramer();
    const out = new ChunkOutput();
    const sent: Buffer[] = [];
    let from = 0;
    for (const cut of [...cuts, stream.length]) {
      const batch = framer.push(stream.subarray(from, cut));
      from = cut;
      out.begin(batch);
      for (const m of batch) {
        const ev = m.type === Back.DataRow ? ('row' as const) : ('end' as const);
        assert.equal(into.rewriteInto(m, { kind: ev, result }, out), undefined);
      }
      sent.push(out.take());
    }
    return { expected, sent: Buffer.concat(sent) };
  }

  const rows = Array.from({ length: 40 }, (_, i) =>
    dataRow([
      Buffer.from(String(i)),
      i % 3 === 0 ? null : Buffer.from(`u${i}@x.io`),
      Buffer.from('n'.repeat(i)),
    ]),
  );
  const tokenizeEmail = { name: 'tok', effect: 'mask', mask: { columns: ['*.email'], style: 'tokenize' } };

  it('writes tokenized rows that grow, split across reads at every byte, as rewriting each row gives them', () => {
    const stream = Buffer.concat(rows);
    for (let cut = 1; cut < stream.length; cut += 7) {
      const { expected, sent } = both([tokenizeEmail], rows, [cut]);
      assert.deepEqual(sent, expected, `split at byte ${cut}`);
    }
    const { expected, sent } = both([tokenizeEmail], rows, [5, 60, 61, 200, 900]);
    assert.deepEqual(sent, expected);
    assert.ok(sent.length > stream.length, 'tokens are longer than these emails');
  });

  it('drops rows past a limit and masks the others in the same chunk', () => {
    const limit = { name: 'ten', effect: 'limit', limit: { rows: 10 } };
    const { expected, sent } = both([tokenizeEmail, limit], rows, [100, 300]);
    assert.deepEqual(sent, expected);
    const framed = new MessageFramer().push(sent);
    assert.equal(framed.filter((m) => m.type === Back.DataRow).length, 10);
  });

  it('sends rows with nothing masked exactly as received', () => {
    const redactNothing = { name: 'r', effect: 'mask', mask: { columns: ['*.ssn'], style: 'redact' } };
    const { expected, sent } = both([redactNothing], rows, [77]);
    assert.deepEqual(sent, expected);
    assert.deepEqual(sent.subarray(0, Buffer.concat(rows).length), Buffer.concat(rows));
  });
});
