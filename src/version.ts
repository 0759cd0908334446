// Warden's version, from package.json. Its own module so the CLI can print it without loading
// the API server (fastify, swagger) that every client command would otherwise pay for.
import { readFileSync } from 'node:fs';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
