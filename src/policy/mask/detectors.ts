// Content detectors: pure functions that find sensitive spans (cards, keys, addresses…) in text.
// Each candidate regex is cheap and anchored on boundaries; checksums (Luhn, mod-97) decide the rest.
import { isIPv6 } from 'node:net';

export type DetectorName =
  | 'pem'
  | 'jwt'
  | 'bearer'
  | 'cloud-key'
  | 'card'
  | 'iban'
  | 'ssn'
  | 'email'
  | 'ipv6'
  | 'ipv4'
  | 'phone';

/** A half-open range [start, end) of UTF-16 offsets that holds a sensitive value. */
export interface Span {
  start: number;
  end: number;
  detector: DetectorName;
}

type Detector = (text: string) => Span[];

/** Highest priority first: when spans overlap, the earlier detector wins (a JWT is not a phone number). */
export const ALL_DETECTORS: readonly DetectorName[] = [
  'pem',
  'jwt',
  'bearer',
  'cloud-key',
  'card',
  'iban',
  'ssn',
  'email',
  'ipv6',
  'ipv4',
  'phone',
];

function scan(text: string, re: RegExp, detector: DetectorName, accept?: (m: RegExpExecArray) => boolean) {
  const out: Span[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    if (!accept || accept(m)) out.push({ start: m.index, end: m.index + m[0].length, detector });
  }
  return out;
}

const EMAIL =
  /[A-Za-z0-9_%+-](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])/g;

export const findEmails: Detector = (text) => scan(text, EMAIL, 'email');

// International numbers need a leading "+"; national ones need separators, so ids and timestamps never match.
const PHONE_INTL = /(?<![\w+])\+[1-9](?:[ .-]?\(?\d\)?){6,14}(?!\w)/g;
const PHONE_NANP = /(?<![\w+-])(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])/g;
const PHONE_TRUNK = /(?<![\w+-])0\d{1,4}[ -]\d{3,4}[ -]?\d{3,4}(?![\w-])/g;

export const findPhones: Detector = (text) => {
  const intl = scan(text, PHONE_INTL, 'phone', (m) => {
    const digits = m[0].replace(/\D/g, '').length;
    return digits >= 7 && digits <= 15;
  });
  return [...intl, ...scan(text, PHONE_NANP, 'phone'), ...scan(text, PHONE_TRUNK, 'phone')];
};

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const CARD = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-]?\d)/g;

export const findCards: Detector = (text) =>
  scan(text, CARD, 'card', (m) => {
    const digits = m[0].replace(/\D/g, '');
    return /^[1-9]/.test(digits) && luhnValid(digits);
  });

const IBAN_LENGTHS: ReadonlyMap<string, number> = new Map(
  (
    'AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DK18 DO28 EE20 EG29 ' +
    'ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 ' +
    'LB28 LC32 LI21 LT20 LU20 LV21 MC27 MD24 ME22 MK19 MR27 MT31 MU30 NL18 NO15 PK24 PL28 PS29 PT25 QA29 ' +
    'RO24 RS22 SA24 SC31 SE24 SI19 SK24 SM27 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20'
  )
    .split(' ')
    .map((e) => [e.slice(0, 2), Number(e.slice(2))] as const),
);

export function ibanValid(compact: string): boolean {
  if (IBAN_LENGTHS.get(compact.slice(0, 2)) !== compact.length) return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let rem = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const value = code >= 65 ? String(code - 55) : ch;
    for (const d of value) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rem === 1;
}

const IBAN =
  /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])/g;

export const findIbans: Detector = (text) =>
  scan(text, IBAN, 'iban', (m) => ibanValid(m[0].replace(/ /g, '')));

// Only the dashed form: nine bare digits are far more often an id than an SSN.
const SSN = /(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])/g;

export const findSsns: Detector = (text) =>
  scan(text, SSN, 'ssn', (m) => {
    const area = m[1]!;
    return area !== '000' && area !== '666' && area[0] !== '9' && m[2] !== '00' && m[3] !== '0000';
  });

const IPV4 = /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\w)/g;

export const findIpv4: Detector = (text) =>
  scan(text, IPV4, 'ipv4', (m) =>
    m[0].split('.').every((o) => Number(o) <= 255 && (o === '0' || o[0] !== '0')),
  );

const IPV6 = /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:.])/g;

export const findIpv6: Detector = (text) =>
  scan(text, IPV6, 'ipv6', (m) => /[0-9A-Fa-f]/.test(m[0]) && isIPv6(m[0]));

const JWT = /(?<![\w.-])[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*(?![\w.-])/g;

function jwtHeaderValid(header: string): boolean {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    return (
      typeof parsed === 'object' && parsed !== null && typeof (parsed as { alg?: unknown }).alg === 'string'
    );
  } catch {
    return false;
  }
}

export const findJwts: Detector = (text) =>
  scan(text, JWT, 'jwt', (m) => jwtHeaderValid(m[0].slice(0, m[0].indexOf('.'))));

const CLOUD_KEY = new RegExp(
  [
    '(?:AKIA|ASIA)[A-Z0-9]{16}', // AWS access key id
    'AIza[0-9A-Za-z_-]{35}', // GCP API key
    'gh[pousr]_[A-Za-z0-9]{36,251}', // GitHub tokens
    'github_pat_[A-Za-z0-9_]{22,255}',
    'xox[abposr]-[A-Za-z0-9-]{10,250}', // Slack
  ]
    .map((p) => `(?<![A-Za-z0-9_-])${p}(?![A-Za-z0-9_-])`)
    .join('|'),
  'g',
);

export const findCloudKeys: Detector = (text) => scan(text, CLOUD_KEY, 'cloud-key');

export const PEM_BEGIN = /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----/g;
const PEM = /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g;

export const findPemBlocks: Detector = (text) => scan(text, PEM, 'pem');

// Only the credential is masked; "Authorization: Bearer" stays readable.
const BEARER = /(?<![\w-])Bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)/gi;

export const findBearerTokens: Detector = (text) => {
  const out: Span[] = [];
  BEARER.lastIndex = 0;
  for (let m = BEARER.exec(text); m !== null; m = BEARER.exec(text)) {
    const end = m.index + m[0].length;
    out.push({ start: end - m[1]!.length, end, detector: 'bearer' });
  }
  return out;
};

const DETECTORS: Record<DetectorName, Detector> = {
  pem: findPemBlocks,
  jwt: findJwts,
  bearer: findBearerTokens,
  'cloud-key': findCloudKeys,
  card: findCards,
  iban: findIbans,
  ssn: findSsns,
  email: findEmails,
  ipv6: findIpv6,
  ipv4: findIpv4,
  phone: findPhones,
};

export function isDetectorName(name: string): name is DetectorName {
  return Object.hasOwn(DETECTORS, name);
}

/**
 * Runs the named detectors and returns sorted, non-overlapping spans. Overlaps resolve by
 * priority (ALL_DETECTORS order), then by the earlier, longer span.
 */
export function detect(text: string, names: readonly DetectorName[] = ALL_DETECTORS): Span[] {
  const kept: Span[] = []; // sorted by start, non-overlapping
  for (const name of ALL_DETECTORS) {
    if (!names.includes(name)) continue;
    for (const span of DETECTORS[name](text)) {
      const i = firstStartingAtOrAfter(kept, span.start);
      const before = kept[i - 1];
      const after = kept[i];
      if ((before && before.end > span.start) || (after && after.start < span.end)) continue;
      kept.splice(i, 0, span);
    }
  }
  return kept;
}

function firstStartingAtOrAfter(spans: readonly Span[], start: number): number {
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (spans[mid]!.start < start) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
