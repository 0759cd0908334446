// `warden audit verify|export|tail|public-key|checkpoint` and `warden sessions ls|show`.
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Command, Option } from 'commander';
import { readCheckpointFile } from '../../audit/checkpoints.js';
import { verifyExport } from '../../audit/export.js';
import type { AuditCheckpoint, AuditRecord } from '../../audit/record.js';
import type { Trace } from '../../audit/trace.js';
import type { VerifyReport } from '../../audit/verify.js';
import { fromPublicPemAsync } from '../../crypto/signing.js';
import { ApiClient, CliError, query } from '../client.js';
import { printJson } from '../output.js';
import { renderTrace } from '../trace-tree.js';

function describe(report: VerifyReport): string {
  if (!report.ok && report.problem) {
    return `FAILED at seq ${report.problem.seq} (${report.problem.kind}): ${report.problem.message}`;
  }
  const range =
    report.records === 0
      ? 'no records'
      : `${report.records} records (seq ${report.first_seq}..${report.last_seq}`;
  const origin =
    report.records === 0
      ? ''
      : report.from_genesis
        ? ', from genesis)'
        : `; earlier records not in this export)`;
  const cp = report.last_checkpoint
    ? `, ${report.checkpoints} signed checkpoint(s), last at seq ${report.last_checkpoint.seq} (${report.last_checkpoint.time})`
    : `, ${report.checkpoints} signed checkpoint(s)`;
  const anchor = report.anchored_seq === null ? '' : `, anchored at seq ${report.anchored_seq}`;
  const tail = report.records === 0 ? '' : `, ${report.unsigned_tail} record(s) after the last signature`;
  return `OK: ${range}${origin}${cp}${anchor}${tail}`;
}

function formatRecord(r: AuditRecord): string {
  const who =
    r.actor.chain.length > 0
      ? `${r.actor.subject} [${[r.actor.root, ...r.actor.chain].join('→')}]`
      : r.actor.subject;
  return `${String(r.seq).padStart(6)}  ${r.time}  ${r.outcome.padEnd(7)}  ${r.type.padEnd(20)}  ${who}  ${r.target ?? ''}  ${JSON.stringify(r.payload)}`;
}

export function auditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit trail');

  audit
    .command('trace <id>')
    .description(
      'the delegation tree a session, token or API key belongs to: root identity, every delegate, their sessions and commands',
    )
    .option('--json', 'print the tree as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const trace = await new ApiClient().get<Trace>(`/api/audit/trace/${encodeURIComponent(id)}`);
      if (o.json) return printJson(trace);
      process.stdout.write(renderTrace(trace));
    });

  audit
    .command('verify')
    .description('verify the chain and signed checkpoints: live through the API, or offline on an export')
    .option('--file <export.jsonl>', 'verify an export offline instead (needs --public-key)')
    .option('--public-key <file>', 'PEM public key for offline verification (from `warden audit public-key`)')
    .option(
      '--anchor <checkpoint.json>',
      'a signed checkpoint kept apart from the export (`warden audit checkpoint --json`, or the witness file)',
    )
    .option('--json', 'print the report as JSON')
    .action(async (o: { file?: string; publicKey?: string; anchor?: string; json?: boolean }) => {
      let report: VerifyReport;
      if (o.file) {
        if (!o.publicKey)
          throw new CliError('--file needs --public-key: the key must come from a source you trust', 2);
        const key = await fromPublicPemAsync(readFileSync(o.publicKey, 'utf8'));
        let anchors: AuditCheckpoint[] = [];
        try {
          if (o.anchor) anchors = [readCheckpointFile(o.anchor)];
        } catch (err) {
          throw new CliError((err as Error).message, 2);
        }
        const lines = createInterface({
          input: createReadStream(o.file),
          crlfDelay: Number.POSITIVE_INFINITY,
        });
        try {
          // Offline only a signature ties the records to the gateway: unsigned ones fail.
          report = await verifyExport(lines, new Map([[key.kid, key.key]]), {
            anchors,
            requireSignature: true,
          });
        } catch (err) {
          throw new CliError(`${o.file}: ${(err as Error).message}`);
        }
      } else {
        if (o.anchor) {
          throw new CliError(
            "--anchor needs --file: live verification is anchored at the gateway's own witness checkpoint",
            2,
          );
        }
        report = await new ApiClient().get<VerifyReport>('/api/audit/verify');
      }
      if (o.json) printJson(report);
      else process.stdout.write(`${describe(report)}\n`);
      if (!report.ok) process.exitCode = 1;
    });

  audit
    .command('export')
    .description('export the trail as JSON lines (header, checkpoints, records)')
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl']).default('jsonl'))
    .option('--since <time>', 'ISO time or age (e.g. 24h)')
    .option('--until <time>', 'ISO time or age')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(async (o: { since?: string; until?: string; output?: string }) => {
      const res = await new ApiClient().raw(
        'GET',
        `/api/audit/export${query({ since: o.since, until: o.until })}`,
      );
      if (!res.body) throw new CliError('empty export');
      const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
      await pipeline(body, o.output ? createWriteStream(o.output, { mode: 0o600 }) : process.stdout);
    });

  audit
    .command('tail')
    .description('print the newest records; --follow keeps printing new ones')
    .option('-n, --lines <n>', 'how many', '20')
    .option('-f, --follow', 'keep polling for new records')
    .option('--type <type>', 'only this event type (prefix* allowed)')
    .option('--json', 'one JSON record per line')
    .action(async (o: { lines: string; follow?: boolean; type?: string; json?: boolean }) => {
      const client = new ApiClient();
      const print = (r: AuditRecord) =>
        process.stdout.write(`${o.json ? JSON.stringify(r) : formatRecord(r)}\n`);
      const first = await client.get<{ records: AuditRecord[]; last_seq: number }>(
        `/api/audit${query({ tail: true, limit: Number(o.lines) || 20, type: o.type })}`,
      );
      first.records.forEach(print);
      let after = first.records.at(-1)?.seq ?? first.last_seq;
      while (o.follow) {
        await new Promise((r) => setTimeout(r, 1000));
        const page = await client.get<{ records: AuditRecord[] }>(
          `/api/audit${query({ after_seq: after, limit: 1000, type: o.type })}`,
        );
        page.records.forEach(print);
        after = page.records.at(-1)?.seq ?? after;
      }
    });

  audit
    .command('public-key')
    .description(
      'print the PEM public key that verifies checkpoints (keep it somewhere the store cannot change)',
    )
    .action(async () => {
      const k = await new ApiClient().get<{ pem: string }>('/api/audit/public-key');
      process.stdout.write(k.pem);
    });

  audit
    .command('checkpoint')
    .description('sign a checkpoint of the current tail now')
    .option('--json', 'print the latest signed checkpoint (usable as an --anchor)')
    .action(async (o: { json?: boolean }) => {
      const { checkpoint, signed_now } = await new ApiClient().request<{
        checkpoint: AuditCheckpoint | null;
        signed_now: boolean;
      }>('POST', '/api/audit/checkpoint');
      if (o.json) return printJson(checkpoint);
      process.stdout.write(
        !checkpoint
          ? 'nothing to sign: the trail is empty\n'
          : signed_now
            ? `checkpoint signed at seq ${checkpoint.seq}\n`
            : `tail already checkpointed at seq ${checkpoint.seq}\n`,
      );
    });
}
