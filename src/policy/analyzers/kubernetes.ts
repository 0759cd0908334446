// Derives the kube-apiserver's RequestInfo from a method and URL, following the rules of
// k8s.io/apiserver/pkg/endpoints/request/requestinfo.go, so RBAC-shaped rules see what the apiserver sees.

import type { KubernetesFacts } from '../facts.js';

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_API_PREFIXES = new Set(['api']);
/** Verbs written as the first path segment after the version (legacy `/watch/…`, `/proxy/…`). */
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
/** Segments after `namespaces/<name>` that are subresources of the namespace itself. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const METHOD_VERBS: Record<string, string> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** Go's strconv.ParseBool, which the apiserver uses for `?watch=`. */
function parseBool(value: string | null): boolean {
  return value !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value);
}

/** The name a `fieldSelector=metadata.name=<x>` pins a list to, as the apiserver honours it. */
function nameFromFieldSelector(selector: string | null): string | null {
  if (!selector) return null;
  for (const term of selector.split(',')) {
    const m = /^\s*metadata\.name\s*==?\s*([^=!]*?)\s*$/.exec(term);
    const name = m?.[1];
    if (name && name !== '.' && name !== '..' && !/[/%]/.test(name)) return name;
  }
  return null;
}

/** Go's req.URL.Path is the decoded path; an undecodable one is kept as written (the apiserver rejects it). */
function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function splitTarget(url: string): { path: string; query: URLSearchParams } {
  let rest = url.split('#', 1)[0] ?? '';
  const origin = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/.exec(rest);
  if (origin) rest = rest.slice(origin[0].length);
  const q = rest.indexOf('?');
  const path = decodePath(q === -1 ? rest : rest.slice(0, q));
  return { path: path === '' ? '/' : path, query: new URLSearchParams(q === -1 ? '' : rest.slice(q + 1)) };
}

/** strings.Split(strings.Trim(path, "/"), "/"), empty for the root. */
function splitPath(path: string): string[] {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? [] : trimmed.split('/');
}

export function analyzeKubernetesRequest(method: string, url: string): KubernetesFacts {
  const { path, query } = splitTarget(url);
  const upper = method.toUpperCase();
  const facts: KubernetesFacts = {
    protocol_kind: 'k8s',
    verb: method.toLowerCase(),
    api_group: '',
    api_version: '',
    resource: '',
    subresource: null,
    namespace: null,
    name: null,
    is_resource_request: false,
    path,
  };

  let parts = splitPath(path);
  // Fewer than three segments (/api/v1, /healthz, /apis/apps) is discovery or a non-resource URL.
  if (parts.length < 3 || !API_PREFIXES.has(parts[0] ?? '')) return facts;
  const prefix = parts[0] ?? '';
  parts = parts.slice(1);
  if (!GROUPLESS_API_PREFIXES.has(prefix)) {
    if (parts.length < 3) return facts; // /apis/<group>/<version> is group discovery
    facts.api_group = parts[0] ?? '';
    parts = parts.slice(1);
  }
  facts.is_resource_request = true;
  facts.api_version = parts[0] ?? '';
  parts = parts.slice(1);

  const first = parts[0] ?? '';
  if (SPECIAL_VERBS.has(first)) {
    facts.verb = first;
    // The apiserver refuses `/watch` or `/proxy` with nothing after it; leave the resource empty so rules deny.
    if (parts.length < 2) return facts;
    parts = parts.slice(1);
  } else {
    facts.verb = METHOD_VERBS[upper] ?? '';
  }

  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      facts.namespace = parts[1] || null;
      // namespaces/<ns>/<resource>/… addresses a namespaced resource; namespaces/<ns>[/status] the namespace itself.
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2] ?? '')) parts = parts.slice(2);
    }
  }

  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(facts.verb))
    facts.subresource = parts[2] || null;
  if (parts.length >= 2) facts.name = parts[1] || null;
  if (parts.length >= 1) facts.resource = parts[0] ?? '';

  if (facts.name === null && facts.verb === 'get') {
    facts.verb = parseBool(query.get('watch')) ? 'watch' : 'list';
    facts.name = nameFromFieldSelector(query.get('fieldSelector'));
  }
  if (facts.name === null && facts.verb === 'delete') facts.verb = 'deletecollection';
  return facts;
}
