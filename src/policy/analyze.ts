// Turns a raw command into facts with the analyzer for its protocol: SQL text for the
// database protocols, a command line for SSH, and "METHOD URL" for Kubernetes and HTTP.
import type { Protocol } from '../config/connection.js';
import { analyzeHttp } from './analyzers/http.js';
import { analyzeKubernetesRequest } from './analyzers/kubernetes.js';
import { analyzeMysql } from './analyzers/mysql.js';
import { analyzePostgres, loadPostgresAnalyzer } from './analyzers/postgres.js';
import { analyzeShell } from './analyzers/shell.js';
import type { Facts } from './facts.js';

export { loadPostgresAnalyzer as loadAnalyzers };

/** Splits "GET /api/v1/pods" into method and URL; a bare URL is a GET. */
function requestLine(text: string): { method: string; url: string } {
  const m = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(text);
  return m ? { method: m[1]!.toUpperCase(), url: m[2]! } : { method: 'GET', url: text.trim() };
}

export function analyzeCommand(protocol: Protocol, text: string): Facts {
  switch (protocol) {
    case 'postgres':
      return analyzePostgres(text);
    case 'mysql':
      return analyzeMysql(text);
    case 'ssh':
      return analyzeShell(text);
    case 'kubernetes': {
      const { method, url } = requestLine(text);
      return analyzeKubernetesRequest(method, url);
    }
    case 'http': {
      const { method, url } = requestLine(text);
      return analyzeHttp(method, url);
    }
  }
}
