// A browser played over plain HTTP for tests: it follows an OpenID provider's redirects with a
// cookie jar and submits the form each page shows, filling fields the test names.

export interface BrowserResult {
  /** Where the provider finally sent the browser outside itself (the client's redirect URI), if it did. */
  redirect?: string;
  /** The last page's status and text when the walk ended on a page instead. */
  status: number;
  body: string;
}

const ENTITIES: Record<string, string> = { amp: '&', quot: '"', lt: '<', gt: '>', '#x27': "'", '#39': "'" };

function unescapeHtml(s: string): string {
  return s.replace(/&(amp|quot|lt|gt|#x27|#39);/g, (_m, e: string) => ENTITIES[e] ?? '');
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\b${name}="([^"]*)"`, 'i').exec(tag);
  return m ? unescapeHtml(m[1]!) : undefined;
}

/** The first POST form of a page: its action and fields (hidden values kept, `fill` taking precedence). */
function formOf(
  html: string,
  fill: Record<string, string>,
): { action: string; fields: URLSearchParams } | null {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form || attr(form[1]!, 'method')?.toLowerCase() !== 'post') return null;
  const fields = new URLSearchParams();
  for (const input of form[2]!.matchAll(/<input\b([^>]*)>/gi)) {
    const name = attr(input[1]!, 'name');
    if (name) fields.set(name, fill[name] ?? attr(input[1]!, 'value') ?? '');
  }
  // A choice the page offers as a button (the device page's "abort") is a field the test adds.
  for (const [k, v] of Object.entries(fill)) if (!fields.has(k)) fields.set(k, v);
  return { action: attr(form[1]!, 'action') ?? '', fields };
}

export async function browse(
  origin: string,
  start: string,
  fill: Record<string, string>,
): Promise<BrowserResult> {
  const home = new URL(origin).origin;
  const jar = new Map<string, string>();
  let url = start;
  let body: string | undefined;
  for (let step = 0; step < 30; step++) {
    const headers: Record<string, string> = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, {
      method: body === undefined ? 'GET' : 'POST',
      body,
      headers,
      redirect: 'manual',
    });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      // oidc-provider clears a cookie by setting it empty with an expiry in the past.
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(cookie)) jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer();
      const next = new URL(location, url);
      if (next.origin !== home) return { redirect: next.href, status: res.status, body: '' };
      url = next.href;
      body = undefined;
      continue;
    }
    const text = await res.text();
    // An error page may show its form again (the device page does); a person would stop here.
    if (!res.ok) return { status: res.status, body: text };
    const form = formOf(text, fill);
    if (!form) return { status: res.status, body: text };
    url = new URL(form.action, url).href;
    body = form.fields.toString();
  }
  throw new Error(`the provider kept the browser busy for 30 steps, last at ${url}`);
}
