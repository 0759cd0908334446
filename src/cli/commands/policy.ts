// `warden policy ls|apply|history|show|test`: the rules in force, applying a versioned rule
// set from a file, its history, and what Warden would decide about a command.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { formatDuration } from '../../config/duration.js';
import { loadRulesFile } from '../../config/rules-file.js';
import { ApiClient } from '../client.js';
import { commaList } from '../options.js';
import { printJson, printTable } from '../output.js';

interface Explained {
  masked_sample?: { columns: string[]; rows: Array<Array<string | null>> };
  masked_text?: string;
  facts: Record<string, unknown>;
  decision: {
    action: string;
    rules: string[];
    decided_by: string | null;
    message: string | null;
    masks: Array<Record<string, unknown>>;
    derived: Array<{ statement: number; output: number; name: string; rule: string }>;
    limits: {
      rows: number | null;
      rows_rule: string | null;
      duration_ms: number | null;
      duration_rule: string | null;
    };
  };
}

interface DiffView {
  added: Array<Record<string, unknown>>;
  removed: Array<Record<string, unknown>>;
  changed: Array<{ name: string; fields: string[] }>;
  reordered: boolean;
  summary: string;
}

interface VersionSummary {
  version: number;
  created_at: string;
  actor: Record<string, unknown>;
  comment: string;
  rules: number;
}

function printDiff(d: DiffView): void {
  for (const r of d.added) process.stdout.write(`+ ${String(r.name)} (${String(r.effect)})\n`);
  for (const r of d.removed) process.stdout.write(`- ${String(r.name)} (${String(r.effect)})\n`);
  for (const c of d.changed) process.stdout.write(`~ ${c.name}: ${c.fields.join(', ')}\n`);
  if (d.reordered) process.stdout.write('~ order of rules changed\n');
}

export function policyCommands(program: Command): void {
  const policy = program.command('policy').description('guardrail rules');

  policy
    .command('ls')
    .description('list the rules in force')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const res = await new ApiClient().get<{
        default: string;
        version: number;
        rules: Array<Record<string, unknown>>;
        shadowed: string[];
      }>('/api/policy/rules');
      if (o.json) return printJson(res);
      printTable(
        ['NAME', 'SOURCE', 'EFFECT', 'MATCH', 'WHEN'],
        res.rules.map((r) => [
          String(r.name),
          r.source === 'api' ? `api v${res.version}` : 'config',
          String(r.effect),
          JSON.stringify(r.match ?? {}),
          JSON.stringify(r.when ?? {}),
        ]),
      );
      process.stdout.write(`default: ${res.default}; applied version: ${res.version}\n`);
      if (res.shadowed.length > 0) {
        process.stdout.write(
          `ignored (the config file defines the same names): ${res.shadowed.join(', ')}\n`,
        );
      }
    });

  policy
    .command('apply')
    .description('replace the API-managed rules with the rules in a YAML or JSON file (a new version)')
    .requiredOption('-f, --file <path>', 'rules file: `rules: [...]` or a list of rules')
    .option('--dry-run', 'show what would change without applying it')
    .option('--if-version <n>', 'apply only if the version in force is still <n>', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a version number');
      return n;
    })
    .option('-m, --message <text>', 'why (kept with the version and in the audit event)', '')
    .option('--json', 'print JSON')
    .action(
      async (o: { file: string; dryRun?: boolean; ifVersion?: number; message: string; json?: boolean }) => {
        // Validated here first, so mistakes are named by file:line before anything is sent.
        const { input } = loadRulesFile(o.file);
        const res = await new ApiClient().request<{
          version: number;
          changed: boolean;
          dry_run: boolean;
          diff: DiffView;
        }>('PUT', '/api/policy/rules', {
          rules: input,
          comment: o.message,
          dry_run: o.dryRun === true,
          ...(o.ifVersion === undefined ? {} : { if_version: o.ifVersion }),
        });
        if (o.json) return printJson(res);
        printDiff(res.diff);
        if (res.dry_run) {
          process.stdout.write(
            res.changed
              ? `dry run: would apply ${res.diff.summary} on top of version ${res.version}\n`
              : `dry run: no change from version ${res.version}\n`,
          );
        } else {
          process.stdout.write(
            res.changed
              ? `applied version ${res.version} (${res.diff.summary})\n`
              : `no change; version ${res.version} stays in force\n`,
          );
        }
      },
    );

  policy
    .command('history')
    .description('applied rule-set versions, newest first')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const res = await new ApiClient().get<{ versions: VersionSummary[] }>('/api/policy/versions');
      if (o.json) return printJson(res);
      printTable(
        ['VERSION', 'TIME', 'BY', 'RULES', 'COMMENT'],
        res.versions.map((v) => [v.version, v.created_at, String(v.actor.subject ?? ''), v.rules, v.comment]),
      );
    });

  policy
    .command('show <version>')
    .description('one version: its rules and what changed from the version before')
    .option('--json', 'print JSON')
    .action(async (version: string, o: { json?: boolean }) => {
      const res = await new ApiClient().get<
        VersionSummary & { rule_set: Array<Record<string, unknown>>; diff: DiffView }
      >(`/api/policy/versions/${encodeURIComponent(version)}`);
      if (o.json) return printJson(res);
      process.stdout.write(
        `version ${res.version} by ${String(res.actor.subject ?? '')} at ${res.created_at}${res.comment ? `: ${res.comment}` : ''}\n`,
      );
      printDiff(res.diff);
      printTable(
        ['NAME', 'EFFECT', 'MATCH', 'WHEN'],
        res.rule_set.map((r) => [
          String(r.name),
          String(r.effect),
          JSON.stringify(r.match ?? {}),
          JSON.stringify(r.when ?? {}),
        ]),
      );
    });

  policy
    .command('test <command>')
    .description('explain the decision for a command (SQL, a shell line, or "METHOD URL") without running it')
    .requiredOption('--connection <name>', 'the connection it would run on')
    .requiredOption('--as <subject>', 'the caller')
    .option('--groups <groups>', "the caller's groups (comma-separated)", commaList, [])
    .addOption(
      new Option('--kind <kind>', 'identity kind').choices(['human', 'service', 'agent']).default('human'),
    )
    .option('--chain <actors>', 'delegation chain from the root (comma-separated)', commaList, [])
    .option(
      '--sample <json>',
      'result rows to mask as the decision would: {"columns":["users.email",…],"rows":[["a@b.c",…]]}',
      (v: string) => {
        try {
          return JSON.parse(v) as unknown;
        } catch (err) {
          throw new InvalidArgumentError(`not JSON: ${(err as Error).message}`);
        }
      },
    )
    .option(
      '--sample-text <text>',
      'free text (terminal output, a response body) to mask as the decision would',
    )
    .option('--json', 'print facts and decision as JSON')
    .action(
      async (
        command: string,
        o: {
          connection: string;
          as: string;
          groups: string[];
          kind: string;
          chain: string[];
          sample?: unknown;
          sampleText?: string;
          json?: boolean;
        },
      ) => {
        const res = await new ApiClient().request<Explained>('POST', '/api/policy/test', {
          connection: o.connection,
          command,
          as: { subject: o.as, groups: o.groups, kind: o.kind, chain: o.chain },
          ...(o.sample === undefined ? {} : { sample: o.sample }),
          ...(o.sampleText === undefined ? {} : { sample_text: o.sampleText }),
        });
        if (o.json) return printJson(res);
        const d = res.decision;
        process.stdout.write(`facts:    ${JSON.stringify(res.facts)}\n`);
        process.stdout.write(`matched:  ${d.rules.join(', ') || '(no rule)'}\n`);
        if (d.masks.length > 0)
          process.stdout.write(`masks:    ${d.masks.map((m) => String(m.rule)).join(', ')}\n`);
        if (d.derived.length > 0) {
          const fields = d.derived.map(
            (m) => `${m.name} (statement ${m.statement + 1}, column ${m.output + 1}, rule ${m.rule})`,
          );
          process.stdout.write(`derived:  ${fields.join(', ')}\n`);
        }
        const { rows, rows_rule, duration_ms, duration_rule } = d.limits;
        if (rows !== null || duration_ms !== null) {
          const r = rows === null ? '-' : `${rows} (rule ${rows_rule})`;
          const t = duration_ms === null ? '-' : `${formatDuration(duration_ms)} (rule ${duration_rule})`;
          process.stdout.write(`limits:   rows ${r}, duration ${t}\n`);
        }
        if (res.masked_sample) {
          const { columns, rows } = res.masked_sample;
          process.stdout.write('masked sample:\n');
          printTable(columns, rows);
        }
        if (res.masked_text !== undefined) process.stdout.write(`masked text: ${res.masked_text}\n`);
        process.stdout.write(
          `decision: ${d.action.toUpperCase()}${d.decided_by ? ` (rule "${d.decided_by}")` : ''}${d.message ? `: ${d.message}` : ''}\n`,
        );
      },
    );
}
