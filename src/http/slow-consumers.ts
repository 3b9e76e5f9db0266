import type { Logger } from '../logger.ts';

/** What the guard needs of a `ws` WebSocket: its unsent backlog, and a way to drop it without a handshake. */
export interface BufferingSocket {
  readonly bufferedAmount: number;
  readonly readyState: number;
  readonly OPEN: number;
  terminate(): void;
}

/**
 * Drops a WebSocket connection whose client has stopped reading (a frozen tab, a dead network that has not
 * timed out yet) once more than `maxBufferedBytes` of its messages wait unsent in the gateway's memory.
 * The client may reconnect and subscribe again; a subscription starts with the current list, so nothing
 * it missed matters.
 *
 * Call it as a message is about to be sent (graphql-ws's `onNext`); it looks at the backlog once that
 * message is queued.
 */
export function makeSlowConsumerGuard(options: { maxBufferedBytes: number; logger: Logger }) {
  const { maxBufferedBytes, logger } = options;
  return (socket: BufferingSocket, subscriptionId: string): void => {
    // graphql-ws sends right after onNext returns, and only once the previous message of the subscription
    // has been flushed; looking after this one is queued is the only moment a stalled backlog can be seen.
    setImmediate(() => {
      if (socket.readyState !== socket.OPEN || socket.bufferedAmount <= maxBufferedBytes) return;
      logger.warn(
        { bufferedBytes: socket.bufferedAmount, maxBufferedBytes, subscriptionId },
        'dropping a WebSocket client that is not reading its messages',
      );
      // Not close(): a close frame would queue behind the backlog it is meant to free.
      socket.terminate();
    });
  };
}
