// Throwaway X.509 material for tests, made with the openssl CLI as an operator would.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** A self-signed EC certificate valid for a day, for 127.0.0.1 and localhost; returns the file paths. */
export function selfSignedCert(dir: string, cn = 'localhost'): { cert: string; key: string } {
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-days',
      '1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}
