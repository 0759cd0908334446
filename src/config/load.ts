// Reads the YAML config file, applies WARDEN_* environment overrides and validates the
// result with the one schema; errors name the file, line, key path and what was expected.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { type Config, configSchema } from './schema.js';

/** Environment variables that override a config key (string values; numbers are converted). */
export const ENV_OVERRIDES: ReadonlyArray<{ env: string; path: string[]; type: 'string' | 'number' }> = [
  { env: 'WARDEN_DATA_DIR', path: ['data_dir'], type: 'string' },
  { env: 'WARDEN_LOG_LEVEL', path: ['log', 'level'], type: 'string' },
  { env: 'WARDEN_API_HOST', path: ['api', 'host'], type: 'string' },
  { env: 'WARDEN_API_PORT', path: ['api', 'port'], type: 'number' },
  { env: 'WARDEN_STORE_URL', path: ['store', 'url'], type: 'string' },
  { env: 'WARDEN_SEAL_KEY_FILE', path: ['keys', 'seal_key_file'], type: 'string' },
  { env: 'WARDEN_SIGNING_KEY_FILE', path: ['keys', 'signing_key_file'], type: 'string' },
  { env: 'WARDEN_IDENTITY_ISSUER', path: ['identity', 'issuer'], type: 'string' },
];

export interface ConfigProblem {
  /** Where the bad value came from: `warden.yaml:12:7`, `WARDEN_API_PORT`, or the file alone. */
  source: string;
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map((p) => `${p.source}: ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** The file read, if any. */
  file: string | undefined;
}

type Json = Record<string, unknown>;

function setIn(target: Json, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Json;
  }
  node[path[path.length - 1]!] = value;
}

/** Maps a key path in a YAML document to `file:line:col` (the nearest existing parent for a missing key). */
export type Locate = (path: PropertyKey[]) => string | undefined;

/** Reads and parses a YAML file; syntax errors become a ConfigError naming file:line:col. */
export function readYamlFile(file: string): { value: unknown; locate: Locate } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ source: file, path: '', message: `cannot read: ${(err as Error).message}` }]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { source: `${file}:${pos.line}:${pos.col}`, path: '', message: e.message.split('\n')[0]! };
      }),
    );
  }
  const locate: Locate = (path) => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) {
        const pos = lineCounter.linePos(node.range[0]);
        return `${file}:${pos.line}:${pos.col}`;
      }
    }
    return undefined;
  };
  return { value: doc.toJS() ?? {}, locate };
}

export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let raw: Json = {};
  let locate: Locate = () => undefined;
  const fileLabel = file ?? '(defaults)';

  if (file !== undefined) {
    const yaml = readYamlFile(file);
    if (typeof yaml.value !== 'object' || yaml.value === null || Array.isArray(yaml.value)) {
      throw new ConfigError([
        { source: file, path: '', message: 'expected a mapping of keys at the top level' },
      ]);
    }
    raw = yaml.value as Json;
    locate = yaml.locate;
  }

  const envSources = new Map<string, string>();
  const envProblems: ConfigProblem[] = [];
  for (const o of ENV_OVERRIDES) {
    const value = env[o.env];
    if (value === undefined || value === '') continue;
    if (o.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) {
        envProblems.push({
          source: o.env,
          path: o.path.join('.'),
          message: `expected a number, got "${value}"`,
        });
        continue;
      }
      setIn(raw, o.path, n);
    } else {
      setIn(raw, o.path, value);
    }
    envSources.set(o.path.join('.'), o.env);
  }
  if (envProblems.length > 0) throw new ConfigError(envProblems);

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => describeIssue(issue, fileLabel, envSources, locate)),
    );
  }
  const names = new Set<string>();
  for (const [i, c] of parsed.data.connections.entries()) {
    if (names.has(c.name)) {
      throw new ConfigError([
        {
          source: locate(['connections', i, 'name']) ?? fileLabel,
          path: `connections[${i}].name`,
          message: `duplicate connection name "${c.name}"`,
        },
      ]);
    }
    names.add(c.name);
  }
  return { config: parsed.data, file };
}

/** One zod issue as a problem a person can find: source position, key path, what was expected. */
export function describeIssue(
  issue: z.core.$ZodIssue,
  fileLabel: string,
  envSources: ReadonlyMap<string, string>,
  locate: Locate,
): ConfigProblem {
  const path = issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
  const dotted = issue.path.join('.');
  const source = envSources.get(dotted) ?? locate(issue.path) ?? fileLabel;
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  } else if (issue.code === 'invalid_value' && 'values' in issue) {
    message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  } else if (issue.code === 'invalid_union') {
    // A union says only "Invalid input"; list what each alternative would have accepted.
    const accepted = issue.errors.flat().flatMap((i) => {
      if (i.path.length > 0) return [];
      if (i.code === 'invalid_value') return i.values.map((v) => JSON.stringify(v));
      return i.code === 'invalid_type' ? [`an ${i.expected}`.replace(/^an ([^aeiou])/, 'a $1')] : [];
    });
    if ('options' in issue && Array.isArray(issue.options)) {
      accepted.push(...issue.options.map((v: unknown) => JSON.stringify(v)));
    }
    if (accepted.length > 0) message = `expected one of ${[...new Set(accepted)].join(', ')}`;
  }
  return { source, path, message };
}
