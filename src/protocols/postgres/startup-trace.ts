// Where a PostgreSQL client can carry a W3C traceparent without any driver support: a setting in
// the startup `options` (`-c traceparent=…`, as PGOPTIONS or a JDBC `options` property would pass
// it) or `traceparent=…` inside application_name. Either is taken out before the target sees it.
import { parseTraceparent, type TraceContext } from '../../gateway/trace-context.js';

const SETTING = /^(?:warden\.)?traceparent=(.*)$/i;
const IN_APP_NAME = /\s*\btraceparent=([0-9A-Fa-f-]{55,})/;

/** Splits `options` at unescaped whitespace, keeping each word's escapes as written. */
function words(options: string): string[] {
  const out: string[] = [];
  let word = '';
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) {
      word += ch + options[++i];
    } else if (/\s/.test(ch)) {
      if (word) out.push(word);
      word = '';
    } else {
      word += ch;
    }
  }
  if (word) out.push(word);
  return out;
}

/** The trace the startup parameters carry (if any), and the parameters without it. */
export function traceFromStartup(params: Record<string, string>): {
  trace: TraceContext | undefined;
  params: Record<string, string>;
} {
  let trace: TraceContext | undefined;
  const out = { ...params };
  if (params.options?.toLowerCase().includes('traceparent')) {
    const kept: string[] = [];
    const given = words(params.options);
    for (let i = 0; i < given.length; i++) {
      const w = given[i]!;
      // `-c name=value`, `-cname=value` or `--name=value`
      const setting =
        w === '-c'
          ? given[i + 1]
          : w.startsWith('--')
            ? w.slice(2)
            : w.startsWith('-c')
              ? w.slice(2)
              : undefined;
      const m = setting === undefined ? null : SETTING.exec(setting);
      if (!m) {
        kept.push(w);
        continue;
      }
      trace ??= parseTraceparent(m[1]);
      if (w === '-c') i++;
    }
    if (kept.length > 0) out.options = kept.join(' ');
    else delete out.options;
  }
  const app = params.application_name;
  const m = app === undefined ? null : IN_APP_NAME.exec(app);
  if (app !== undefined && m) {
    trace ??= parseTraceparent(m[1]);
    out.application_name = (app.slice(0, m.index) + app.slice(m.index + m[0].length)).trim();
  }
  return { trace, params: out };
}
