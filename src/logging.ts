// The process logger (pino, JSON lines on stdout). Anything that could carry a credential is
// redacted by path, credentials pasted into a URL are masked by shape, and secrets are never
// passed to a log call in the first place.
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.password',
  '*.token',
  '*.key',
  '*.secret',
  '*.credential',
];

const API_KEY_SHAPE = /\b(wdn_[0-9a-f]{16}_)[A-Za-z0-9_-]+/g;
const JWT_SHAPE = /\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/** Masks anything shaped like an API key's secret or a JWT (a key id stays, to say which). */
export function redactCredentials(text: string): string {
  return text.replace(API_KEY_SHAPE, '$1[redacted]').replace(JWT_SHAPE, '[redacted-jwt]');
}

interface LoggedRequest {
  method?: string;
  url?: string;
  ip?: string;
  id?: string;
}

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'warden' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: {
        // A credential pasted into a path (`DELETE /api/keys/wdn_…`) must not reach the log.
        req: (req: LoggedRequest) => ({
          method: req.method,
          url: req.url === undefined ? undefined : redactCredentials(req.url),
          remoteAddress: req.ip,
        }),
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
