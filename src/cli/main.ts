#!/usr/bin/env node
// The `warden` command. Local commands act on this machine's config and store; the rest talk
// to a running gateway's API with WARDEN_URL and WARDEN_TOKEN (or the token `warden login` keeps).
// First: V8 flags must be set before any other module loads.
import './memory-flags.js';
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { CliError } from './client.js';
import { accessCommands } from './commands/access.js';
import { auditCommands } from './commands/audit.js';
import { connectionCommands } from './commands/connections.js';
import { identityCommands } from './commands/identity.js';
import { localCommands } from './commands/local.js';
import { loginCommands } from './commands/login.js';
import { policyCommands } from './commands/policy.js';
import { reviewCommands } from './commands/reviews.js';
import { sessionCommands } from './commands/sessions.js';
import { subjectCommands } from './commands/subjects.js';

const program = new Command('warden')
  .description('Warden: identity-aware access gateway')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

localCommands(program);
connectionCommands(program);
loginCommands(program);
identityCommands(program);
auditCommands(program);
reviewCommands(program);
accessCommands(program);
sessionCommands(program);
subjectCommands(program);
policyCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode);
  }
  const exitCode = err instanceof CliError ? err.exitCode : 1;
  process.stderr.write(`warden: ${(err as Error).message}\n`);
  process.exit(exitCode);
}
