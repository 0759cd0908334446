import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type MaskRuleSpec, MaskSet } from '../../policy/mask/mask-set.js';
import type { RowPlan } from '../../policy/mask/values.js';
import {
  Back,
  dataRow,
  type FieldDescription,
  type Message,
  MessageFramer,
  message,
  readDataRow,
} from './codec.js';
import { encodingOf, maskCopyRow, RowMasker } from './row-mask.js';

/** One DataRow through a masker built for its shape, as the rewriter does: the same bytes when unchanged. */
const maskRow = (m: Message, fields: readonly FieldDescription[], plan: RowPlan, scans: boolean): Buffer =>
  new RowMasker(fields, plan, scans).mask(m.raw) ?? m.raw;

// The rewrite written the plain way (decode every field, mask, re-encode with Buffer.concat): the
// one-buffer rewrite must give the same bytes for every row, and `raw` itself where this gives no change.
function referenceDataRow(
  raw: Buffer,
  body: Buffer,
  fields: readonly FieldDescription[],
  plan: RowPlan,
  scans: boolean,
): Buffer {
  const cells = readDataRow(body);
  const encodings = cells.map((_, i) => encodingOf(fields[i]));
  const values = cells.map((c, i) => {
    if (c === null || encodings[i] === 'opaque' || !(plan.masked[i] || scans)) return null;
    return encodings[i] === 'jsonb' ? c.toString('utf8', 1) : c.toString('utf8');
  });
  const masked = plan.mask(values);
  let changed = false;
  const out = cells.map((c, i) => {
    if (c === null) return null;
    if (encodings[i] === 'opaque') {
      if (!plan.masked[i]) return c;
      changed = true;
      return null;
    }
    const before = values[i];
    let after = masked[i];
    if (before === null || before === undefined || after === null || after === undefined || after === before)
      return c;
    changed = true;
    if (plan.masked[i] && [114, 3802].includes(fields[i]?.typeOid ?? 0)) after = JSON.stringify(after);
    const text = Buffer.from(after, 'utf8');
    return encodings[i] === 'jsonb' ? Buffer.concat([Buffer.from([1]), text]) : text;
  });
  return changed ? dataRow(out) : raw;
}

const UNESCAPE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
function referenceCopyRow(raw: Buffer, body: Buffer, plan: RowPlan): Buffer {
  const line = body.toString('utf8');
  const nl = line.endsWith('\n') ? 1 : 0;
  const fields = line.slice(0, line.length - nl).split('\t');
  const values = fields.map((s) =>
    s === '\\N'
      ? null
      : s.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
          if (e[0] === 'x' && e.length > 1) return String.fromCharCode(Number.parseInt(e.slice(1), 16));
          if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
          return UNESCAPE[e] ?? e;
        }),
  );
  const masked = plan.mask(values);
  if (masked.every((v, i) => v === values[i])) return raw;
  const escapeField = (s: string) =>
    s.replace(/[\\\t\n\r\b\f\v]/g, (c) => {
      const named = Object.entries(UNESCAPE).find(([, v]) => v === c);
      return named ? `\\${named[0]}` : '\\\\';
    });
  const text = masked.map((v, i) => (v === values[i] ? fields[i] : escapeField(v ?? ''))).join('\t');
  return message(Back.CopyData, Buffer.from(text + (nl ? '\n' : ''), 'utf8'));
}

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TEXTS = [
  '',
  'x',
  '[masked]',
  '"[masked]"',
  'ann@example.com',
  '4111 1111 1111 1111',
  '078-05-1120',
  'naïve café ✓ 中文 😀',
  '{"a":1,"b":"bob@example.org"}',
  'tab\there, newline\nthere, back\\slash',
  'a'.repeat(150),
  'call 4111-1111-1111-1111 or mail x@y.io',
];
const TYPES = [25, 1043, 23, 114, 3802, 1042, 17];
const STYLES: MaskRuleSpec['style'][] = ['redact', 'keep-last-4', 'tokenize', { keep_last: 2 }];

describe('masking rows in one buffer agrees with decoding, masking and re-encoding every field', () => {
  it('gives the same DataRow bytes for random NULLs, empty and UTF-8 values, binary formats, masked and scanned fields', () => {
    const next = random(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
    let rewritten = 0;
    for (let round = 0; round < 300; round++) {
      const n = Math.floor(next() * 7);
      const fields: FieldDescription[] = Array.from({ length: n }, (_, i) => ({
        name: `c${i}`,
        tableOid: 0,
        column: i,
        typeOid: pick(TYPES),
        format: next() < 0.4 ? 1 : 0,
      }));
      const columns = Array.from({ length: n }, (_, i) => `c${i}`).filter(() => next() < 0.4);
      const masks: MaskRuleSpec[] = [{ columns: columns.length ? columns : ['none'], style: pick(STYLES) }];
      if (next() < 0.5) masks.push({ detectors: ['card', 'email', 'ssn'], style: pick(STYLES) });
      const set = new MaskSet(masks, Buffer.alloc(32, 3));
      const plan = set.plan(fields.map((f) => ({ table: null, name: f.name })));
      for (let r = 0; r < 40; r++) {
        // Sometimes a row with more or fewer values than described fields.
        const width = next() < 0.05 ? Math.floor(next() * 8) : n;
        const values = Array.from({ length: width }, (_, i) => {
          if (next() < 0.15) return null;
          const f = fields[i];
          if (f?.format === 1 && f.typeOid === 23) return Buffer.from([0, 0, 4, 210]);
          const text = Buffer.from(pick(TEXTS), 'utf8');
          return f?.format === 1 && f.typeOid === 3802 ? Buffer.concat([Buffer.from([1]), text]) : text;
        });
        const m = new MessageFramer().push(dataRow(values))[0]!;
        for (const scans of [set.scans, false, true]) {
          const want = referenceDataRow(m.raw, m.body, fields, plan, scans);
          const got = maskRow(m, fields, plan, scans);
          assert.deepEqual(got, want, `fields ${JSON.stringify(fields)}, masks ${JSON.stringify(masks)}`);
          assert.equal(got === m.raw, want === m.raw, 'an unchanged row is forwarded as the same buffer');
          if (got !== m.raw) rewritten++;
        }
      }
    }
    assert.ok(rewritten > 1000, `enough rows were rewritten to mean something (${rewritten})`);
  });

  it('gives the same CopyData bytes for random text COPY rows with escapes and NULLs', () => {
    const next = random(11);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
    const escapeField = (s: string) => s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n');
    for (let round = 0; round < 200; round++) {
      const n = 1 + Math.floor(next() * 5);
      const columns = Array.from({ length: n }, (_, i) => `c${i}`).filter(() => next() < 0.4);
      const masks: MaskRuleSpec[] = [{ columns: columns.length ? columns : ['none'], style: pick(STYLES) }];
      if (next() < 0.5) masks.push({ detectors: ['card', 'email'], style: pick(STYLES) });
      const plan = new MaskSet(masks, Buffer.alloc(32, 3)).plan(
        Array.from({ length: n }, (_, i) => ({ table: null, name: `c${i}` })),
      );
      for (let r = 0; r < 30; r++) {
        const width = next() < 0.05 ? 1 + Math.floor(next() * 6) : n;
        const line = Array.from({ length: width }, () =>
          next() < 0.15 ? '\\N' : escapeField(pick(TEXTS)),
        ).join('\t');
        const m = new MessageFramer().push(
          message(Back.CopyData, Buffer.from(next() < 0.9 ? `${line}\n` : line)),
        )[0]!;
        const want = referenceCopyRow(m.raw, m.body, plan);
        const got = maskCopyRow(m.raw, m.body, plan);
        assert.deepEqual(got, want, `line ${JSON.stringify(line)}, masks ${JSON.stringify(masks)}`);
        assert.equal(got === m.raw, want === m.raw);
      }
    }
  });
});
