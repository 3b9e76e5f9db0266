import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const TRACK = `mutation Track($input: EventInput!) { trackEvent(input: $input) { eventId status } }`;
const TRACK_MANY = `mutation TrackMany($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { eventId status } }`;
const LONE_SURROGATE = '\uD800';

describe('poison inputs', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig(), { workers: false });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  const countEvents = (where: { eventId?: string; userId?: string }) => gateway.app.db.event.count({ where });
  /** POSTs raw bytes as a GraphQL JSON body. */
  const postRaw = (body: Buffer) =>
    fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: new Uint8Array(body),
    });

  describe('trackEvent', () => {
    const cases: { name: string; input: Record<string, unknown>; field: string; rule: string }[] = [
      {
        name: 'a lone surrogate in context',
        input: { context: { note: `a${LONE_SURROGATE}b` } },
        field: 'input.context.note',
        rule: 'format',
      },
      {
        name: 'a lone surrogate in a context key',
        input: { context: { [`k${LONE_SURROGATE}`]: 1 } },
        field: `input.context.k${LONE_SURROGATE}`,
        rule: 'format',
      },
      {
        name: 'a NUL in a nested context array',
        input: { context: { list: ['ok', 'a\u0000'] } },
        field: 'input.context.list[1]',
        rule: 'noNul',
      },
      {
        name: 'a context nested 11 deep',
        input: { context: { a: { a: { a: { a: { a: { a: { a: { a: { a: { a: {} } } } } } } } } } } },
        field: 'input.context.a.a.a.a.a.a.a.a.a.a',
        rule: 'depth',
      },
      {
        name: 'a lone surrogate in eventId',
        input: { eventId: `evt-${LONE_SURROGATE}` },
        field: 'input.eventId',
        rule: 'format',
      },
      { name: 'a lone surrogate in userId', input: { userId: `\uDC00u` }, field: 'input.userId', rule: 'format' },
      {
        name: 'a 30 February',
        input: { occurredAt: '2026-02-30T10:00:00Z' },
        field: 'input.occurredAt',
        rule: 'format',
      },
      { name: 'hour 24', input: { occurredAt: '2026-02-10T24:00:00Z' }, field: 'input.occurredAt', rule: 'format' },
      {
        name: 'a date before MIN_OCCURRED_AT',
        input: { occurredAt: '0001-01-01T00:00:00Z' },
        field: 'input.occurredAt',
        rule: 'range',
      },
      { name: 'a value rounding past 1e10', input: { value: 9999999999.999 }, field: 'input.value', rule: 'range' },
    ];

    it.each(cases)(
      'when it is $name then INVALID_INPUT names $field with rule $rule',
      async ({ input, field, rule }) => {
        const userId = uniqueId('user');

        const body = await gateway.graphql(TRACK, { input: { userId, type: 'VIEW', itemId: 'sku-1', ...input } });

        expect(body.errors).toEqual([expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field, rule } })]);
        expect(await countEvents({ userId })).toBe(0);
      },
    );

    it('when ids and context hold non-ASCII text and emoji then they are stored as sent', async () => {
      const userId = uniqueId('josé-🛒');

      const body = await gateway.graphql(TRACK, {
        input: { userId, type: 'VIEW', itemId: 'sku-ü', context: { clé: '👍 ok' } },
      });

      expect(body.errors).toBeUndefined();
      const stored = await gateway.app.db.event.findFirstOrThrow({ where: { userId } });
      expect(stored).toMatchObject({ itemId: 'sku-ü', context: { clé: '👍 ok' } });
    });

    it('when occurredAt is a real date with an offset then it is stored as that instant', async () => {
      const eventId = uniqueId('evt');

      const body = await gateway.graphql(TRACK, {
        input: {
          eventId,
          userId: uniqueId('user'),
          type: 'VIEW',
          itemId: 'sku-1',
          occurredAt: '2024-02-29T23:30:00+02:00',
        },
      });

      expect(body.errors).toBeUndefined();
      const stored = await gateway.app.db.event.findUniqueOrThrow({ where: { eventId } });
      expect(stored.occurredAt.toISOString()).toBe('2024-02-29T21:30:00.000Z');
    });

    it('when the body holds invalid UTF-8 then it answers 400 INVALID_INPUT and stores nothing', async () => {
      const userId = uniqueId('user');
      const json = JSON.stringify({
        query: TRACK,
        variables: { input: { userId, type: 'VIEW', itemId: 'sku-X', eventId: uniqueId('evt') } },
      });
      const [before, after] = json.split('sku-X') as [string, string];

      const response = await postRaw(
        Buffer.concat([Buffer.from(`${before}sku-`), Buffer.from([0xff]), Buffer.from(after)]),
      );

      expect(response.status).toBe(400);
      const body = (await response.json()) as { errors: { extensions: Record<string, unknown> }[] };
      expect(body.errors[0]?.extensions).toMatchObject({ code: 'INVALID_INPUT', field: 'body', rule: 'format' });
      expect(await countEvents({ userId })).toBe(0);
    });

    it('when a GET query string is not UTF-8 then it answers 400 INVALID_INPUT format', async () => {
      const query = encodeURIComponent('query($id: ID!) { shopper(userId: $id) { id } }');

      const response = await fetch(`${gateway.url}/graphql?query=${query}&variables=%7B%22id%22%3A%22u%FF%22%7D`, {
        headers: { accept: 'application/json' },
      });

      expect(response.status).toBe(400);
      const body = (await response.json()) as { errors: { extensions: Record<string, unknown> }[] };
      expect(body.errors[0]?.extensions).toMatchObject({
        code: 'INVALID_INPUT',
        field: 'query string',
        rule: 'format',
      });
    });

    it('when two ids differ only in their invalid bytes then neither is stored as U+FFFD', async () => {
      const userId = uniqueId('user');
      const send = (byte: number) => {
        const json = JSON.stringify({
          query: TRACK,
          variables: { input: { userId, type: 'VIEW', itemId: 'sku-1', eventId: 'evt-X' } },
        });
        const [before, after] = json.split('evt-X') as [string, string];
        return postRaw(Buffer.concat([Buffer.from(`${before}evt-`), Buffer.from([byte]), Buffer.from(after)]));
      };

      const statuses = [(await send(0xfe)).status, (await send(0xff)).status];

      expect(statuses).toEqual([400, 400]);
      expect(await countEvents({ eventId: 'evt-\uFFFD' })).toBe(0);
    });
  });

  describe('trackEvents', () => {
    it('when one entry of ten holds a lone surrogate then only it fails and the nine are stored', async () => {
      const userId = uniqueId('user');
      const inputs = Array.from({ length: 10 }, (_, index) => ({
        eventId: uniqueId('evt'),
        userId,
        type: 'VIEW',
        itemId: `sku-${index}`,
        context: index === 4 ? { note: LONE_SURROGATE } : { index },
      }));

      const body = await gateway.graphql<{ trackEvents: ({ status: string } | null)[] }>(TRACK_MANY, { inputs });

      expect(body.data?.trackEvents.map((result) => result?.status ?? null)).toEqual([
        ...Array(4).fill('ACCEPTED'),
        null,
        ...Array(5).fill('ACCEPTED'),
      ]);
      expect(body.errors).toEqual([
        expect.objectContaining({
          path: ['trackEvents', 4],
          extensions: { code: 'INVALID_INPUT', field: 'inputs[4].context.note', rule: 'format' },
        }),
      ]);
      expect(await countEvents({ userId })).toBe(9);
    });

    it('when Postgres refuses one row of a batch then only that row fails, as INVALID_INPUT', async () => {
      const userId = uniqueId('user');
      const bad = uniqueId('evt');
      // Past the gateway's checks, the database itself refuses this row: a stand-in for any row Postgres
      // rejects as data (class 22/23) that validation did not foresee.
      await gateway.app.db.$executeRawUnsafe(
        `ALTER TABLE "Event" ADD CONSTRAINT "poison_test" CHECK ("eventId" <> '${bad}') NOT VALID`,
      );
      const inputs = [uniqueId('evt'), bad, uniqueId('evt')].map((eventId) => ({
        eventId,
        userId,
        type: 'VIEW',
        itemId: 'sku-1',
      }));

      const body = await gateway.graphql<{ trackEvents: ({ status: string } | null)[] }>(TRACK_MANY, { inputs });
      await gateway.app.db.$executeRawUnsafe(`ALTER TABLE "Event" DROP CONSTRAINT "poison_test"`);

      expect(body.data?.trackEvents.map((result) => result?.status ?? null)).toEqual(['ACCEPTED', null, 'ACCEPTED']);
      expect(body.errors).toEqual([
        expect.objectContaining({
          path: ['trackEvents', 1],
          extensions: { code: 'INVALID_INPUT', field: 'inputs[1]', rule: 'format' },
        }),
      ]);
      expect(await countEvents({ userId })).toBe(2);
    });
  });

  describe('deep documents', () => {
    const nested = (depth: number, open: string, close: string, inner: string) =>
      open.repeat(depth) + inner + close.repeat(depth);

    it.each([
      {
        name: 'inline fragments nested 3,000 deep',
        query: `{ ${nested(3000, '... on Query { ', ' }', '__typename')} }`,
      },
      { name: 'selections nested 3,000 deep', query: `{ ${nested(3000, 'a { ', ' }', 'b')} }` },
      {
        name: 'list brackets nested 3,000 deep in an argument',
        query: `{ recommendations(userId: ${nested(3000, '[', ']', '"u"')}) { userId } }`,
      },
    ])('when a document has $name then it answers 400 GRAPHQL_VALIDATION_FAILED', async ({ query }) => {
      const response = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query }),
      });

      expect(response.status).toBe(400);
      const body = (await response.json()) as { errors: { extensions: Record<string, unknown> }[] };
      expect(body.errors[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    });

    it('when variables nest lists 3,000 deep then the answer is a coded error, not a 500', async () => {
      const deep: unknown = JSON.parse(nested(3000, '[', ']', '1'));

      const body = await gateway.graphql(TRACK, {
        input: { userId: uniqueId('user'), type: 'VIEW', itemId: 'sku-1', context: { deep } },
      });

      expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_INPUT', rule: 'depth' });
    });

    it('when a list variable nests 3,000 deep then it answers INVALID_INPUT, not a 500', async () => {
      const deep: unknown = JSON.parse(nested(3000, '[', ']', '{}'));

      const response = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query: TRACK_MANY, variables: { inputs: deep } }),
      });

      const body = (await response.json()) as { errors: { extensions: Record<string, unknown> }[] };
      expect(response.status).toBeLessThan(500);
      expect(body.errors[0]?.extensions?.code).toBe('INVALID_INPUT');
    });

    it('when a subscription document is nested 3,000 deep then the WebSocket answers an error and stays usable', async () => {
      const client = gateway.wsClient();
      const deep = subscribe(
        client,
        `subscription { ${nested(3000, '... on Subscription { ', ' }', '__typename')} }`,
        {},
      );

      const first = await deep.next().catch((error: unknown) => ({ errors: error }));
      const fine = await gateway.graphql(`{ __typename }`);

      expect(JSON.stringify(first.errors)).toContain('nests deeper than');
      expect(fine.data).toEqual({ __typename: 'Query' });
    });

    it('when a string in the document holds braces then they do not count as nesting', async () => {
      const userId = `${'{['.repeat(50)}"#`;

      const body = await gateway.graphql(`{ shopper(userId: ${JSON.stringify(userId)}) { id } }`);

      expect(body).toEqual({ data: { shopper: { id: userId } } });
    });
  });

  describe('ids and pages everywhere', () => {
    const longId = 'u'.repeat(300);

    it.each([
      {
        name: 'recommendations',
        query: `query($id: ID!) { recommendations(userId: $id) { userId } }`,
        field: 'userId',
      },
      { name: 'shopper', query: `query($id: ID!) { shopper(userId: $id) { id } }`, field: 'userId' },
      { name: 'similarItems', query: `query($id: ID!) { similarItems(itemId: $id) { score } }`, field: 'itemId' },
      { name: 'item', query: `query($id: ID!) { item(id: $id) { id } }`, field: 'id' },
    ])('when $name gets a 300-character id then INVALID_INPUT maxLength', async ({ query, field }) => {
      const body = await gateway.graphql(query, { id: longId });

      expect(body.errors).toEqual([
        expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field, rule: 'maxLength' } }),
      ]);
    });

    it('when the REST endpoint gets a 300-character user_id then 400 INVALID_INPUT maxLength', async () => {
      const response = await fetch(`${gateway.url}/api/recommendations?user_id=${longId}`);

      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({
        error: { code: 'INVALID_INPUT', field: 'user_id', rule: 'maxLength' },
      });
    });

    it('when the REST user_id is not UTF-8 then 400 INVALID_INPUT format', async () => {
      const response = await fetch(`${gateway.url}/api/recommendations?user_id=u%FF`);

      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: 'INVALID_INPUT', rule: 'format' } });
    });

    it('when a subscription gets a 300-character userId then it answers INVALID_INPUT', async () => {
      const client = gateway.wsClient();
      const updates = subscribe(client, `subscription($id: ID!) { recommendationsUpdated(userId: $id) { userId } }`, {
        id: longId,
      });

      const first = await updates.next();
      await updates.close();

      expect(first.errors).toEqual([
        expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field: 'userId', rule: 'maxLength' } }),
      ]);
    });

    it('when items gets first: -1 then INVALID_INPUT names first with rule range', async () => {
      const body = await gateway.graphql(`{ items(first: -1) { edges { cursor } } }`);

      expect(body.errors).toEqual([
        expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field: 'first', rule: 'range' } }),
      ]);
    });

    it('when items gets a bad cursor then INVALID_INPUT names after with rule format', async () => {
      const body = await gateway.graphql(`{ items(first: 2, after: "not-a-cursor") { edges { cursor } } }`);

      expect(body.errors).toEqual([
        expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field: 'after', rule: 'format' } }),
      ]);
    });
  });
});
