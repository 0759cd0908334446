import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkOutput } from './chunk-output.js';
import { Back, dataRow, type Frame, type Message, MessageFramer, message } from './codec.js';

const row = (...v: string[]) => dataRow(v.map((x) => Buffer.from(x)));
const complete = message(Back.CommandComplete, 'SELECT 3');

/** Rewrites a batch: rows whose first value is `x` become `replacement` (written in place), others pass. */
function rewrite(out: ChunkOutput, batch: Message[], replacement: Buffer): Buffer {
  out.begin(batch);
  for (const m of batch) {
    if (m.type === Back.DataRow && m.body[6] === 0x78) {
      out.replace(m, replacement.length);
      replacement.copy(out.buffer, out.room(replacement.length));
    } else out.pass(m);
  }
  return out.take();
}

describe('one output per received chunk', () => {
  it('sends a batch with nothing changed as the received chunk itself, not a copy', () => {
    const chunk = Buffer.concat([row('a'), row('b'), complete]);
    const batch = new MessageFramer().push(chunk);
    const out = new ChunkOutput();
    out.begin(batch);
    for (const m of batch) out.pass(m);
    assert.equal(out.take(), chunk);
  });

  it('writes changed rows between unchanged messages of one chunk in order, in one buffer', () => {
    const chunk = Buffer.concat([row('a'), row('x'), row('b'), row('x'), complete]);
    const replacement = row('[masked]');
    const sent = rewrite(new ChunkOutput(), new MessageFramer().push(chunk), replacement);
    assert.deepEqual(sent, Buffer.concat([row('a'), replacement, row('b'), replacement, complete]));
    assert.deepEqual(chunk, Buffer.concat([row('a'), row('x'), row('b'), row('x'), complete]));
  });

  it('keeps rows in order when a row split across two reads comes first in the second chunk', () => {
    const stream = Buffer.concat([row('a'), row('x', 'long enough to split'), row('b'), row('x'), complete]);
    const replacement = row('[masked]');
    const expected = Buffer.concat([row('a'), replacement, row('b'), replacement, complete]);
    for (let cut = 1; cut < stream.length; cut++) {
      const framer = new MessageFramer();
      const out = new ChunkOutput();
      const sent = Buffer.concat([
        rewrite(out, framer.push(stream.subarray(0, cut)), replacement),
        rewrite(out, framer.push(stream.subarray(cut)), replacement),
      ]);
      assert.deepEqual(sent, expected, `split at byte ${cut}`);
    }
  });

  it('passes a split row and the unchanged rows after it as they came, with nothing masked', () => {
    const stream = Buffer.concat([row('a', 'spanning two reads'), row('b'), complete]);
    const framer = new MessageFramer();
    const out = new ChunkOutput();
    const first = rewrite(out, framer.push(stream.subarray(0, 10)), Buffer.alloc(0));
    const second = rewrite(out, framer.push(stream.subarray(10)), Buffer.alloc(0));
    assert.deepEqual(Buffer.concat([first, second]), stream);
  });

  it('grows the buffer when rows grow more than the first changed row foretold', () => {
    // The first changed row shrinks, so no growth is expected; every later one grows a lot.
    const rows = [row('x', 'a long value that the first replacement shrinks'), ...Array(50).fill(row('x'))];
    const chunk = Buffer.concat(rows);
    const batch = new MessageFramer().push(chunk);
    const big = row('y'.repeat(300));
    const small = row('s');
    const out = new ChunkOutput();
    out.begin(batch);
    batch.forEach((m, i) => {
      const b = i === 0 ? small : big;
      out.replace(m, b.length);
      b.copy(out.buffer, out.room(b.length));
      assert.equal(out.lastLength, b.length);
      assert.deepEqual(out.lastBytes(), b);
    });
    assert.deepEqual(out.take(), Buffer.concat([small, ...Array(50).fill(big)]));
  });

  it('joins the unchanged end of one rewritten row and the start of the next, patching the new length in', () => {
    // Each row's first value becomes "[masked]": the rest of the row and the next row's head, up to its
    // first value, are one range of the chunk.
    const rows = [row('secret-1', 'a'), row('s2', 'bb'), row('a longer secret', 'ccc')];
    const chunk = Buffer.concat([Buffer.from('junk'), ...rows, complete]);
    const batch = new MessageFramer().push(chunk.subarray(4));
    const out = new ChunkOutput();
    out.begin(batch);
    const value = Buffer.from('[masked]');
    const heads: number[] = [];
    for (const m of batch) {
      if (m.type !== Back.DataRow) {
        out.pass(m);
        continue;
      }
      const f = m as Frame;
      const valueEnd = f.start + 11 + f.chunk.readInt32BE(f.start + 7);
      const size = f.end - f.start - (valueEnd - f.start - 11) + value.length;
      out.replace(m, size);
      const header = out.copy(f.chunk, f.start, f.start + 7);
      heads.push(header);
      out.setInt32(header + 1, size - 1);
      const at = out.room(4 + value.length);
      out.buffer.writeInt32BE(value.length, at);
      value.copy(out.buffer, at + 4);
      out.copy(f.chunk, valueEnd, f.end);
      assert.equal(out.lastLength, size);
      assert.deepEqual(out.lastBytes(), row('[masked]', ['a', 'bb', 'ccc'][heads.length - 1]!));
    }
    const sent = out.take();
    assert.deepEqual(sent, Buffer.concat([...['a', 'bb', 'ccc'].map((v) => row('[masked]', v)), complete]));
  });

  it('rewrites every row of a batch (a value made NULL) with each new length patched in', () => {
    const rows = Array.from({ length: 20 }, (_, i) => row(`secret-${i}`, `v${i}`));
    const batch = new MessageFramer().push(Buffer.concat(rows));
    const out = new ChunkOutput();
    out.begin(batch);
    for (const m of batch) {
      const f = m as Frame;
      const valueEnd = f.start + 11 + f.chunk.readInt32BE(f.start + 7);
      const size = f.end - valueEnd + 11;
      out.replace(m, size);
      out.setInt32(out.copy(f.chunk, f.start, f.start + 7) + 1, size - 1);
      out.buffer.writeInt32BE(-1, out.room(4)); // the value becomes NULL
      out.copy(f.chunk, valueEnd, f.end);
    }
    const expected = rows.map((_, i) => dataRow([null, Buffer.from(`v${i}`)]));
    assert.deepEqual(out.take(), Buffer.concat(expected));
  });

  it('copies from the chunk what rows that grew have already written over in the buffer', () => {
    // The first row shrinks (the buffer is sized to the chunk), the second grows past what the first
    // saved, so the rows after it are no longer where the buffer kept a copy of the chunk.
    const long = 'v'.repeat(20);
    const plan: Array<[Buffer, Buffer | null]> = [
      [row('x', long), row('s')],
      [row('x', 'b'), row('y'.repeat(36))],
      [row('c', 'unchanged'), null],
      [row('d', 'unchanged too'), null],
      [row('x', long), row('s')],
      [row('e', 'last'), null],
    ];
    const batch = new MessageFramer().push(Buffer.concat(plan.map(([m]) => m)));
    const out = new ChunkOutput();
    out.begin(batch);
    batch.forEach((m, i) => {
      const replacement = plan[i]![1];
      if (replacement === null) out.pass(m);
      else {
        out.replace(m, replacement.length);
        replacement.copy(out.buffer, out.room(replacement.length));
      }
    });
    assert.deepEqual(out.take(), Buffer.concat(plan.map(([m, r]) => r ?? m)));
  });

  it('keeps unchanged bytes of every length between rewritten rows, a few bytes or many', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 7, 250, 251, 252, 253, 300, 1000]) {
      const plan: Array<[Buffer, Buffer | null]> = [
        [row('x', 'a value to shrink'), row('s')],
        [row('c', 'k'.repeat(n)), null],
        [row('x', 'another'), row('[masked]')],
        [row('d', 'q'.repeat(n)), null],
        [row('x', 'and a third'), row('s')],
      ];
      const batch = new MessageFramer().push(Buffer.concat(plan.map(([m]) => m)));
      const out = new ChunkOutput();
      out.begin(batch);
      batch.forEach((m, i) => {
        const replacement = plan[i]![1];
        if (replacement === null) out.pass(m);
        else {
          out.replace(m, replacement.length);
          replacement.copy(out.buffer, out.room(replacement.length));
        }
      });
      assert.deepEqual(out.take(), Buffer.concat(plan.map(([m, r]) => r ?? m)), `${n} bytes`);
    }
  });

  it('drops a message replaced by no bytes and reports its length as 0', () => {
    const chunk = Buffer.concat([row('a'), row('b'), complete]);
    const batch = new MessageFramer().push(chunk);
    const out = new ChunkOutput();
    out.begin(batch);
    out.pass(batch[0]!);
    out.put(batch[1]!, Buffer.alloc(0));
    assert.equal(out.lastLength, 0);
    out.put(batch[2]!, message(Back.CommandComplete, 'SELECT 1'));
    assert.deepEqual(out.take(), Buffer.concat([row('a'), message(Back.CommandComplete, 'SELECT 1')]));
  });

  it('starts empty after take: writing the next batch leaves the bytes already taken as they were', () => {
    const out = new ChunkOutput();
    const first = rewrite(
      out,
      new MessageFramer().push(Buffer.concat([row('x'), row('a')])),
      row('[masked]'),
    );
    const second = rewrite(out, new MessageFramer().push(Buffer.concat([row('x'), row('b')])), row('other'));
    assert.deepEqual(first, Buffer.concat([row('[masked]'), row('a')]));
    assert.deepEqual(second, Buffer.concat([row('other'), row('b')]));
  });
});
