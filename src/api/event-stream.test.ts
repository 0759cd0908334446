import assert from 'node:assert/strict';
import { createServer, get, type Server } from 'node:http';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { EventStream } from './event-stream.js';

describe('event stream (text/event-stream on a raw response)', () => {
  let server: Server | undefined;
  let beating: Server | undefined;
  after(() => {
    server?.close();
    beating?.close();
  });

  it('writes a `: ping` comment every heartbeat while the stream is idle, and stops when it ends', async () => {
    let stream: EventStream | undefined;
    beating = createServer((_req, res) => {
      stream = new EventStream(res, { heartbeatMs: 10 });
    });
    await new Promise<void>((r) => beating?.listen(0, '127.0.0.1', r));
    const address = beating.address();
    assert.ok(address && typeof address === 'object');
    const received = await new Promise<{ type: string | undefined; text: string }>((resolve, reject) => {
      get({ host: '127.0.0.1', port: address.port, path: '/' }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          // Two beats: the interval repeats, it is not a single write.
          if (text.split(': ping\n\n').length > 2) {
            res.destroy();
            resolve({ type: res.headers['content-type'], text });
          }
        });
        res.on('error', reject);
      }).on('error', reject);
    });
    assert.equal(received.type, 'text/event-stream; charset=utf-8');
    assert.match(received.text, /^(: ping\n\n){2,}$/, 'nothing but heartbeats on an idle stream');
    stream?.end();
    assert.equal(stream?.isOpen, false);
  });

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
