import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MaskSet } from '../../policy/mask/mask-set.js';
import { REDACTED, tokenize } from '../../policy/mask/styles.js';
import type { RowPlan } from '../../policy/mask/values.js';
import { ChunkOutput } from './chunk-output.js';
import {
  Back,
  dataRow,
  type FieldDescription,
  type Message,
  MessageFramer,
  message,
  ProtocolError,
  readDataRow,
} from './codec.js';
import { commandCompleteWithRows, maskCopyRow, RowMasker } from './row-mask.js';

/** One DataRow through a masker built for its shape, as the rewriter does: the same bytes when unchanged. */
const maskRow = (m: Message, fields: readonly FieldDescription[], plan: RowPlan, scans: boolean): Buffer =>
  new RowMasker(fields, plan, scans).mask(m.raw) ?? m.raw;

const field = (name: string, typeOid: number, format: number): FieldDescription => ({
  name,
  tableOid: 0,
  column: 0,
  typeOid,
  format,
});
const cols = (fs: FieldDescription[]) => fs.map((x) => ({ table: null, name: x.name }));
const framed = (b: Buffer) => new MessageFramer().push(b)[0]!;
const int4 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

describe('masking result bytes', () => {
  const masks = new MaskSet([{ columns: ['ssn', 'pin', 'doc', 'note'], style: 'redact' }]);

  it('rewrites masked text-format values and fixes the message length', () => {
    const fields = [field('id', 23, 0), field('ssn', 25, 0)];
    const m = framed(dataRow([Buffer.from('1'), Buffer.from('123-45-6789')]));
    const out = maskRow(m, fields, masks.plan(cols(fields)), false);
    assert.equal(out.readInt32BE(1), out.length - 1);
    assert.deepEqual(
      readDataRow(out.subarray(5)).map((v) => v?.toString()),
      ['1', REDACTED],
    );
  });

  it('masks binary text and jsonb as UTF-8 (jsonb keeps its version byte, stays JSON), other binary types as NULL', () => {
    const fields = [field('ssn', 1043, 1), field('doc', 3802, 1), field('pin', 23, 1), field('id', 23, 1)];
    const jsonb = Buffer.concat([Buffer.from([1]), Buffer.from('{"a":1}')]);
    const m = framed(dataRow([Buffer.from('123-45-6789'), jsonb, int4(1234), int4(7)]));
    const cells = readDataRow(maskRow(m, fields, masks.plan(cols(fields)), false).subarray(5));
    assert.equal(cells[0]?.toString(), REDACTED);
    assert.equal(cells[1]?.[0], 1);
    assert.equal(cells[1]?.subarray(1).toString(), JSON.stringify(REDACTED));
    assert.equal(cells[2], null, 'a masked integer cannot say [masked] in binary');
    assert.deepEqual(cells[3], int4(7));
  });

  it('returns the very same bytes when no value changes, and keeps NULLs', () => {
    const scanning = new MaskSet([{ detectors: ['card'], style: 'redact' }]);
    const fields = [field('name', 25, 0), field('ssn', 25, 0)];
    const m = framed(dataRow([Buffer.from('Ada'), null]));
    assert.equal(maskRow(m, fields, scanning.plan(cols(fields)), true), m.raw);
  });

  it('masks a row where it lies in a received chunk, as from its own buffer', () => {
    const fields = [field('id', 23, 0), field('ssn', 25, 0)];
    const rows = [dataRow([Buffer.from('1'), Buffer.from('111-22-3333')]), dataRow([Buffer.from('2'), null])];
    const chunk = Buffer.concat([Buffer.from('xyz'), ...rows, Buffer.from('tail')]);
    const masker = new RowMasker(fields, masks.plan(cols(fields)), false);
    const first = masker.mask(chunk, 3, 3 + rows[0]!.length);
    assert.deepEqual(first, masker.mask(rows[0]!));
    assert.deepEqual(
      readDataRow(first!.subarray(5)).map((v) => v?.toString()),
      ['1', REDACTED],
    );
    const at = 3 + rows[0]!.length;
    assert.equal(masker.mask(chunk, at, at + rows[1]!.length), null, 'a NULL stays NULL: nothing to rewrite');
  });

  it('tokenizes ASCII in place and other text through decoding, to the same tokens as the text', () => {
    const key = Buffer.alloc(32, 3);
    const tokens = new MaskSet([{ columns: ['email'], style: 'tokenize' }], key);
    const fields = [field('email', 25, 0), field('email', 1043, 1)];
    const values = ['ada@example.com', 'zoë@exämple.com'];
    for (const v of values) {
      const m = framed(dataRow([Buffer.from(v), Buffer.from(v)]));
      const cells = readDataRow(maskRow(m, fields, tokens.plan(cols(fields)), false).subarray(5));
      assert.deepEqual(
        cells.map((c) => c?.toString()),
        [tokenize(v, key), tokenize(v, key)],
      );
    }
  });

  it('tokenizes every value of a 300-field row to the token of its text', () => {
    const key = Buffer.alloc(32, 3);
    const tokens = new MaskSet([{ columns: ['email'], style: 'tokenize' }], key);
    const fields = Array.from({ length: 300 }, () => field('email', 25, 0));
    const values = fields.map((_, i) => `user${i}@example.com`);
    const m = framed(dataRow(values.map((v) => Buffer.from(v))));
    const out = maskRow(m, fields, tokens.plan(cols(fields)), false);
    assert.deepEqual(
      readDataRow(out.subarray(5)).map((c) => c?.toString()),
      values.map((v) => tokenize(v, key)),
    );
    assert.equal(out.readInt32BE(1), out.length - 1);
  });

  it('writes a measured row between the messages around it, as mask() gives it', () => {
    const key = Buffer.alloc(32, 3);
    const tokens = new MaskSet([{ columns: ['email'], style: 'tokenize' }], key);
    const fields = [field('id', 23, 0), field('email', 25, 0)];
    const masker = new RowMasker(fields, tokens.plan(cols(fields)), false);
    const row = dataRow([Buffer.from('7'), Buffer.from('a@b.c')]);
    const before = message(Back.NoData);
    const chunk = Buffer.concat([before, row, before]);
    const batch = new MessageFramer().push(chunk);
    const out = new ChunkOutput();
    out.begin(batch);
    out.pass(batch[0]!);
    const size = masker.measure(chunk, before.length, before.length + row.length);
    masker.writeTo(out, batch[1]!, size);
    out.pass(batch[2]!);
    assert.deepEqual(out.take(), Buffer.concat([before, masker.mask(row)!, before]));
    const nothing = dataRow([Buffer.from('8'), null]);
    assert.equal(masker.measure(nothing, 0, nothing.length), -1, 'a NULL stays NULL');
  });

  it('refuses a row whose field lengths do not fit the message (the session then ends)', () => {
    const fields = [field('id', 23, 0), field('ssn', 25, 0)];
    const masker = new RowMasker(fields, masks.plan(cols(fields)), false);
    const good = dataRow([Buffer.from('1'), Buffer.from('123-45-6789')]);
    const longField = Buffer.from(good);
    longField.writeInt32BE(500, 5 + 2 + 4 + 1); // the ssn's length word
    const extraField = Buffer.from(good);
    extraField.writeInt16BE(3, 5);
    assert.throws(() => masker.mask(longField), ProtocolError);
    assert.throws(() => masker.mask(extraField), ProtocolError);
    assert.throws(() => masker.mask(good.subarray(0, 6)), ProtocolError);
  });

  it('masks COPY text rows through their escapes and NULLs', () => {
    const scanning = new MaskSet([{ detectors: ['card'], style: 'keep-last-4' }]);
    const cols = [0, 1, 2].map(() => ({ table: null, name: '' }));
    const m = framed(message(Back.CopyData, Buffer.from('a\\tb\t4111 1111 1111 1111\t\\N\n')));
    const out = maskCopyRow(m.raw, m.body, scanning.plan(cols));
    assert.equal(out.subarray(5).toString(), 'a\\tb\t**** **** **** 1111\t\\N\n');
    const clean = framed(message(Back.CopyData, Buffer.from('x\ty\t\\N\n')));
    assert.equal(maskCopyRow(clean.raw, clean.body, scanning.plan(cols)), clean.raw);
  });

  it('rewrites the row count of a CommandComplete tag', () => {
    assert.equal(commandCompleteWithRows('SELECT 1000', 5).subarray(5).toString(), 'SELECT 5\0');
    assert.equal(commandCompleteWithRows('INSERT 0 9', 5).subarray(5).toString(), 'INSERT 0 5\0');
  });
});
