import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  MAX_ITERATIONS,
  SaltedPasswords,
  ScramClient,
  ScramError,
  saslprep,
  signatureAlgorithmOid,
  tlsServerEndPoint,
} from './scram.js';

// RFC 7677 §3: the SCRAM-SHA-256 exchange for user "user", password "pencil".
const RFC = {
  nonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

const rfcClient = () =>
  new ScramClient({ password: 'pencil', user: 'user', nonce: RFC.nonce, channelBinding: { kind: 'none' } });

/** The RFC 7677 client's final message for `password`, with keys kept in `salted`. */
const keptKeyLogin = (salted: SaltedPasswords, password: string, serverFirst = RFC.serverFirst) =>
  new ScramClient({
    password,
    user: 'user',
    nonce: RFC.nonce,
    channelBinding: { kind: 'none' },
    salted,
  }).clientFinal(serverFirst);

describe('SCRAM-SHA-256 client', () => {
  it('produces the RFC 7677 messages and accepts the server signature', async () => {
    const c = rfcClient();
    assert.equal(c.mechanism, 'SCRAM-SHA-256');
    assert.equal(c.clientFirst(), RFC.clientFirst);
    assert.equal(await c.clientFinal(RFC.serverFirst), RFC.clientFinal);
    c.verifyServerFinal(RFC.serverFinal);
  });

  it('derives a role’s key once: a second login with the same salt is answered from memory', async () => {
    const salted = new SaltedPasswords();
    const login = (password: string, serverFirst = RFC.serverFirst) =>
      keptKeyLogin(salted, password, serverFirst);
    assert.equal(await login('pencil'), RFC.clientFinal);
    assert.equal(salted.hits, 0);
    const again = new ScramClient({
      password: 'pencil',
      user: 'user',
      nonce: RFC.nonce,
      channelBinding: { kind: 'none' },
      salted,
    });
    assert.equal(
      await again.clientFinal(RFC.serverFirst),
      RFC.clientFinal,
      'the same proof from the kept key',
    );
    again.verifyServerFinal(RFC.serverFinal);
    assert.equal(salted.hits, 1);
    // Another password, salt or iteration count is another key: derived, not served.
    assert.notEqual(await login('pen'), RFC.clientFinal);
    await login(
      'pencil',
      RFC.serverFirst.replace('s=W22ZaJ0SNY7soEsUEjb6gQ==', 's=AAAAAAAAAAAAAAAAAAAAAA=='),
    );
    await login('pencil', RFC.serverFirst.replace('i=4096', 'i=4097'));
    assert.equal(salted.hits, 1);
  });

  it('runs one derivation for logins that arrive together for a key not yet kept', async () => {
    const salted = new SaltedPasswords();
    const login = () => keptKeyLogin(salted, 'pencil');
    const proofs = await Promise.all([login(), login(), login(), login(), login()]);
    assert.deepEqual(proofs, Array(5).fill(RFC.clientFinal), 'every login gets the right proof');
    assert.equal(salted.derivations, 1, 'one PBKDF2 for the five');
    assert.equal(await login(), RFC.clientFinal);
    assert.equal(salted.derivations, 1, 'a later login is served from memory');
    assert.equal(salted.hits, 1);
    // Another salt is a derivation of its own, beside a login answered from memory.
    const other = RFC.serverFirst.replace('s=W22ZaJ0SNY7soEsUEjb6gQ==', 's=AAAAAAAAAAAAAAAAAAAAAA==');
    const two = await Promise.all([login(), keptKeyLogin(salted, 'pencil', other)]);
    assert.equal(two[0], RFC.clientFinal);
    assert.notEqual(two[1], RFC.clientFinal);
    assert.equal(salted.derivations, 2);
  });

  it('keeps the most recently used keys up to its bound, and nothing of a derivation that failed', async () => {
    const salted = new SaltedPasswords(2);
    await keptKeyLogin(salted, 'one');
    await keptKeyLogin(salted, 'two');
    await keptKeyLogin(salted, 'one'); // used again: 'two' is now the least recently used
    await keptKeyLogin(salted, 'three'); // makes room: 'two' goes
    assert.deepEqual([salted.derivations, salted.hits], [3, 1]);
    await keptKeyLogin(salted, 'one');
    await keptKeyLogin(salted, 'three');
    assert.deepEqual([salted.derivations, salted.hits], [3, 3], 'one and three are still kept');
    await keptKeyLogin(salted, 'two');
    assert.equal(salted.derivations, 4, 'two was derived again');
    // A derivation PBKDF2 refuses (no iterations) fails its logins and leaves nothing behind.
    await assert.rejects(salted.derive('pencil', 'W22ZaJ0SNY7soEsUEjb6gQ==', 0));
    await assert.rejects(salted.derive('pencil', 'W22ZaJ0SNY7soEsUEjb6gQ==', 0));
    assert.equal(salted.hits, 3);
  });

  it('rejects a server signature that does not match, and a server error', async () => {
    const c = rfcClient();
    await c.clientFinal(RFC.serverFirst);
    assert.throws(() => c.verifyServerFinal('v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='), ScramError);
    assert.throws(() => c.verifyServerFinal('e=invalid-proof'), /invalid-proof/);
  });

  it('refuses a server nonce that does not extend its own', async () => {
    await assert.rejects(
      rfcClient().clientFinal('r=somethingElse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'),
      /nonce/,
    );
    await assert.rejects(
      rfcClient().clientFinal(`r=${RFC.nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`),
      /nonce/,
    );
    await assert.rejects(
      rfcClient().clientFinal(`r=${RFC.nonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`),
      /iteration/,
    );
  });

  it('refuses a server that asks for more iterations than it runs, before any derivation', async () => {
    const salted = new SaltedPasswords();
    const asking = (i: number) => RFC.serverFirst.replace('i=4096', `i=${i}`);
    await assert.rejects(keptKeyLogin(salted, 'pencil', asking(MAX_ITERATIONS + 1)), ScramError);
    await assert.rejects(
      keptKeyLogin(salted, 'pencil', asking(2 ** 31 - 1)),
      /2147483647 SCRAM iterations, more than this client runs \(1000000\)/,
    );
    assert.equal(salted.derivations, 0, 'no PBKDF2 started');
    await keptKeyLogin(salted, 'pencil', asking(MAX_ITERATIONS));
    assert.equal(salted.derivations, 1, 'the bound itself is run');
  });

  it('fails every login sharing a derivation that fails, and keeps nothing of it', async () => {
    const salted = new SaltedPasswords();
    // PBKDF2 refuses 0 iterations (the client checks the count first; the cache does not).
    const derive = () => salted.derive('pencil', 'W22ZaJ0SNY7soEsUEjb6gQ==', 0);
    const outcomes = await Promise.allSettled([derive(), derive(), derive()]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['rejected', 'rejected', 'rejected'],
    );
    assert.equal(salted.derivations, 1, 'the three shared one derivation');
    await assert.rejects(derive());
    assert.deepEqual([salted.derivations, salted.hits], [2, 0], 'the failure was not kept');
  });

  it('binds to the channel in the GS2 header and in c=', async () => {
    const data = Buffer.from('0123456789abcdef0123456789abcdef');
    const c = new ScramClient({
      password: 'pencil',
      nonce: RFC.nonce,
      channelBinding: { kind: 'bound', data },
    });
    assert.equal(c.mechanism, 'SCRAM-SHA-256-PLUS');
    assert.equal(c.clientFirst(), `p=tls-server-end-point,,n=,r=${RFC.nonce}`);
    const final = await c.clientFinal(RFC.serverFirst);
    const cbind = Buffer.concat([Buffer.from('p=tls-server-end-point,,'), data]).toString('base64');
    assert.ok(final.startsWith(`c=${cbind},`));
    const unbound = new ScramClient({ password: 'x', channelBinding: { kind: 'not-offered' } });
    assert.match(unbound.clientFirst(), /^y,,n=,r=/);
  });
});

describe('SASLprep of passwords', () => {
  it('leaves ASCII alone, maps spaces and soft hyphens, and applies NFKC', () => {
    assert.equal(saslprep('pencil with\tcontrol'), 'pencil with\tcontrol');
    assert.equal(saslprep('a\u00A0b'), 'a b');
    assert.equal(saslprep('I\u00ADX'), 'IX');
    assert.equal(saslprep('\u2168'), 'IX');
  });

  it('uses the raw password when SASLprep prohibits the result, as PostgreSQL does', () => {
    assert.equal(saslprep('\u00E9\u0007'), '\u00E9\u0007');
    assert.equal(saslprep('\u00AD'), '\u00AD');
  });
});

describe('tls-server-end-point channel binding data', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-scram-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function cert(args: string[]): Buffer {
    const out = join(dir, `${args.join('_').replace(/[^a-z0-9]/gi, '')}.pem`);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=t',
        '-keyout',
        join(dir, 'k'),
        '-out',
        out,
        ...args,
      ],
      {
        stdio: 'ignore',
      },
    );
    return new X509Certificate(readFileSync(out)).raw;
  }

  it('hashes with the certificate signature hash, upgrading SHA-1 to SHA-256', () => {
    const sha384 = cert(['-newkey', 'rsa:2048', '-sha384']);
    assert.equal(signatureAlgorithmOid(sha384), '1.2.840.113549.1.1.12');
    assert.deepEqual(tlsServerEndPoint(sha384), createHash('sha384').update(sha384).digest());
    const sha1 = cert(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-sha1']);
    assert.equal(signatureAlgorithmOid(sha1), '1.2.840.10045.4.1');
    assert.deepEqual(tlsServerEndPoint(sha1), createHash('sha256').update(sha1).digest());
  });

  it('cannot bind to an Ed25519 certificate (no hash in its signature) or to garbage', () => {
    const ed = cert(['-newkey', 'ed25519']);
    assert.equal(signatureAlgorithmOid(ed), '1.3.101.112');
    assert.equal(tlsServerEndPoint(ed), null);
    assert.equal(tlsServerEndPoint(Buffer.from([0x30, 0x82, 0xff])), null);
  });
});
