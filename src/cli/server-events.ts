// Reading a text/event-stream response body: frames of `field: value` lines ended by a blank
// line, as the EventSource specification parses them (comments dropped, data lines joined).
export interface ServerEvent {
  event: string;
  data: string;
  id?: string;
}

export async function* serverEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<ServerEvent> {
  const decoder = new TextDecoder();
  let tail = '';
  let frame: { event?: string; data: string[]; id?: string } = { data: [] };
  for await (const chunk of body) {
    tail += decoder.decode(chunk, { stream: true });
    const lines = tail.split(/\r\n|\r|\n/);
    // The last piece is an unfinished line (or empty after a newline): kept for the next chunk.
    tail = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') {
        if (frame.data.length > 0) {
          yield {
            event: frame.event ?? 'message',
            data: frame.data.join('\n'),
            ...(frame.id ? { id: frame.id } : {}),
          };
        }
        frame = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') frame.event = value;
      else if (field === 'data') frame.data.push(value);
      else if (field === 'id') frame.id = value;
    }
  }
}
