import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { EventStream } from './event-stream.js';

describe('event stream (text/event-stream on a raw response)', () => {
  let server: Server | undefined;
  after(() => server?.close());

  it('cuts off a client that stops reading once its unread events pass the bound', async () => {
    let stream: EventStream | undefined;
    const ended = new Promise<number>((resolve) => {
      server = createServer((_req, res) => {
        stream = new EventStream(res, { maxBufferedBytes: 256 * 1024 });
        let sent = 0;
        stream.whenClosed(() => resolve(sent));
        const chunk = 'x'.repeat(64 * 1024);
        // Far more than socket buffers hold: the bound must end it, not memory.
        for (let i = 0; i < 2_000 && stream.isOpen; i++, sent++) stream.send('review', { chunk });
      });
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const address = server?.address();
    assert.ok(address && typeof address === 'object');
    const socket = connect(address.port, '127.0.0.1');
    socket.pause(); // never reads
    socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    const sent = await ended;
    assert.ok(sent < 2_000, `stopped after ${sent} events`);
    assert.equal(stream?.isOpen, false);
    socket.destroy();
  });
});
