// A terminal session replayed with asciinema-player from its asciicast v2 recording, fetched
// with the signed-in person's token (the player's own fetch could not carry it).
import * as AsciinemaPlayer from 'asciinema-player';
import 'asciinema-player/dist/bundle/asciinema-player.css';
import { useEffect, useRef, useState } from 'react';
import { request } from '../api.js';
import { ErrorNote, Link, Loading } from '../components/ui.js';

interface CastHeader {
  width: number;
  height: number;
  timestamp?: number;
  title?: string;
}

export function ReplayPage({ id }: { id: string }) {
  const [cast, setCast] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const ctl = new AbortController();
    request(`/api/sessions/${encodeURIComponent(id)}/recording`, { signal: ctl.signal })
      .then((res) => res.text())
      .then(setCast)
      .catch((err: Error) => {
        if (err.name !== 'AbortError') setError(err);
      });
    return () => ctl.abort();
  }, [id]);

  useEffect(() => {
    if (!cast || !box.current) return;
    const player = AsciinemaPlayer.create({ data: cast }, box.current, {
      fit: 'width',
      autoPlay: true,
      idleTimeLimit: 2,
      terminalFontSize: 'small',
      controls: true,
    });
    return () => player.dispose();
  }, [cast]);

  const header = cast ? headerOf(cast) : null;
  return (
    <section>
      <div className="title-row">
        <h1>Terminal replay</h1>
        <div className="spacer" />
        <Link to={`/sessions/${id}`}>Session details</Link>
      </div>
      <ErrorNote error={error} title="No recording to replay" />
      {!cast && !error ? <Loading what="the recording" /> : null}
      {header ? (
        <p className="muted small">
          {header.title ? `${header.title} · ` : ''}
          {header.width}×{header.height}
          {header.timestamp ? ` · recorded ${new Date(header.timestamp * 1000).toLocaleString()}` : ''}
        </p>
      ) : null}
      <div ref={box} className="player" data-testid="player" />
    </section>
  );
}

function headerOf(cast: string): CastHeader | null {
  try {
    return JSON.parse(cast.slice(0, cast.indexOf('\n'))) as CastHeader;
  } catch {
    return null;
  }
}
