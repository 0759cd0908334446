// Commands that act on this machine's config, keys and store directly rather than through
// the API: `serve`, `config check` and `keys rotate-seal`.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { SYSTEM_ACTOR } from '../../audit/record.js';
import { ConfigError, loadConfig } from '../../config/load.js';
import { beginFileRotation, finishFileRotation } from '../../crypto/seal.js';
import { CliError } from '../client.js';

// The gateway itself (fastify, the store drivers) is loaded only by the commands that run it,
// so the API client commands start quickly.
const loadGateway = () => import('../../warden.js');

function configFile(opts: { config?: string }): string | undefined {
  return opts.config ?? process.env.WARDEN_CONFIG;
}

function load(opts: { config?: string }) {
  try {
    return loadConfig(configFile(opts), process.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`invalid configuration:\n${err.message}`, 2);
    throw err;
  }
}

export function localCommands(program: Command): void {
  program
    .command('serve')
    .description('run the gateway (API and listeners) on the given config, or on embedded defaults')
    .option('-c, --config <file>', 'YAML config file (default: $WARDEN_CONFIG, else embedded defaults)')
    .action(async (opts: { config?: string }) => {
      await serve(load(opts));
    });

  program
    .command('demo')
    .description('run the gateway on embedded defaults with a throwaway PostgreSQL (PGlite) to try it on')
    .option('--port <port>', 'PostgreSQL listener port', '15432')
    .option('--api-port <port>', 'API port', '8080')
    .option('--data-dir <dir>', 'where the SQLite store and keys go', './.warden')
    .action(async (opts: { port: string; apiPort: string; dataDir: string }) => {
      const { startDemoTarget, demoConfig, demoApproverKey } = await import('../demo.js');
      const target = await startDemoTarget();
      const loaded = {
        file: undefined,
        config: demoConfig({
          dataDir: opts.dataDir,
          pgPort: Number(opts.port),
          apiPort: Number(opts.apiPort),
          target,
        }),
      };
      await serve(loaded, {
        started: async (w) => {
          const key = `${resolve(opts.dataDir)}/admin.key`;
          const dba = await demoApproverKey(w.ctx.apiKeys, resolve(opts.dataDir));
          process.stderr.write(
            `\nwarden demo: connection "demo" is a throwaway PostgreSQL (PGlite) with customers and orders.\n` +
              `  PGPASSWORD=$(cat ${key}) psql "host=${w.postgres?.host} port=${w.postgres?.port} dbname=demo user=me sslmode=disable"\n` +
              '  select name, email, card_number from customers;   -- email and card masked\n' +
              '  delete from orders;                                -- held until someone in "dba" approves it:\n' +
              `     WARDEN_URL=${w.url} WARDEN_TOKEN=$(cat ${dba}) npx warden reviews ls --pending   (then: reviews approve <id>)\n` +
              '  drop table orders;                                 -- blocked by rule "no-drop"\n' +
              `  web console: ${w.url}/ (sign in with the API key in ${key}; approve as ${dba})\n\n`,
          );
        },
        stopped: () => target.stop(),
      });
    });

  const config = program.command('config').description('inspect the configuration');
  config
    .command('check')
    .description('validate the config file and WARDEN_* overrides without starting')
    .option('-c, --config <file>', 'YAML config file')
    .action(async (opts: { config?: string }) => {
      const loaded = load(opts);
      const { config: c, file } = loaded;
      const [{ isPostgresUrl }, { preflight }] = await Promise.all([
        import('../../store/store.js'),
        import('../../preflight.js'),
      ]);
      try {
        preflight(loaded, process.env);
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(`invalid configuration:\n${err.message}`, 2);
        throw err;
      }
      const store = isPostgresUrl(c.store.url)
        ? 'postgresql'
        : `sqlite (${c.store.url ?? `${resolve(c.data_dir)}/warden.db`})`;
      process.stdout.write(
        `OK: ${file ?? '(embedded defaults)'}: api ${c.api.host}:${c.api.port}${c.api.tls ? ' (tls)' : ''}, store ${store}, ` +
          `${c.connections.length} connection(s), ${c.identity.oidc.length} OIDC issuer(s)\n`,
      );
    });
}

/** `warden keys rotate-seal`: re-seals every stored secret under a new key (local: needs the key files). */
export async function rotateSeal(opts: { config?: string }): Promise<void> {
  const loaded = load(opts);
  const [{ openRuntime, SEAL_KEY_META }, { Connections }, { AuditLog }, { Meta }, { resealTokenizeKey }] =
    await Promise.all([
      loadGateway(),
      import('../../store/connections.js'),
      import('../../audit/log.js'),
      import('../../store/meta.js'),
      import('../../store/tokenize-key.js'),
    ]);
  const runtime = await openRuntime(loaded, process.env);
  try {
    const source = runtime.keyring.source;
    const before = runtime.keyring.currentId;
    if (source.kind === 'file') {
      beginFileRotation(source.path);
      runtime.keyring.reload();
    }
    const connections = new Connections(runtime.store, runtime.keyring);
    const result = await connections.resealAll();
    const tokenizeKey = await resealTokenizeKey(new Meta(runtime.store), runtime.keyring);
    if (source.kind === 'file') {
      finishFileRotation(source.path);
      runtime.keyring.reload();
    }
    // Gateways starting from now on must hold the new key.
    await new Meta(runtime.store).set(SEAL_KEY_META, runtime.keyring.currentId);
    const audit = new AuditLog(runtime.store);
    await audit.append({
      type: 'seal.rotated',
      actor: { ...SYSTEM_ACTOR, subject: `cli:${process.env.USER ?? 'unknown'}` },
      target: 'seal-key',
      outcome: 'success',
      payload: {
        from_key: before,
        to_key: runtime.keyring.currentId,
        resealed: result.resealed,
        total: result.total,
        tokenize_key: tokenizeKey,
      },
    });
    await audit.close();
    process.stdout.write(
      `re-sealed ${result.resealed} of ${result.total} secret(s) under key ${runtime.keyring.currentId}` +
        (source.kind === 'file' ? ` (previous key kept in ${source.path}.old)` : '') +
        '\n',
    );
  } finally {
    await runtime.store.close();
  }
}

type Loaded = ReturnType<typeof load>;
type RunningWarden = Awaited<ReturnType<Awaited<ReturnType<typeof loadGateway>>['startWarden']>>;

/** Runs the gateway until SIGINT/SIGTERM, printing where it listens. */
async function serve(
  loaded: Loaded,
  hooks: { started?: (w: RunningWarden) => void | Promise<void>; stopped?: () => Promise<void> } = {},
): Promise<void> {
  const [{ createLogger }, { startWarden }] = await Promise.all([import('../../logging.js'), loadGateway()]);
  const log = createLogger(loaded.config.log.level);
  let warden: RunningWarden;
  try {
    warden = await startWarden(loaded, { env: process.env, log });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`invalid configuration:\n${err.message}`, 2);
    log.fatal({ err: (err as Error).message }, 'start-up failed');
    log.flush();
    throw new CliError(`start-up failed: ${(err as Error).message}`);
  }
  if (warden.postgres) {
    process.stderr.write(`warden: PostgreSQL listening on ${warden.postgres.host}:${warden.postgres.port}\n`);
  }
  process.stderr.write(`warden: API listening on ${warden.url}\n`);
  await hooks.started?.(warden);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await warden.close().catch((err: Error) => log.error({ err: err.message }, 'shutdown error'));
    await hooks.stopped?.().catch((err: Error) => log.error({ err: err.message }, 'shutdown error'));
    log.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // The process stays up on unexpected errors in background work; they are logged.
  process.on('unhandledRejection', (reason) => log.error({ err: String(reason) }, 'unhandled rejection'));
}
