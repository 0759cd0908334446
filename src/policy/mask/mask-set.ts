// Every mask a decision carries, applied as one: a column any rule masks whole gets the first such
// rule's style; other values pass through each rule's detectors. What engines and the recorder use.
import type { Rule } from '../../config/rules.js';
import { type MaskStyle, type Replacer, replacerFor } from './styles.js';
import { type ColumnRef, Masker, type MaskSpec, type RowPlan } from './values.js';

export type MaskRuleSpec = Extract<Rule, { effect: 'mask' }>['mask'];

/** A result field computed from a masked column (a decision's `derived`, placed by `fieldPositions`). */
export interface DerivedField {
  field: number;
  style: MaskRuleSpec['style'];
}

const styleOf = (s: MaskRuleSpec['style']): MaskStyle =>
  typeof s === 'string' ? s : { keepLast: s.keep_last };

/** A mask rule as written in the config, as the Masker takes it. */
export function maskSpecOf(m: MaskRuleSpec): MaskSpec {
  const style = styleOf(m.style);
  // A rule naming columns masks those; it scans free text only when it names detectors too.
  const detectors = m.detectors ?? (m.columns ? [] : undefined);
  return { style, ...(m.columns ? { columns: m.columns } : {}), ...(detectors ? { detectors } : {}) };
}

const PLAN_CACHE_LIMIT = 256;

export class MaskSet {
  private readonly maskers: Masker[];
  private readonly plans = new Map<string, RowPlan>();
  private readonly styles = new Map<string, Replacer>();

  /** `tokenKey` is the deployment's tokenization key; required when a rule uses `style: tokenize`. */
  constructor(
    masks: readonly MaskRuleSpec[],
    private readonly tokenKey?: Buffer,
  ) {
    this.maskers = masks.map((m) => new Masker(maskSpecOf(m), tokenKey));
  }

  get empty(): boolean {
    return this.maskers.length === 0;
  }

  /** Whether any rule runs detectors, so values no column rule names may still change. */
  get scans(): boolean {
    return this.maskers.some((m) => m.detectors.length > 0);
  }

  /**
   * The plan for one result shape: columns by their metadata, plus `derived` fields (computed
   * from a masked column, so the metadata cannot name them) masked whole in their rule's style.
   */
  plan(columns: readonly ColumnRef[], derived: readonly DerivedField[] = []): RowPlan {
    const key =
      columns.map((c) => `${c.table ?? '\u0000'}\u0001${c.name}`).join('\u0002') +
      derived.map((d) => `\u0003${d.field}:${JSON.stringify(d.style)}`).join('');
    const hit = this.plans.get(key);
    if (hit) return hit;
    const plans = this.maskers.map((m) => m.plan(columns));
    const replacers: Array<Replacer | undefined> = columns.map((_, i) => {
      const w = plans.findIndex((p) => p.masked[i]);
      return w >= 0 ? this.maskers[w]!.replace : undefined;
    });
    for (const d of derived) replacers[d.field] ??= replacerFor(styleOf(d.style), this.tokenKey);
    const scanners = this.maskers.filter((m) => m.detectors.length > 0);
    const maskAt = (i: number, v: string): string => {
      const whole = replacers[i];
      if (whole) return whole(v);
      let out = v;
      for (const m of scanners) out = m.maskText(out);
      return out;
    };
    const plan: RowPlan = {
      masked: replacers.map((r) => r !== undefined),
      scans: scanners.length > 0,
      constants: replacers.map((r) => r?.constant),
      fromBytes: replacers.map((r) => r?.fromBytes),
      fromBytesInto: replacers.map((r) => r?.fromBytesInto),
      mask: (values) => values.map((v, i) => (v === null ? null : maskAt(i, v))),
      maskAt,
    };
    if (this.plans.size >= PLAN_CACHE_LIMIT) this.plans.delete(this.plans.keys().next().value as string);
    this.plans.set(key, plan);
    return plan;
  }

  /**
   * The replacer of a rule's style, as result columns masked in that style use it: a tokenized
   * parameter or literal gets the token its value gets in results.
   */
  replacer(style: MaskRuleSpec['style']): Replacer {
    const key = JSON.stringify(style);
    let hit = this.styles.get(key);
    if (!hit) {
      hit = replacerFor(styleOf(style), this.tokenKey);
      this.styles.set(key, hit);
    }
    return hit;
  }

  maskText(text: string): string {
    let out = text;
    for (const m of this.maskers) out = m.maskText(out);
    return out;
  }

  maskJson(value: unknown): unknown {
    let out = value;
    for (const m of this.maskers) out = m.maskJson(out);
    return out;
  }
}
