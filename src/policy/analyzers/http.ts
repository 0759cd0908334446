// Normalizes an HTTP request line into facts, so a rule on `/admin` also matches the spellings a
// server would treat as the same resource (`/a/../admin`, `//admin`, `/%61dmin`).

import type { HttpFacts } from '../facts.js';

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Decodes percent-escapes of unreserved characters only and uppercases the hex of the others (RFC 3986 §6.2.2). */
function normalizeEscapes(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const ch = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

/** RFC 3986 §5.2.4 on an absolute path whose duplicate slashes have already been collapsed. */
function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split('/').slice(1);
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === '.' || segment === '..') {
      if (segment === '..') out.pop();
      if (last) out.push('');
      return;
    }
    out.push(segment);
  });
  return `/${out.join('/')}`;
}

export function normalizeHttpPath(rawPath: string): string {
  let path = normalizeEscapes(rawPath).replace(/\/{2,}/g, '/');
  if (!path.startsWith('/')) path = `/${path}`;
  return removeDotSegments(path);
}

/** Splits origin-form or absolute-form request targets into path and query; the fragment is dropped. */
function splitTarget(url: string): { path: string; query: string } {
  let rest = url.split('#', 1)[0] ?? '';
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/.exec(rest);
  if (scheme) rest = rest.slice(scheme[0].length);
  const q = rest.indexOf('?');
  return q === -1 ? { path: rest, query: '' } : { path: rest.slice(0, q), query: rest.slice(q + 1) };
}

export function analyzeHttp(method: string, url: string): HttpFacts {
  const { path, query } = splitTarget(url);
  const params: Record<string, string[]> = {};
  for (const [key, value] of new URLSearchParams(query)) {
    const list = params[key] ?? [];
    list.push(value);
    params[key] = list;
  }
  return {
    protocol_kind: 'http',
    method: method.toUpperCase(),
    path: normalizeHttpPath(path),
    query: params,
  };
}
