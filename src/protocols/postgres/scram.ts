// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, with optional
// tls-server-end-point channel binding (RFC 5929) for SCRAM-SHA-256-PLUS. Pure: strings in, strings out.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { Lru } from '../../lru.js';

const pbkdf2Async = promisify(pbkdf2);

/**
 * SaltedPassword (RFC 5802) by password, salt and iteration count. A role keeps its salt until its
 * password changes, so every login to it would run the same PBKDF2 again: 4,096 rounds of
 * HMAC-SHA-256 by default, about a millisecond of CPU and of login latency. PgBouncer keeps these
 * keys too. A SaltedPassword logs in as its role (to a server that keeps that salt) just as the
 * password does, and it stays in this process's memory like the opened passwords do, until it is
 * the least recently used of `max`; a changed password gets a new salt, hence a new entry. The
 * map key is an HMAC under a key of this process, so no password or fast hash of one is kept.
 */
export class SaltedPasswords {
  private readonly entries: Lru<Buffer>;
  /** Derivations under way: logins arriving together for a key not yet kept share one. */
  private readonly running = new Map<string, Promise<Buffer>>();
  private readonly keyKey = randomBytes(32);
  private served = 0;
  private derived = 0;

  constructor(max = 1_000) {
    this.entries = new Lru(max);
  }

  /** Derivations answered from memory. */
  get hits(): number {
    return this.served;
  }

  /** PBKDF2 runs. */
  get derivations(): number {
    return this.derived;
  }

  async derive(password: string, salt: string, iterations: number): Promise<Buffer> {
    const key = createHmac('sha256', this.keyKey)
      .update(`${iterations}\0${salt}\0`)
      .update(password, 'utf8')
      .digest('base64');
    const kept = this.entries.get(key);
    if (kept) {
      this.served++;
      return kept;
    }
    // A burst of logins to one role (a restart, an application's pool reconnecting) waits for one
    // derivation instead of running it once each; a failed one fails them all and is not kept.
    const running = this.running.get(key);
    if (running) return running;
    this.derived++;
    // Async PBKDF2: the iteration count is the server's choice and must not stall the event loop.
    const derivation = pbkdf2Async(saslprep(password), Buffer.from(salt, 'base64'), iterations, 32, 'sha256')
      .then((salted) => {
        this.entries.set(key, salted);
        return salted;
      })
      .finally(() => this.running.delete(key));
    this.running.set(key, derivation);
    return derivation;
  }
}

/** The process's keys, shared by every target login. */
export const SALTED = new SaltedPasswords();

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/**
 * The most PBKDF2 rounds a server may ask for: PostgreSQL's default is 4,096 and its
 * `scram_iterations` goes to 2^31-1. A derivation holds one of libuv's four pool threads (file
 * and crypto work of the whole process) for about 0.3 ms per 1,000 rounds here, so 2^31 would hold
 * one for about ten minutes per login with a fresh salt. A million rounds, 250 times the default,
 * is about 0.3 s.
 */
export const MAX_ITERATIONS = 1_000_000;
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';

export class ScramError extends Error {
  override name = 'ScramError';
}

/**
 * What the client says about channel binding in its GS2 header: `none` (no TLS, or a certificate we
 * cannot hash: "n"), `not-offered` (we could bind but the server did not offer -PLUS: "y", which lets
 * a server that did offer it detect a downgrade), or the binding data itself ("p=tls-server-end-point").
 */
export type ChannelBinding = { kind: 'none' } | { kind: 'not-offered' } | { kind: 'bound'; data: Buffer };

export interface ScramOptions {
  password: string;
  channelBinding: ChannelBinding;
  /** PostgreSQL ignores this and uses the startup user; libpq sends it empty, and so do we. */
  user?: string;
  /** Fixed client nonce, for RFC test vectors only. */
  nonce?: string;
  /** Where derived keys are kept between logins (default: the process's). */
  salted?: SaltedPasswords;
}

/** One SCRAM exchange: clientFirst() → clientFinal(serverFirst) → verifyServerFinal(serverFinal). */
export class ScramClient {
  private readonly gs2Header: string;
  private readonly clientFirstBare: string;
  private readonly nonce: string;
  private expectedServerSignature: Buffer | null = null;

  constructor(private readonly o: ScramOptions) {
    const cb = o.channelBinding;
    this.gs2Header =
      cb.kind === 'bound' ? 'p=tls-server-end-point,,' : cb.kind === 'not-offered' ? 'y,,' : 'n,,';
    // Printable, comma-free nonce (RFC 5802 §7): base64 of 18 random bytes has no ',' and no padding.
    this.nonce = o.nonce ?? randomBytes(18).toString('base64');
    this.clientFirstBare = `n=${saslName(o.user ?? '')},r=${this.nonce}`;
  }

  get mechanism(): string {
    return this.o.channelBinding.kind === 'bound' ? SCRAM_SHA_256_PLUS : SCRAM_SHA_256;
  }

  clientFirst(): string {
    return this.gs2Header + this.clientFirstBare;
  }

  async clientFinal(serverFirst: string): Promise<string> {
    const attrs = attributes(serverFirst);
    const serverNonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (attrs.has('m')) throw new ScramError('server requires a SCRAM extension this client does not know');
    if (!(serverNonce?.startsWith(this.nonce) && serverNonce.length > this.nonce.length)) {
      throw new ScramError('server nonce does not extend the client nonce');
    }
    if (!salt) throw new ScramError('server-first-message has no salt');
    if (!Number.isSafeInteger(iterations) || iterations < 1) {
      throw new ScramError('server-first-message has an invalid iteration count');
    }
    if (iterations > MAX_ITERATIONS) {
      throw new ScramError(
        `the server asks for ${iterations} SCRAM iterations, more than this client runs (${MAX_ITERATIONS})`,
      );
    }
    const cbind = Buffer.concat([
      Buffer.from(this.gs2Header, 'utf8'),
      this.o.channelBinding.kind === 'bound' ? this.o.channelBinding.data : Buffer.alloc(0),
    ]);
    const withoutProof = `c=${cbind.toString('base64')},r=${serverNonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;

    const salted = await (this.o.salted ?? SALTED).derive(this.o.password, salt, iterations);
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Throws unless the server proved it knows the password: the mutual half of SCRAM. */
  verifyServerFinal(serverFinal: string): void {
    const attrs = attributes(serverFinal);
    const error = attrs.get('e');
    if (error !== undefined) throw new ScramError(`server ended the SCRAM exchange: ${error}`);
    if (!this.expectedServerSignature)
      throw new ScramError('server-final-message before client-final-message');
    const got = Buffer.from(attrs.get('v') ?? '', 'base64');
    const want = this.expectedServerSignature;
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new ScramError('server signature does not match: the server does not know the password');
    }
  }
}

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** `a=1,b=2` → Map; values may contain '=' (base64), never ',' (RFC 5802 §5.1). */
function attributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    if (part.length < 2 || part[1] !== '=')
      throw new ScramError(`malformed SCRAM attribute ${JSON.stringify(part)}`);
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** RFC 5802 §5.1: ',' and '=' in a username are escaped. */
const saslName = (s: string): string => s.replaceAll('=', '=3D').replaceAll(',', '=2C');

// ---- SASLprep (RFC 4013) as PostgreSQL applies it to passwords ---------------------------------

type Ranges = ReadonlyArray<readonly [number, number]>;
const NON_ASCII_SPACE: Ranges = [
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];
const MAPPED_TO_NOTHING: Ranges = [
  [0xad, 0xad],
  [0x34f, 0x34f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200c, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];
/** RFC 3454 tables C.2 to C.9 (controls, private use, non-characters, surrogates, bidi and tag characters). */
const PROHIBITED: Ranges = [
  [0x0, 0x1f],
  [0x7f, 0x9f],
  [0x340, 0x341],
  [0x6dd, 0x6dd],
  [0x70f, 0x70f],
  [0x180e, 0x180e],
  [0x200e, 0x200f],
  [0x2028, 0x202e],
  [0x2060, 0x2063],
  [0x206a, 0x206f],
  [0x2ff0, 0x2ffb],
  [0xd800, 0xdfff],
  [0xe000, 0xf8ff],
  [0xfdd0, 0xfdef],
  [0xfff9, 0xffff],
  [0x1d173, 0x1d17a],
  [0xe0001, 0xe0001],
  [0xe0020, 0xe007f],
  [0xf0000, 0x10ffff],
];
const within = (cp: number, ranges: Ranges): boolean => ranges.some(([lo, hi]) => cp >= lo && cp <= hi);

/**
 * PostgreSQL hashes a password through SASLprep when it can and uses the raw bytes when SASLprep
 * rejects it (libpq's pg_saslprep does the same), so a prohibited result falls back to the input.
 * Not covered: the bidirectional-text rule and Unicode 3.2 unassigned code points.
 */
export function saslprep(password: string): string {
  const cps = [...password].map((ch) => ch.codePointAt(0)!);
  if (cps.every((cp) => cp < 0x80)) return password; // ASCII passes untouched, as in libpq
  let mapped = '';
  for (const cp of cps) {
    if (within(cp, NON_ASCII_SPACE)) mapped += ' ';
    else if (!within(cp, MAPPED_TO_NOTHING)) mapped += String.fromCodePoint(cp);
  }
  mapped = mapped.normalize('NFKC');
  const prohibited = [...mapped].some((ch) => within(ch.codePointAt(0)!, PROHIBITED));
  return mapped.length === 0 || prohibited ? password : mapped;
}

// ---- tls-server-end-point (RFC 5929 §4.1) ---------------------------------------------------

/** Signature algorithm OIDs whose hash the binding uses; MD5 and SHA-1 are upgraded to SHA-256. */
const SIGNATURE_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSAEncryption
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSAEncryption
  '1.3.14.3.2.29': 'sha256', // sha1WithRSA (OIW)
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha256', // dsa-with-sha1
  '2.16.840.1.101.3.4.3.1': 'sha224',
  '2.16.840.1.101.3.4.3.2': 'sha256',
};

/**
 * The channel binding data for a server certificate (DER), or null when its signature algorithm
 * names no single hash (RSASSA-PSS, Ed25519): then the client cannot bind, as in libpq.
 */
export function tlsServerEndPoint(certDer: Buffer): Buffer | null {
  const hash = SIGNATURE_HASH[signatureAlgorithmOid(certDer) ?? ''];
  return hash ? createHash(hash).update(certDer).digest() : null;
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, … } */
export function signatureAlgorithmOid(der: Buffer): string | null {
  try {
    const cert = derElement(der, 0, 0x30);
    const tbs = derElement(der, cert.start, 0x30);
    const algorithm = derElement(der, tbs.end, 0x30);
    const oid = derElement(der, algorithm.start, 0x06);
    return decodeOid(der.subarray(oid.start, oid.end));
  } catch {
    return null;
  }
}

function derElement(buf: Buffer, at: number, tag: number): { start: number; end: number } {
  if (buf[at] !== tag) throw new Error('unexpected DER tag');
  let len = buf[at + 1];
  let start = at + 2;
  if (len === undefined) throw new Error('DER ends early');
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4) throw new Error('unsupported DER length');
    len = buf.readUIntBE(start, n);
    start += n;
  }
  if (start + len > buf.length) throw new Error('DER ends early');
  return { start, end: start + len };
}

function decodeOid(b: Buffer): string {
  const first = b[0] ?? 0;
  const arcs = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let v = 0;
  for (const byte of b.subarray(1)) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  return arcs.join('.');
}
