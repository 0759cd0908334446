// Sign in with one of the configured OIDC providers, or by pasting an API key (local use).
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { ErrorNote, Loading } from '../components/ui.js';
import { useApi } from '../hooks.js';
import { navigate } from '../router.js';
import {
  finishOidc,
  type LoginIssuer,
  type SignInOutcome,
  safeReturnPath,
  signInWithKey,
  startOidc,
} from '../signin.js';

export function SignInPage({ onSignedIn, error }: { onSignedIn: () => void; error?: unknown }) {
  const config = useApi<{ issuers: LoginIssuer[] }>('/api/login/config');
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [failed, setFailed] = useState<unknown>(null);
  const returnTo = safeReturnPath(location.pathname === '/' ? null : location.pathname + location.search);

  useEffect(() => {
    // Back from the provider's page, the browser may restore this page as it was left, buttons
    // disabled by the click that left it: offer the choice again.
    const restored = (e: PageTransitionEvent) => {
      if (e.persisted) setBusy(false);
    };
    addEventListener('pageshow', restored);
    return () => removeEventListener('pageshow', restored);
  }, []);

  const withKey = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setFailed(null);
    try {
      await signInWithKey(key.trim());
      setKey('');
      onSignedIn();
    } catch (err) {
      setFailed(err);
    } finally {
      setBusy(false);
    }
  };

  const withProvider = (issuer: LoginIssuer) => {
    setBusy(true);
    startOidc(issuer, returnTo).catch((err) => {
      setFailed(err);
      setBusy(false);
    });
  };

  return (
    <div className="signin">
      <h1>Sign in to Warden</h1>
      <ErrorNote error={failed ?? error} />
      {config.loading ? <Loading what="sign-in options" /> : null}
      {config.data?.issuers.map((i) => (
        <button
          key={i.issuer}
          type="button"
          className="primary wide"
          disabled={busy}
          onClick={() => withProvider(i)}
        >
          Sign in with {new URL(i.issuer).host}
        </button>
      ))}
      <form onSubmit={withKey} className="card">
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          placeholder="wdn_…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          required
        />
        <p className="muted small">
          The key is traded for an 8-hour Warden token; only that token is kept, in this tab.
        </p>
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in with API key
        </button>
      </form>
    </div>
  );
}

export function SignInCallback({ onSignedIn }: { onSignedIn: () => void }) {
  const [failed, setFailed] = useState<SignInOutcome | null>(null);
  const started = useRef(false);
  useEffect(() => {
    // Once: StrictMode runs effects twice, and a code can be redeemed only once.
    if (started.current) return;
    started.current = true;
    void finishOidc(new URLSearchParams(location.search))
      .then((outcome) => {
        if (outcome.error) return setFailed(outcome);
        navigate(outcome.returnTo, true);
        onSignedIn();
      })
      .catch((error: unknown) => setFailed({ returnTo: '/sessions', error }));
  }, [onSignedIn]);
  if (!failed) return <Loading what="your sign-in" />;
  return (
    <div className="signin">
      <h1>Sign-in failed</h1>
      <ErrorNote error={failed.error} />
      {/* The sign-in page shown at the page the person wanted, so a retry leads there. */}
      <button type="button" onClick={() => navigate(failed.returnTo, true)}>
        Back to sign in
      </button>
    </div>
  );
}
