import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

/** What the storefront asks for: ids, and which items left the list. */
const WATCH = `subscription($userId: ID!) {
  recommendationsUpdated(userId: $userId, k: 100) { items { item { id } } change { left } }
}`;
/** The same list, its items with their longest description under 8 aliases: megabytes a push, to fill socket buffers fast. */
const WATCH_HEAVY = `subscription($userId: ID!) {
  recommendationsUpdated(userId: $userId, k: 100) {
    ${Array.from({ length: 8 }, (_, n) => `copy${n}: items { item { id description } }`).join(' ')}
  }
}`;
const UPSERT = `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`;

/** Low, so the first push the kernel cannot take at once exceeds it. */
const MAX_BUFFERED_BYTES = 64 * 1024;
/** Well inside graphql-ws's keepalive (ping after 12 s, terminate 12 s later), so only the guard can be the cause. */
const DROP_DEADLINE_MS = 10_000;

interface Pushed {
  recommendationsUpdated: { items: { item: { id: string } }[]; change: { left: string[] } };
}

describe('a WebSocket client that stops reading', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    // Two subscriptions in all: a reading shopper and the stalled one fill the gateway, so a third is
    // accepted only once the stalled one's slot has been given back.
    const config = await createTestConfig({
      WS_MAX_BUFFERED_BYTES: String(MAX_BUFFERED_BYTES),
      MAX_SUBSCRIPTIONS: '2',
    });
    gateway = await startGateway(config, { workers: false });
    const description = 'x'.repeat(4096);
    const items = Array.from({ length: 150 }, () => ({ id: uniqueId('item'), name: 'item', description }));
    const stored = await gateway.graphql<{ upsertItems: { upserted: number } }>(UPSERT, { items });
    expect(stored.data?.upsertItems.upserted).toBe(150);
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when a subscriber stops reading then it is dropped, its slot is freed and other subscribers keep their pushes', async () => {
    const reading = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId: uniqueId('shopper') });
    let shown = idsOf(await reading.next());
    const stalled = await openStalledSubscriber(gateway.url, WATCH_HEAVY, { userId: uniqueId('shopper') });
    const probe = gateway.wsClient();
    const resubscribe = () => subscribe<Pushed>(probe, WATCH, { userId: uniqueId('shopper') }).next();
    const refusedWhileStalled = await resubscribe().catch((error: unknown) => ({ errors: error }));
    const stockedOut: string[] = [];
    const stockOutFirstShown = async () => {
      const itemId = shown[0] ?? '';
      await gateway.graphql(UPSERT, { items: [{ id: itemId, name: 'item', inStock: false }] });
      const pushed = await reading.next(5000);
      expect(pushed.data?.recommendationsUpdated.change.left).toEqual([itemId]);
      stockedOut.push(itemId);
      shown = idsOf(pushed);
    };

    try {
      // Each item taken out of stock leaves both lists: a small push to the reader, megabytes to the stalled one.
      // Once the stalled one is dropped its slot is free, and a new subscription (its reconnect) is accepted.
      const deadline = Date.now() + DROP_DEADLINE_MS;
      let resubscribed: Awaited<ReturnType<typeof resubscribe>> | undefined;
      while (!resubscribed) {
        if (Date.now() > deadline || stockedOut.length === 50) {
          throw new Error(`the stalled client still held its slot after ${stockedOut.length} pushes`);
        }
        await stockOutFirstShown();
        resubscribed = await resubscribe().catch(() => undefined);
      }
      const goneBeforeResubscribing = [...stockedOut];
      // The frozen tab wakes up: it reads what had reached it, then finds the connection gone.
      stalled.socket.resume();
      const closeCode = await withDeadline(stalled.closed, 5000, 'close of the stalled client');
      await stockOutFirstShown();

      expect(JSON.stringify(refusedWhileStalled.errors)).toContain('TOO_MANY_SUBSCRIPTIONS');
      // 1006: dropped without a close frame, which would have queued behind the unread backlog.
      expect(closeCode).toBe(1006);
      expect(idsOf(resubscribed)).toHaveLength(100);
      expect(idsOf(resubscribed).filter((id) => goneBeforeResubscribing.includes(id))).toEqual([]);
    } finally {
      // On failure, a still-open stalled socket would hold the gateway's stop() in a 30 s close handshake.
      stalled.socket.terminate();
      await reading.close();
    }
  });
});

function idsOf(pushed: { data?: Pushed | null }): string[] {
  return pushed.data?.recommendationsUpdated.items.map(({ item }) => item.id) ?? [];
}

/**
 * A raw graphql-transport-ws connection that subscribes, takes the first list, then stops reading its socket
 * (as a frozen tab does); `closed` settles with the close code once it reads again and finds the end.
 */
async function openStalledSubscriber(url: string, query: string, variables: Record<string, unknown>) {
  const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  await withDeadline(new Promise((resolve) => socket.once('open', resolve)), 5000, 'open');
  socket.send(JSON.stringify({ type: 'connection_init' }));
  await withDeadline(nextMessage(socket, 'connection_ack'), 5000, 'connection_ack');
  socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } }));
  await withDeadline(nextMessage(socket, 'next'), 5000, 'the first list');
  socket.pause();
  return { socket, closed };
}

function nextMessage(socket: WebSocket, type: string): Promise<unknown> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const message = JSON.parse(String(data)) as { type: string };
      if (message.type !== type) return;
      socket.off('message', onMessage);
      resolve(message);
    };
    socket.on('message', onMessage);
  });
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
