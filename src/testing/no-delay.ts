// Which sockets of this process had Nagle's algorithm turned off (setNoDelay), seen by wrapping
// net.Socket#setNoDelay for the duration of a test. Node keeps the flag to itself, and the
// kernel shows it nowhere a test can read (ss, /proc/net/tcp), so the call is what is observed.
import net from 'node:net';

export interface NoDelayCall {
  localPort: number | undefined;
  remotePort: number | undefined;
  noDelay: boolean;
}

export function watchNoDelay(): { calls: NoDelayCall[]; restore(): void } {
  const original = net.Socket.prototype.setNoDelay;
  const calls: NoDelayCall[] = [];
  net.Socket.prototype.setNoDelay = function (this: net.Socket, noDelay?: boolean) {
    calls.push({ localPort: this.localPort, remotePort: this.remotePort, noDelay: noDelay ?? true });
    return original.call(this, noDelay);
  };
  return {
    calls,
    restore: () => {
      net.Socket.prototype.setNoDelay = original;
    },
  };
}
