// `warden policy ls|test`: the rules in force, and what Warden would decide about a command.
import { type Command, Option } from 'commander';
import { ApiClient } from '../client.js';
import { commaList } from '../options.js';
import { printJson, printTable } from '../output.js';

interface Explained {
  facts: Record<string, unknown>;
  decision: {
    action: string;
    rules: string[];
    decided_by: string | null;
    message: string | null;
    masks: Array<Record<string, unknown>>;
    derived: Array<{ statement: number; output: number; name: string; rule: string }>;
    limits: { rows: number | null; duration_ms: number | null };
  };
}

export function policyCommands(program: Command): void {
  const policy = program.command('policy').description('guardrail rules');

  policy
    .command('ls')
    .description('list the rules in force')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const res = await new ApiClient().get<{ default: string; rules: Array<Record<string, unknown>> }>(
        '/api/policy/rules',
      );
      if (o.json) return printJson(res);
      printTable(
        ['NAME', 'EFFECT', 'MATCH', 'WHEN'],
        res.rules.map((r) => [
          String(r.name),
          String(r.effect),
          JSON.stringify(r.match ?? {}),
          JSON.stringify(r.when ?? {}),
        ]),
      );
      process.stdout.write(`default: ${res.default}\n`);
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
          json?: boolean;
        },
      ) => {
        const res = await new ApiClient().request<Explained>('POST', '/api/policy/test', {
          connection: o.connection,
          command,
          as: { subject: o.as, groups: o.groups, kind: o.kind, chain: o.chain },
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
        if (d.limits.rows !== null || d.limits.duration_ms !== null) {
          process.stdout.write(
            `limits:   rows ${d.limits.rows ?? '-'}, duration ${d.limits.duration_ms ?? '-'} ms\n`,
          );
        }
        process.stdout.write(
          `decision: ${d.action.toUpperCase()}${d.decided_by ? ` (rule "${d.decided_by}")` : ''}${d.message ? `: ${d.message}` : ''}\n`,
        );
      },
    );
}
