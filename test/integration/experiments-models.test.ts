import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig, tasteGroupPurchases, uniqueId } from '../helpers/test-env.ts';

const RETRAIN = `mutation { retrainModel(wait: true, params: { factors: 8, lambda: 10 }) { version { id current } } }`;
const RECOMMEND = `query($userId: ID!) {
  recommendations(userId: $userId, k: 3) { modelVersion experiment { variant } items { explanation { source modelVersion } } }
}`;
const UPSERT = `mutation($input: ExperimentInput!) { upsertExperiment(input: $input) { id } }`;

interface Listed {
  recommendations: {
    modelVersion: number | null;
    experiment: { variant: string } | null;
    items: { explanation: { source: string; modelVersion: number | null } }[];
  };
}

/** The secret of a key createApiKey answered with. */
function secretOf(body: { data?: Record<string, unknown> | null }): string {
  const created = body.data?.createApiKey;
  if (typeof created !== 'object' || created === null || !('secret' in created) || typeof created.secret !== 'string') {
    throw new Error(`createApiKey failed: ${JSON.stringify(body)}`);
  }
  return created.secret;
}

async function post(gateway: RunningGateway, query: string, variables: Record<string, unknown>, key?: string) {
  const response = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key && { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, unknown> | null; errors?: { extensions?: unknown }[] };
}

describe('experiments with model versions', () => {
  let gateway: RunningGateway;
  const aItems = Array.from({ length: 6 }, (_, i) => uniqueId(`a${i}`));
  const bItems = Array.from({ length: 6 }, (_, i) => uniqueId(`b${i}`));
  const purchases = tasteGroupPurchases(3, [
    { label: 'shopper-a', items: aItems, shoppers: 60 },
    { label: 'shopper-b', items: bItems, shoppers: 60 },
  ]);
  const shoppers = [...new Set(purchases.map((event) => event.userId))];

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig({ TRAIN_THREADS: '1' }));
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: [...aItems, ...bItems].map((id) => ({ id, name: id })),
    });
    await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, {
      inputs: purchases,
    });
    await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 20_000);
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  it('when a variant pins an earlier model version then its shoppers are ranked by it while the others get the current one', async () => {
    const first = (await gateway.graphql<{ retrainModel: { version: { id: number } } }>(RETRAIN)).data!.retrainModel
      .version.id;
    const second = (await gateway.graphql<{ retrainModel: { version: { id: number; current: boolean } } }>(RETRAIN))
      .data!.retrainModel.version;
    expect(second.current).toBe(true);
    const started = await gateway.graphql(UPSERT, {
      input: {
        id: uniqueId('models'),
        variants: [
          { name: 'current', weight: 1 },
          { name: 'pinned', weight: 1, modelVersion: first },
        ],
      },
    });
    expect(started.errors).toBeUndefined();

    const lists = await Promise.all(
      shoppers.slice(0, 30).map(async (userId) => (await gateway.graphql<Listed>(RECOMMEND, { userId })).data!),
    );

    const byVariant = (variant: string) => lists.filter((list) => list.recommendations.experiment?.variant === variant);
    expect(byVariant('pinned').length).toBeGreaterThan(0);
    expect(byVariant('current').length).toBeGreaterThan(0);
    for (const { recommendations } of byVariant('pinned')) expect(recommendations.modelVersion).toBe(first);
    for (const { recommendations } of byVariant('current')) expect(recommendations.modelVersion).toBe(second.id);
  });

  it('when keys exist then experiments are for admin keys only', async () => {
    const admin = await post(gateway, `mutation { createApiKey(scope: ADMIN, description: "test") { secret } }`, {});
    const adminKey = secretOf(admin);
    const server = await post(
      gateway,
      `mutation { createApiKey(scope: SERVER, description: "test") { secret } }`,
      {},
      adminKey,
    );
    const serverKey = secretOf(server);

    const upsert = await post(
      gateway,
      UPSERT,
      {
        input: {
          id: uniqueId('denied'),
          variants: [
            { name: 'a', weight: 1 },
            { name: 'b', weight: 1 },
          ],
        },
      },
      serverKey,
    );
    const listed = await post(gateway, '{ experiments { id } }', {}, serverKey);
    const results = await post(
      gateway,
      'query($id: ID!) { experimentResults(id: $id) { phase } }',
      { id: 'x' },
      serverKey,
    );
    const asAdmin = await post(gateway, '{ experiments { id running } }', {}, adminKey);

    for (const body of [upsert, listed, results]) {
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN' });
    }
    expect(asAdmin.errors).toBeUndefined();
    expect(asAdmin.data?.experiments).toHaveLength(1);
  });
});
