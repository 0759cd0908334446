// The console's frame: who is signed in, the navigation (only what the person's roles allow),
// and which page the address shows.
import { lazy, Suspense, useCallback, useEffect, useState } from 'react';
import { ApiError, api, currentCredential, onSignedOut } from './api.js';
import { ErrorNote, Link, Loading } from './components/ui.js';
import { AuditPage } from './pages/Audit.js';
import { ChainPage } from './pages/Chain.js';
import { ConnectionDetail, ConnectionsPage } from './pages/Connections.js';
import { ReviewsPage } from './pages/Reviews.js';
import { SessionDetail } from './pages/SessionDetail.js';
import { SessionsPage } from './pages/Sessions.js';
import { SignInCallback, SignInPage } from './pages/SignIn.js';
import { match, navigate, useLocation } from './router.js';
import { signOut } from './signin.js';
import { hasRole, type Identity } from './types.js';

// The player (and its terminal emulator) loads only when a recording is opened.
const ReplayPage = lazy(() => import('./pages/Replay.js').then((m) => ({ default: m.ReplayPage })));

const SIGNED_OUT = 'Warden no longer accepts your sign-in (it expired or was revoked). Sign in again.';

export function App() {
  const loc = useLocation();
  const [who, setWho] = useState<Identity | null>(null);
  const [checking, setChecking] = useState(currentCredential() !== null);
  const [error, setError] = useState<unknown>(null);

  const loadWho = useCallback(() => {
    setChecking(true);
    api<Identity>('/api/whoami')
      .then((w) => {
        setWho(w);
        setError(null);
      })
      // A refused token is reported by the signed-out listener, in words, not as the bare 401.
      .catch((err: unknown) =>
        setError(err instanceof ApiError && err.status === 401 ? new Error(SIGNED_OUT) : err),
      )
      .finally(() => setChecking(false));
  }, []);

  useEffect(() => {
    if (currentCredential()) loadWho();
    return onSignedOut(() => {
      setWho(null);
      setError(new Error(SIGNED_OUT));
    });
  }, [loadWho]);

  if (loc.path === '/signin/callback') return <SignInCallback onSignedIn={loadWho} />;
  if (checking) return <Loading what="your identity" />;
  if (!who) return <SignInPage onSignedIn={loadWho} error={error} />;

  const leave = async () => {
    await signOut(currentCredential());
    setWho(null);
    navigate('/', true);
  };

  return (
    <div className="shell">
      <header className="top">
        <Link to="/sessions" className="brand">
          Warden
        </Link>
        <nav aria-label="main">
          <Link to="/sessions">Sessions</Link>
          <Link to="/reviews">Reviews</Link>
          <Link to="/connections">Connections</Link>
          {hasRole(who, 'auditor') ? <Link to="/audit">Audit</Link> : null}
        </nav>
        <div className="me">
          <span title={`${who.kind}; roles: ${who.roles.join(', ') || 'none'}`} data-testid="whoami">
            {who.subject}
          </span>
          <button type="button" className="link" onClick={leave}>
            Sign out
          </button>
        </div>
      </header>
      <main>
        {/* Keyed by the address: a page never shows the previous item's data or filters. */}
        <Page key={`${loc.path}?${loc.params}`} who={who} path={loc.path} params={loc.params} />
      </main>
    </div>
  );
}

function Page({ who, path, params }: { who: Identity; path: string; params: URLSearchParams }) {
  if (path === '/' || path === '/signin') return <Redirect to="/sessions" />;
  let m = match('/sessions', path);
  if (m) return <SessionsPage params={params} />;
  m = match('/sessions/:id', path);
  if (m?.id) return <SessionDetail id={m.id} who={who} />;
  m = match('/sessions/:id/replay', path);
  if (m?.id)
    return (
      <Suspense fallback={<Loading what="the player" />}>
        <ReplayPage id={m.id} />
      </Suspense>
    );
  m = match('/chains/:id', path);
  if (m?.id) return <ChainPage id={m.id} />;
  if (match('/reviews', path)) return <ReviewsPage />;
  if (match('/connections', path)) return <ConnectionsPage />;
  m = match('/connections/:name', path);
  if (m?.name) return <ConnectionDetail name={m.name} who={who} />;
  if (match('/audit', path)) {
    if (!hasRole(who, 'auditor'))
      return <ErrorNote error={new Error('The audit trail is open to auditors, and you are not one.')} />;
    return <AuditPage params={params} />;
  }
  return <ErrorNote error={new Error(`There is no page at ${path}.`)} />;
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, true), [to]);
  return null;
}
