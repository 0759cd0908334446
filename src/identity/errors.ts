// Why a credential was refused. The reason goes to the audit trail and, as a short phrase,
// to the client; the credential itself never goes anywhere.
export type AuthFailure =
  | 'missing'
  | 'malformed'
  | 'unknown_key'
  | 'revoked'
  | 'expired'
  | 'not_yet_valid'
  | 'bad_signature'
  | 'unknown_issuer'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'algorithm_not_allowed'
  | 'unknown_key_id'
  | 'issuer_unreachable'
  | 'invalid_claims';

export class AuthError extends Error {
  override name = 'AuthError';
  constructor(
    readonly reason: AuthFailure,
    message: string,
    readonly issuer?: string,
  ) {
    super(message);
  }
}
