// The rules a gateway enforces right now: the config file's rules, then the newest rule set
// applied through the API. Swapped whole on change, so a decision never sees half of an update.
import type { Rule } from '../config/rules.js';
import { Decider, type Decision, type DecisionContext } from './decide.js';
import type { Facts } from './facts.js';

/** Where API-applied rule sets live (the store); kept abstract so policy/ stays free of I/O code. */
export interface RuleVersions {
  currentVersion(): Promise<number>;
  current(): Promise<{ version: number; rules: Rule[] } | undefined>;
}

export type RuleSource = 'config' | 'api';

interface Snapshot {
  version: number;
  rules: ReadonlyArray<Rule & { source: RuleSource }>;
  /** API rules dropped because the config file defines a rule of the same name. */
  shadowed: string[];
  decider: Decider;
}

export class RulesInForce {
  private snapshot: Snapshot;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<boolean> | undefined;

  constructor(
    private readonly configRules: readonly Rule[],
    private readonly versions: RuleVersions,
    private readonly onChange: (s: { version: number; shadowed: string[] }) => void = () => {},
  ) {
    this.snapshot = this.build(0, []);
  }

  get version(): number {
    return this.snapshot.version;
  }

  get rules(): ReadonlyArray<Rule & { source: RuleSource }> {
    return this.snapshot.rules;
  }

  get shadowed(): readonly string[] {
    return this.snapshot.shadowed;
  }

  decide(ctx: DecisionContext, facts: Facts): Decision {
    return this.snapshot.decider.decide(ctx, facts);
  }

  /** Reads the store's version and reloads when it moved; true when the rules changed. */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.load().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Polls the store every `intervalMs`; a failed poll keeps the rules in force and is retried. */
  watch(intervalMs: number, onError: (err: Error) => void): void {
    this.timer = setInterval(() => {
      this.refresh().catch((err: Error) => onError(err));
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async load(): Promise<boolean> {
    if ((await this.versions.currentVersion()) === this.snapshot.version) return false;
    const current = await this.versions.current();
    if (!current || current.version <= this.snapshot.version) return false;
    this.snapshot = this.build(current.version, current.rules);
    this.onChange({ version: current.version, shadowed: this.snapshot.shadowed });
    return true;
  }

  private build(version: number, apiRules: readonly Rule[]): Snapshot {
    const taken = new Set(this.configRules.map((r) => r.name));
    const shadowed = apiRules.filter((r) => taken.has(r.name)).map((r) => r.name);
    const rules = [
      ...this.configRules.map((r) => ({ ...r, source: 'config' as const })),
      ...apiRules.filter((r) => !taken.has(r.name)).map((r) => ({ ...r, source: 'api' as const })),
    ];
    return { version, rules, shadowed, decider: new Decider(rules) };
  }
}
