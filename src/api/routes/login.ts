// GET /api/login/config: which OIDC issuers people can sign in with (`warden login`) and the
// public client to use. Unauthenticated, because it is read before anyone has a credential.
import { z } from 'zod';
import type { ApiContext } from '../context.js';
import type { ZodApp } from '../server.js';

export const loginConfigView = z.object({
  issuers: z.array(
    z.object({
      issuer: z.string(),
      client_id: z.string(),
      scopes: z.string(),
      /** Present: the CLI asks for an access token for this resource and hands that to Warden. */
      resource: z.string().optional(),
    }),
  ),
});
export type LoginConfigView = z.infer<typeof loginConfigView>;

export function loginRoutes(app: ZodApp, ctx: ApiContext): void {
  // Only what a public client publishes anyway: issuer, client id, scopes; never a secret.
  const issuers = ctx.config.identity.oidc.flatMap((i) =>
    i.login
      ? [
          {
            issuer: i.issuer,
            client_id: i.login.client_id,
            scopes: i.login.scopes,
            ...(i.login.resource ? { resource: i.login.resource } : {}),
          },
        ]
      : [],
  );
  app.get(
    '/api/login/config',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['identity'],
        summary: 'The OIDC issuers people can sign in with, and their public login clients',
        response: { 200: loginConfigView },
      },
    },
    async () => ({ issuers }),
  );
}
