// Every mask a decision carries, applied as one: a column any rule masks whole gets the first such
// rule's style; other values pass through each rule's detectors. What engines and the recorder use.
import type { Rule } from '../../config/rules.js';
import type { MaskStyle } from './styles.js';
import { type ColumnRef, Masker, type MaskSpec, type RowPlan } from './values.js';

export type MaskRuleSpec = Extract<Rule, { effect: 'mask' }>['mask'];

/** A mask rule as written in the config, as the Masker takes it. */
export function maskSpecOf(m: MaskRuleSpec): MaskSpec {
  const style: MaskStyle = typeof m.style === 'string' ? m.style : { keepLast: m.style.keep_last };
  // A rule naming columns masks those; it scans free text only when it names detectors too.
  const detectors = m.detectors ?? (m.columns ? [] : undefined);
  return { style, ...(m.columns ? { columns: m.columns } : {}), ...(detectors ? { detectors } : {}) };
}

const PLAN_CACHE_LIMIT = 256;

export class MaskSet {
  private readonly maskers: Masker[];
  private readonly plans = new Map<string, RowPlan>();

  /** `tokenKey` is the deployment's tokenization key; required when a rule uses `style: tokenize`. */
  constructor(masks: readonly MaskRuleSpec[], tokenKey?: Buffer) {
    this.maskers = masks.map((m) => new Masker(maskSpecOf(m), tokenKey));
  }

  get empty(): boolean {
    return this.maskers.length === 0;
  }

  plan(columns: readonly ColumnRef[]): RowPlan {
    const key = columns.map((c) => `${c.table ?? '\u0000'}\u0001${c.name}`).join('\u0002');
    const hit = this.plans.get(key);
    if (hit) return hit;
    const plans = this.maskers.map((m) => m.plan(columns));
    const whole = columns.map((_, i) => plans.findIndex((p) => p.masked[i]));
    const scanners = this.maskers.filter((m) => m.detectors.length > 0);
    const plan: RowPlan = {
      masked: whole.map((w) => w >= 0),
      mask: (values) =>
        values.map((v, i) => {
          if (v === null) return null;
          const w = whole[i]!;
          if (w >= 0) return this.maskers[w]!.replace(v);
          let out = v;
          for (const m of scanners) out = m.maskText(out);
          return out;
        }),
    };
    if (this.plans.size >= PLAN_CACHE_LIMIT) this.plans.delete(this.plans.keys().next().value as string);
    this.plans.set(key, plan);
    return plan;
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
